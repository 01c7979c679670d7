// The auth step's contract with the request pipeline: what an Authenticator sees of a request and what it answers.
import type { IncomingHttpHeaders } from 'node:http';
import type { Secret } from '../../cluster/model/secret.ts';
import type { ObjectRef } from '../routes/types.ts';

/** What an Authenticator sees of a client request. */
export interface AuthRequest {
  method: string;
  /** Path and query as received. */
  url: string;
  host: string;
  /**
   * The host of the route the request matched: a name, `*.domain` for a wildcard rule, '' for a rule without host.
   * An auth URL with `$host` takes it from here; absent, such a URL fails closed.
   */
  routeHost?: string;
  proto: 'http' | 'https';
  clientIP: string;
  headers: IncomingHttpHeaders;
  /** What the gateway verified of a client certificate (ssl-client-* headers), on hosts that check them. */
  clientCert?: Readonly<Record<string, string>>;
  /** The X-Request-ID the request goes upstream with; the auth service gets the same (ingress-nginx's $req_id). */
  requestId?: string;
}

/**
 * The verdict on one request. On allow, `upstreamHeaders` are set on the upstream request in place of the client's
 * of the same name; an empty list sends none (nginx's proxy_set_header with an empty value). On deny, `status` and `headers` go to the client; `reason` is for the
 * log only and is never sent. `setCookies`: the Set-Cookie values of an auth service's answer, each one header, for
 * the pipeline to add to the client's response (ingress-nginx's `add_header Set-Cookie $auth_cookie`).
 */
export type AuthResult =
  | { allow: true; upstreamHeaders?: Record<string, string | string[]>; setCookies?: string[] }
  | { allow: false; status: number; headers: Record<string, string>; reason: string; setCookies?: string[] };

/** Checks requests against one Ingress's auth policy; never throws (failures become a deny with a status). */
export interface Authenticator {
  check(req: AuthRequest): Promise<AuthResult>;
}

/** Reads a Secret from the cluster snapshot; undefined when it does not exist. */
export type SecretLookup = (ref: ObjectRef) => Secret | undefined;

/** A policy that cannot be enforced as written (missing Secret, bad key, bad URL): requests fail closed with 503. */
export class AuthConfigError extends Error {
  override readonly name = 'AuthConfigError';
  readonly code = 'NETPLANE_INGRESS_AUTH_CONFIG';
}

/** A deny result. */
export function deny(status: number, reason: string, headers: Record<string, string> = {}): AuthResult {
  return { allow: false, status, headers, reason };
}

/** An Authenticator that refuses every request with 503: what a policy that cannot be enforced becomes. */
export class FailClosedAuthenticator implements Authenticator {
  readonly error: AuthConfigError;
  readonly #result: AuthResult;

  constructor(error: AuthConfigError) {
    this.error = error;
    this.#result = deny(503, error.message);
  }

  async check(): Promise<AuthResult> {
    return this.#result;
  }
}

/** A FailClosedAuthenticator for `error`. */
export function failClosed(error: AuthConfigError): Authenticator {
  return new FailClosedAuthenticator(error);
}

/** `namespace/name` of a Secret reference: the key `Authenticators.secretsChanged` takes. */
export function refKey(ref: ObjectRef): string {
  return `${ref.namespace}/${ref.name}`;
}

/**
 * A realm as an RFC 9110 quoted-string body: printable ASCII only, without `"` and `\` (so nothing needs escaping
 * and no header can be injected).
 */
export function safeRealm(realm: string): string {
  return realm.replace(/[^\x20-\x7e]|["\\]/g, '');
}

/** The value of the request's Authorization header for `scheme` (case-insensitive), or undefined. */
export function credentials(headers: IncomingHttpHeaders, scheme: string): string | undefined {
  const value = headers.authorization;
  if (typeof value !== 'string') return undefined;
  const space = value.indexOf(' ');
  if (space < 0 || value.slice(0, space).toLowerCase() !== scheme.toLowerCase()) return undefined;
  const token = value.slice(space + 1).trim();
  return token === '' ? undefined : token;
}
