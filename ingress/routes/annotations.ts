// Reading Ingress annotations: the names netplane knows under `netplane.io/` and `nginx.ingress.kubernetes.io/`,
// and the value parsers that turn text into numbers, booleans and lists or fail with one sentence. Nothing read
// here is ever executed or rendered into a configuration language; the ingress-nginx annotations netplane does not
// read are refused or reported as ignored by unhonoured.ts.
import { goBool } from '../../runtime/anchor-flags.ts';
import { AnnotationError, quote } from './errors.ts';
import { refuseUnhonoured, type UnhonouredOptions } from './unhonoured.ts';

/** Prefix of netplane's own annotations; wins over the nginx one of the same name. */
export const netplanePrefix = 'netplane.io/';
/** Prefix of ingress-nginx annotations, read for the names netplane shares with it. */
export const nginxPrefix = 'nginx.ingress.kubernetes.io/';

/** Names read under both prefixes. */
const sharedNames = [
  'ssl-redirect', 'force-ssl-redirect',
  'limit-rps', 'limit-rpm', 'limit-connections', 'limit-burst-multiplier', 'limit-whitelist', 'limit-allowlist',
  'auth-type', 'auth-secret', 'auth-secret-type', 'auth-realm', 'auth-url', 'auth-method', 'auth-response-headers', 'auth-signin', 'auth-signin-redirect-param', 'auth-request-redirect', 'auth-always-set-cookie', 'auth-proxy-set-headers',
  'rewrite-target', 'use-regex', 'backend-protocol', 'proxy-connect-timeout', 'proxy-read-timeout', 'proxy-send-timeout', 'proxy-body-size',
  'permanent-redirect', 'permanent-redirect-code', 'temporal-redirect', 'temporal-redirect-code', 'app-root',
  'upstream-vhost', 'x-forwarded-prefix', 'proxy-cookie-path', 'proxy-cookie-domain', 'limit-rate', 'limit-rate-after', 'proxy-redirect-from', 'proxy-redirect-to', 'server-alias', 'from-to-www-redirect', 'proxy-next-upstream-tries', 'proxy-next-upstream', 'proxy-next-upstream-timeout', 'custom-http-errors', 'disable-proxy-intercept-errors', 'default-backend', 'custom-headers', 'service-upstream', 'satisfy',
  'proxy-ssl-verify', 'proxy-ssl-secret', 'proxy-ssl-name', 'proxy-ssl-server-name',
  'mirror-target', 'mirror-host', 'mirror-request-body',
  'enable-cors', 'cors-allow-origin', 'cors-allow-methods', 'cors-allow-headers', 'cors-expose-headers', 'cors-allow-credentials', 'cors-max-age',
  'affinity', 'session-cookie-name', 'session-cookie-max-age', 'session-cookie-path', 'session-cookie-secure', 'session-cookie-samesite', 'load-balance', 'upstream-hash-by', 'upstream-hash-by-subset', 'upstream-hash-by-subset-size',
  'canary', 'canary-by-header', 'canary-by-header-value', 'canary-by-header-pattern', 'canary-by-cookie', 'canary-weight', 'canary-weight-total',
  'allowlist-source-range', 'whitelist-source-range', 'denylist-source-range',
  'auth-tls-secret', 'auth-tls-verify-client', 'auth-tls-verify-depth', 'auth-tls-pass-certificate-to-upstream', 'auth-tls-error-page', 'auth-tls-match-cn',
] as const;

/** Names read only under netplane.io/ (ingress-nginx has no such annotation, or means something else by it). */
const netplaneNames = [
  'auth-timeout', 'auth-jwt-jwks-url', 'auth-jwt-secret', 'auth-jwt-issuer', 'auth-jwt-audience', 'auth-jwt-algorithms',
] as const;

/** An annotation name netplane reads, without prefix. */
export type AnnotationName = (typeof sharedNames)[number] | (typeof netplaneNames)[number];

const shared: ReadonlySet<string> = new Set(sharedNames);
const known: ReadonlySet<string> = new Set([...sharedNames, ...netplaneNames]);

/** Whether netplane reads the ingress-nginx annotation `name` (without prefix). */
export function readsNginxName(name: string): boolean {
  return shared.has(name);
}

const controlCharacter = /[\x00-\x1f\x7f]/;

/** One annotation as read: its full key (to name in problems) and its value, trimmed of spaces. */
export interface Annotation {
  key: string;
  value: string;
}

/**
 * The annotations of one Ingress, by name: `netplane.io/<name>` when set, else `nginx.ingress.kubernetes.io/<name>`.
 * The constructor throws AnnotationError for an unknown `netplane.io/` name (a typo) and for an ingress-nginx
 * annotation that changes who may reach what, or what a request does, that netplane does not honour (a snippet, a
 * WAF, ssl-passthrough ...: see unhonoured.ts); every reader throws AnnotationError for a value it cannot honour.
 */
export class AnnotationReader {
  readonly #annotations: Readonly<Record<string, string>>;

  constructor(annotations: Readonly<Record<string, string>>, o: UnhonouredOptions = {}) {
    this.#annotations = annotations;
    for (const key of Object.keys(annotations)) {
      if (key.startsWith(netplanePrefix) && !known.has(key.slice(netplanePrefix.length))) {
        throw new AnnotationError(key, `annotation ${key} is not a netplane annotation; known names under ${netplanePrefix} are ${[...known].join(', ')}`);
      }
    }
    // Every value netplane could read is checked up front, read or not (an nginx value under a netplane.io one). Values
    // are read trimmed, so the line break a YAML block scalar (`|`) leaves at the end is no control character.
    for (const [key, value] of Object.entries(annotations)) {
      const readable = key.startsWith(netplanePrefix) || (key.startsWith(nginxPrefix) && shared.has(key.slice(nginxPrefix.length)));
      if (readable && controlCharacter.test(value.trim())) throw invalid({ key, value }, 'annotation values must not contain control characters');
    }
    refuseUnhonoured(annotations, o);
  }

  /** The annotation `name`, or undefined when neither prefix sets it. */
  get(name: AnnotationName): Annotation | undefined {
    let key = netplanePrefix + name;
    let value = this.#annotations[key];
    if (value === undefined && shared.has(name)) {
      key = nginxPrefix + name;
      value = this.#annotations[key];
    }
    if (value === undefined) return undefined;
    return { key, value: value.trim() };
  }

  /** A boolean as ingress-nginx reads one (Go's ParseBool: true/false, True/False, TRUE/FALSE, t/f, 1/0). */
  bool(name: AnnotationName, fallback: boolean): boolean {
    const a = this.get(name);
    if (a === undefined) return fallback;
    const b = parseGoBool(a.value);
    if (b === undefined) throw invalid(a, 'allowed are "true" and "false"');
    return b;
  }

  /** A whole number from `min` to `max`; undefined when not set. */
  int(name: AnnotationName, min = 1, max = Number.MAX_SAFE_INTEGER): number | undefined {
    const a = this.get(name);
    return a === undefined ? undefined : intIn(a, min, max);
  }

  /** A size as nginx writes one (`0`, `512`, `100k`, `8m`, `1g`; any case) in bytes; undefined when not set. */
  bytes(name: AnnotationName): number | undefined {
    const a = this.get(name);
    if (a === undefined) return undefined;
    const n = parseSize(a.value);
    if (n === undefined) throw invalid(a, 'allowed is a size such as 0 (no limit), 512, 100k, 8m or 1g');
    return n;
  }

  /** A time in whole seconds (1 to 86400, nginx style, no unit) as milliseconds; `fallbackMs` when not set. */
  secondsAsMs(name: AnnotationName, fallbackMs: number): number {
    const a = this.get(name);
    // One day at most: longer waits are mistakes, and Node timers cannot go past 2^31-1 ms (24.8 days).
    return a === undefined ? fallbackMs : intIn(a, 1, 86_400, ' (seconds, without unit)') * 1000;
  }

  /** One of `allowed` (exact, case-sensitive unless `upper`), mapped through `aliases`; undefined when not set. */
  oneOf<T extends string>(name: AnnotationName, allowed: readonly T[], options: OneOfOptions = {}): T | undefined {
    const a = this.get(name);
    if (a === undefined) return undefined;
    const v = options.upper === true ? a.value.toUpperCase() : a.value;
    const mapped = options.aliases?.[v] ?? v;
    if ((allowed as readonly string[]).includes(mapped)) return mapped as T;
    const extra = options.unsupported?.includes(v) === true ? `; netplane does not support ${v}` : '';
    throw invalid(a, `allowed are ${allowed.join(', ')}${extra}`);
  }

  /** A comma-separated list, blanks dropped, each item checked by `item` (a test and what it allows). */
  list(name: AnnotationName, item: { test: (s: string) => boolean; allowed: string }): string[] | undefined {
    const a = this.get(name);
    if (a === undefined) return undefined;
    const items = a.value.split(',').map((s) => s.trim()).filter((s) => s !== '');
    const bad = items.find((s) => !item.test(s));
    if (bad !== undefined) throw invalid(a, `${quote(bad)} is not allowed: the list items must be ${item.allowed}`);
    return items;
  }
}

/** Options of AnnotationReader.oneOf. */
export interface OneOfOptions {
  /** Compare upper-cased (ingress-nginx upper-cases backend-protocol). */
  upper?: boolean;
  /** Other spellings read as one of the allowed values (ingress-nginx `ewma` → least_request). */
  aliases?: Readonly<Record<string, string>>;
  /** Values ingress-nginx knows that netplane cannot honour, named as such in the problem. */
  unsupported?: readonly string[];
}

/** The AnnotationError for `a`: one sentence naming the key, the value and `allowed`. */
export function invalid(a: Annotation, allowed: string): AnnotationError {
  return new AnnotationError(a.key, `annotation ${a.key} is ${quote(a.value)}; ${allowed}`);
}

/** A size as nginx writes one (`0`, `512`, `100k`, `8m`, `1g`; any case) in bytes, at most 1 TiB; undefined when it is not one. */
export function parseSize(text: string): number | undefined {
  const m = /^(\d{1,10})([kmg]?)$/i.exec(text.trim());
  if (!m) return undefined;
  const n = Number(m[1]) * { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g'];
  return n <= 1024 ** 4 ? n : undefined;
}

function intIn(a: Annotation, min: number, max: number, unit = ''): number {
  const n = /^[0-9]{1,16}$/.test(a.value) ? Number(a.value) : Number.NaN;
  if (!(n >= min && n <= max)) throw invalid(a, `allowed is a whole number from ${min} to ${max}${unit}`);
  return n;
}

/** A switch as Go's strconv.ParseBool reads it (ingress-nginx's annotations and ConfigMap); undefined when it is none. */
export function parseGoBool(raw: string): boolean | undefined {
  const b = goBool(raw);
  return b === undefined ? undefined : b === 'true';
}

/** An HTTP token (RFC 9110 tchar): header names and cookie names. */
export const httpToken = { test: (s: string) => /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(s), allowed: 'HTTP tokens (letters, digits and !#$%&\'*+-.^_`|~)' };
