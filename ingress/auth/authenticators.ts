// One Authenticator per Ingress, built from its policy and the Secrets it reads, kept while neither changes.
import { isDeepStrictEqual } from 'node:util';
import { Agent } from 'undici';
import type { Logger } from '../../runtime/logger.ts';
import type { AuthPolicy } from '../routes/types.ts';
import { basicAuthenticator, type BasicAuthenticatorOptions } from './basic.ts';
import { externalAuthenticator } from './external.ts';
import { jwtAuthenticator } from './jwt.ts';
import { VerifyPool, type VerifyPoolOptions } from './verify-pool.ts';
import { FailClosedAuthenticator, refKey, type Authenticator, type SecretLookup } from './types.ts';

/** What Authenticators needs from the gateway. */
export interface AuthenticatorsOptions {
  secrets: SecretLookup;
  log: Logger;
  /** Clock for the basic-auth verification cache, in ms, monotonic; performance.now() by default (tests pass their own). */
  now?: () => number;
  /** Sizes of the worker threads that check basic-auth passwords. */
  verifyPool?: VerifyPoolOptions;
}

interface Cached {
  policy: AuthPolicy;
  authenticator: Authenticator;
  /** Secrets (`namespace/name`) the authenticator was built from. */
  secrets: ReadonlySet<string>;
}

/** One Authenticator per Ingress, rebuilt when its policy or a Secret it reads changes. */
export class Authenticators {
  readonly #secrets: SecretLookup;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #cache = new Map<string, Cached>();
  // One connection pool for every external-auth subrequest, closed with close().
  readonly #agent = new Agent({ keepAliveTimeout: 4_000 });
  // Basic-auth password checks, off the event loop (verify-pool.ts); closed with close().
  readonly #pool: VerifyPool;
  readonly #verify: NonNullable<BasicAuthenticatorOptions['verify']>;

  constructor(options: AuthenticatorsOptions) {
    this.#secrets = options.secrets;
    this.#log = options.log;
    this.#now = options.now ?? (() => performance.now());
    this.#pool = new VerifyPool(options.verifyPool);
    this.#verify = (password, entry) => this.#pool.verify(password, entry);
  }

  /** The Authenticator of `ingress` (`namespace/name`); the same instance while the policy is deep-equal and its Secrets unchanged. */
  get(ingress: string, policy: AuthPolicy): Authenticator {
    const cached = this.#cache.get(ingress);
    if (cached && (cached.policy === policy || isDeepStrictEqual(cached.policy, policy))) return cached.authenticator;
    const built = this.#build(ingress, policy);
    this.#cache.set(ingress, built);
    return built.authenticator;
  }

  /** Drops the cached Authenticators that read any of these Secrets (`namespace/name`); the next get() rebuilds them. */
  secretsChanged(keys: Iterable<string>): void {
    const changed = new Set(keys);
    for (const [ingress, c] of this.#cache) {
      if ([...c.secrets].some((s) => changed.has(s))) this.#cache.delete(ingress);
    }
  }

  /** Forgets the Authenticators of Ingresses not in `ingresses`. */
  retain(ingresses: ReadonlySet<string>): void {
    for (const ingress of this.#cache.keys()) if (!ingresses.has(ingress)) this.#cache.delete(ingress);
  }

  /** Forgets everything, closes the external-auth connection pool and stops the password check workers. */
  close(): void {
    this.#cache.clear();
    this.#agent.destroy().catch(() => {});
    this.#pool.close().catch(() => {});
  }

  #build(ingress: string, policy: AuthPolicy): Cached {
    const log = this.#log.child({ ingress, auth: policy.type });
    let authenticator: Authenticator;
    const secrets = new Set<string>();
    switch (policy.type) {
      case 'basic':
        secrets.add(refKey(policy.secret));
        authenticator = basicAuthenticator(policy, this.#secrets(policy.secret), log, this.#now, this.#verify);
        break;
      case 'jwt': {
        // A jwksUrl wins over a Secret; only a Secret actually read ties the authenticator to it.
        const ref = policy.jwksUrl === undefined ? policy.secret : undefined;
        if (ref) secrets.add(refKey(ref));
        authenticator = jwtAuthenticator(policy, ref ? this.#secrets(ref) : undefined, log);
        break;
      }
      case 'external':
        authenticator = externalAuthenticator(policy, this.#agent);
        break;
    }
    if (authenticator instanceof FailClosedAuthenticator) {
      log.warn(`auth policy cannot be enforced, failing closed: ${authenticator.error.message}`);
    }
    return { policy, authenticator, secrets };
  }
}
