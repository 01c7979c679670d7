// HTTP Basic auth (RFC 7617) against htpasswd lines from a Secret. Timing does not reveal which users exist: user
// names are compared as fixed-length digests in constant time, over every line, and an unknown user still costs a
// verification against a dummy hash of the same scheme and cost.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Logger } from '../../runtime/logger.ts';
import type { Secret } from '../../cluster/model/secret.ts';
import type { BasicAuthPolicy } from '../routes/types.ts';
import { basicUsers, describePlace } from './basic-secret.ts';
import { dummyHash, verifyPassword, type HtpasswdEntry } from './htpasswd.ts';
import { VerifyBusyError } from './verify-pool.ts';
import {
  AuthConfigError,
  credentials,
  deny,
  failClosed,
  refKey,
  safeRealm,
  type AuthRequest,
  type AuthResult,
  type Authenticator,
} from './types.ts';

/** How long a successful verification is remembered: bcrypt costs tens of milliseconds per request otherwise. */
export const basicCacheTtlMs = 60_000;
/** At most this many remembered verifications per Authenticator; the oldest go first. */
export const basicCacheMaxEntries = 10_000;

/** Collaborators of a BasicAuthenticator; tests pass their own clock or wrap the verification. */
export interface BasicAuthenticatorOptions {
  /** Clock in ms for the verification cache, monotonic (a wall-clock step must not keep or drop entries); performance.now() by default. */
  now?: () => number;
  /**
   * Password verification; verifyPassword by default (on the event loop: the gateway passes its VerifyPool's). A
   * rejection is a 503: VerifyBusyError when too many checks wait.
   */
  verify?: (password: string, entry: Pick<HtpasswdEntry, 'hash' | 'scheme'>) => Promise<boolean>;
}

interface User {
  digest: Buffer;
  entry: HtpasswdEntry;
}

const allowed: AuthResult = { allow: true, upstreamHeaders: {} };
const base64Pattern = /^[A-Za-z0-9+/]+={0,2}$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Builds the Authenticator of a basic policy from its Secret (key `auth`, or a key per user for auth-map). Unusable
 * lines are skipped with a logged reason (Secret and line number, or key); a missing Secret or no usable line makes
 * it fail closed with 503.
 */
export function basicAuthenticator(policy: BasicAuthPolicy, secret: Secret | undefined, log: Logger, now: () => number, verify?: BasicAuthenticatorOptions['verify']): Authenticator {
  const name = refKey(policy.secret);
  if (!secret) return failClosed(new AuthConfigError(`basic auth Secret ${name} does not exist`));
  const users = basicUsers(secret, policy.secretType ?? 'auth-file');
  if ('missing' in users) return failClosed(new AuthConfigError(`basic auth Secret ${name} ${users.missing}`));
  const { entries, refused } = users;
  for (const r of refused) {
    if (r.key === undefined) log.warn({ secret: name, line: r.line }, `htpasswd line skipped: ${r.reason}`);
    else log.warn({ secret: name, key: r.key }, `auth-map entry skipped: ${r.reason}`);
  }
  if (entries.length === 0) return failClosed(new AuthConfigError(`basic auth Secret ${name} has no usable ${policy.secretType === 'auth-map' ? 'auth-map entry' : 'htpasswd line'}`));
  return new BasicAuthenticator(entries, policy.realm, { now, ...(verify ? { verify } : {}) });
}

/** Checks `Authorization: Basic` credentials against htpasswd entries; 401 with a Basic challenge otherwise. */
export class BasicAuthenticator implements Authenticator {
  readonly #users: readonly User[];
  readonly #dummy: Pick<HtpasswdEntry, 'hash' | 'scheme'>;
  readonly #challenge: Record<string, string>;
  readonly #now: () => number;
  readonly #verify: NonNullable<BasicAuthenticatorOptions['verify']>;
  /** Key: SHA-256 over user, password and hash; value: expiry time. */
  readonly #verified = new Map<string, number>();

  /** `entries` must not be empty; the first one sets the dummy hash's scheme and cost. */
  constructor(entries: readonly HtpasswdEntry[], realm: string, options: BasicAuthenticatorOptions = {}) {
    const first = entries[0];
    if (!first) throw new AuthConfigError('a basic authenticator needs at least one htpasswd entry');
    this.#users = entries.map((entry) => ({ digest: sha256(entry.user), entry }));
    this.#dummy = dummyHash(first);
    this.#challenge = { 'www-authenticate': `Basic realm="${safeRealm(realm)}"` };
    this.#now = options.now ?? (() => performance.now());
    this.#verify = options.verify ?? verifyPassword;
  }

  /** Remembered successful verifications (for tests and metrics). */
  get cacheSize(): number {
    return this.#verified.size;
  }

  async check(req: AuthRequest): Promise<AuthResult> {
    const creds = decodeBasic(credentials(req.headers, 'Basic'));
    if (!creds) return deny(401, 'no or malformed basic credentials', this.#challenge);
    const { user, password } = creds;
    const digest = sha256(user);
    let found: HtpasswdEntry | undefined;
    // Every line is compared, whatever matched, so the time spent does not depend on where (or whether) it matched.
    for (const u of this.#users) {
      const same = timingSafeEqual(u.digest, digest);
      if (same && !found) found = u.entry;
    }
    const target = found ?? this.#dummy;
    const key = cacheKey(user, password, target.hash);
    const now = this.#now();
    const expiry = this.#verified.get(key);
    if (found && expiry !== undefined) {
      if (expiry > now) return allowed;
      this.#verified.delete(key);
    }
    let ok: boolean;
    try {
      ok = await this.#verify(password, target);
    } catch (e) {
      return deny(503, e instanceof VerifyBusyError ? `password checks are busy: ${e.message}` : `the password check failed: ${e instanceof Error ? e.message : String(e)}`);
    }
    if (ok && found) {
      this.#remember(key, now + basicCacheTtlMs);
      return allowed;
    }
    return deny(401, found ? `wrong password for user on ${describePlace(found)}` : 'unknown user', this.#challenge);
  }

  #remember(key: string, expiry: number): void {
    if (this.#verified.size >= basicCacheMaxEntries) {
      const oldest = this.#verified.keys().next();
      if (!oldest.done) this.#verified.delete(oldest.value);
    }
    this.#verified.set(key, expiry);
  }
}

/** User and password from a Basic credential (base64 of UTF-8 `user:password`); undefined when malformed. */
export function decodeBasic(token: string | undefined): { user: string; password: string } | undefined {
  if (token === undefined || !base64Pattern.test(token)) return undefined;
  let text: string;
  try {
    // Invalid UTF-8 is refused rather than replaced, so that two different byte strings never pass as one password.
    text = utf8.decode(Buffer.from(token, 'base64'));
  } catch {
    return undefined;
  }
  const colon = text.indexOf(':');
  if (colon <= 0) return undefined;
  return { user: text.slice(0, colon), password: text.slice(colon + 1) };
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

function cacheKey(user: string, password: string, hash: string): string {
  // Length prefixes keep ("a:b", "c") and ("a", "b:c") apart.
  const h = createHash('sha256');
  for (const part of [user, password, hash]) h.update(`${Buffer.byteLength(part)}:`).update(part, 'utf8');
  return h.digest('base64');
}
