// JWT bearer tokens (RFC 6750) verified with jose: keys from a remote JWKS (jose caches it and rate-limits
// refetches for unknown kids; a failed fetch holds off the next for jwksRetryMs) or from a Secret. Asymmetric algorithms only: an HS* token would let anyone holding the public key
// mint tokens, and `none` is no signature at all.
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  customFetch,
  importSPKI,
  jwtVerify,
  type CryptoKey,
  type FetchImplementation,
  type JWTVerifyGetKey,
  type JWTVerifyOptions,
} from 'jose';
import type { Logger } from '../../runtime/logger.ts';
import { secretValue, type Secret } from '../../cluster/model/secret.ts';
import type { JwtAuthPolicy } from '../routes/types.ts';
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

/** The algorithms accepted when the policy names none, and the only ones a policy may name. */
export const jwtAlgorithms: readonly string[] = [
  'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA',
];

/** Seconds of clock skew allowed on exp/nbf/iat. */
export const jwtClockToleranceSeconds = 30;

/**
 * After a JWKS fetch fails (no answer, not 200, not JSON), how long the next waits: requests that need keys meanwhile
 * get 503 without a fetch. jose would fetch again for every request, so clients could make the gateway hammer a
 * failing identity provider at their own rate.
 */
export const jwksRetryMs = 1000;

// jose error codes that mean "this token is not acceptable" (401); any other failure is ours or the JWKS's (503).
const tokenErrors = new Set([
  'ERR_JWT_EXPIRED',
  'ERR_JWT_CLAIM_VALIDATION_FAILED',
  'ERR_JWT_INVALID',
  'ERR_JWS_INVALID',
  'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
  'ERR_JOSE_ALG_NOT_ALLOWED',
  'ERR_JOSE_NOT_SUPPORTED',
  'ERR_JWKS_NO_MATCHING_KEY',
  'ERR_JWKS_MULTIPLE_MATCHING_KEYS',
]);

type KeySource = JWTVerifyGetKey | CryptoKey;

/**
 * Builds the Authenticator of a jwt policy: `jwksUrl` when set, else the Secret's `jwks` (a JWKS) or `key` (one PEM
 * SPKI public key, imported for policy.algorithms[0], which is then required). A policy that cannot be enforced
 * fails closed with 503.
 */
export function jwtAuthenticator(policy: JwtAuthPolicy, secret: Secret | undefined, log: Logger): Authenticator {
  const bad = policy.algorithms.filter((a) => !jwtAlgorithms.includes(a));
  if (bad.length > 0) {
    return failClosed(new AuthConfigError(`jwt algorithms ${bad.join(', ')} are not allowed (only ${jwtAlgorithms.join(', ')})`));
  }
  const algorithms = policy.algorithms.length > 0 ? [...policy.algorithms] : [...jwtAlgorithms];
  if (policy.jwksUrl !== undefined) {
    let url: URL;
    try {
      url = new URL(policy.jwksUrl);
    } catch {
      return failClosed(new AuthConfigError(`jwt jwksUrl ${JSON.stringify(policy.jwksUrl)} is not a URL`));
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      return failClosed(new AuthConfigError(`jwt jwksUrl ${url.href} is not http(s)`));
    }
    return new JwtAuthenticator(Promise.resolve(createRemoteJWKSet(url, { [customFetch]: heldOffAfterFailure(fetch) })), policy, algorithms);
  }
  if (policy.secret === undefined) return failClosed(new AuthConfigError('jwt policy names neither a jwksUrl nor a Secret'));
  const name = refKey(policy.secret);
  if (!secret) return failClosed(new AuthConfigError(`jwt Secret ${name} does not exist`));
  const jwks = secretValue(secret, 'jwks');
  if (jwks !== undefined) {
    try {
      return new JwtAuthenticator(Promise.resolve(createLocalJWKSet(JSON.parse(jwks.toString('utf8')))), policy, algorithms);
    } catch (cause) {
      return failClosed(new AuthConfigError(`jwt Secret ${name} key "jwks" is not a JSON Web Key Set`, { cause }));
    }
  }
  const pem = secretValue(secret, 'key');
  if (pem === undefined) return failClosed(new AuthConfigError(`jwt Secret ${name} has neither key "jwks" nor key "key"`));
  const alg = policy.algorithms[0];
  if (alg === undefined) {
    return failClosed(new AuthConfigError(`jwt Secret ${name} holds one PEM key, so the policy must name its algorithm`));
  }
  const key = importSPKI(pem.toString('utf8'), alg).catch((cause: unknown) => {
    throw new AuthConfigError(`jwt Secret ${name} key "key" is not a PEM public key for ${alg}`, { cause });
  });
  // Logged once here; check() awaits the promise again and turns the rejection into 503.
  key.catch((e: unknown) => log.warn(`auth policy cannot be enforced, failing closed: ${(e as Error).message}`));
  // A single imported key is bound to its algorithm: only that one is accepted.
  return new JwtAuthenticator(key, policy, [alg]);
}

/** Checks `Authorization: Bearer` tokens; 401 with a Bearer challenge when absent or invalid, 503 when keys are unavailable. */
export class JwtAuthenticator implements Authenticator {
  readonly #key: Promise<KeySource>;
  readonly #options: JWTVerifyOptions;
  readonly #invalid: Record<string, string> = { 'www-authenticate': 'Bearer error="invalid_token"' };

  constructor(key: Promise<KeySource>, policy: JwtAuthPolicy, algorithms: readonly string[]) {
    this.#key = key;
    this.#options = {
      algorithms: [...algorithms],
      clockTolerance: jwtClockToleranceSeconds,
      requiredClaims: ['exp'],
      ...(policy.issuer !== undefined ? { issuer: policy.issuer } : {}),
      ...(policy.audience !== undefined && policy.audience.length > 0 ? { audience: policy.audience } : {}),
    };
  }

  async check(req: AuthRequest): Promise<AuthResult> {
    const token = credentials(req.headers, 'Bearer');
    if (token === undefined) {
      return deny(401, 'no bearer token', { 'www-authenticate': `Bearer realm="${safeRealm(req.host)}"` });
    }
    let key: KeySource;
    try {
      key = await this.#key;
    } catch (e) {
      return deny(503, e instanceof Error ? e.message : String(e));
    }
    try {
      // The two overloads (key vs. key function) differ only in the key's type.
      await jwtVerify(token, key as JWTVerifyGetKey, this.#options);
      return { allow: true, upstreamHeaders: {} };
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      if (typeof code === 'string' && tokenErrors.has(code)) return deny(401, `invalid token: ${code}`, this.#invalid);
      return deny(503, `token keys unavailable: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
}

/** A JWKS fetch that is being held off after a failure (see jwksRetryMs). */
export class JwksHeldOffError extends Error {
  override readonly name = 'JwksHeldOffError';
  readonly code = 'NETPLANE_INGRESS_JWKS_HELD_OFF';
}

/**
 * `fetchImpl` for one JWKS URL, failing at once for jwksRetryMs after a fetch that failed. The body is read here, so
 * that a 200 that is not JSON counts as a failure too; jose parses it again.
 */
export function heldOffAfterFailure(fetchImpl: FetchImplementation, now: () => number = () => performance.now()): FetchImplementation {
  let retryAt = -Infinity;
  return async (url, options) => {
    const t = now();
    if (t < retryAt) throw new JwksHeldOffError(`the JWKS fetch failed less than ${jwksRetryMs} ms ago; asking again in ${Math.ceil(retryAt - t)} ms`);
    try {
      const res = await fetchImpl(url, options);
      const body = await res.text();
      if (res.status !== 200) throw new Error(`the JWKS URL answered ${res.status}`);
      JSON.parse(body);
      return new Response(body, { status: 200, headers: res.headers });
    } catch (e) {
      retryAt = now() + jwksRetryMs;
      throw e;
    }
  };
}
