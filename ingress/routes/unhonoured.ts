// The ingress-nginx annotations netplane does not honour, in two groups. Those that change who may reach what, or
// what a request does (a snippet's `deny all;`, a WAF, a passthrough, a rate limit shared between replicas ...) take the
// Ingress out of service: serving it without them would serve something its author did not write. Pure tuning of
// nginx itself (buffers, its own timeouts, tracing) is ignored and said so once per Ingress at info. Every other
// `nginx.ingress.kubernetes.io/` name that netplane does not read is reported with the ignored ones.
import type { Logger } from '../../runtime/logger.ts';
import { AnnotationError, quote } from './errors.ts';

const nginxPrefix = 'nginx.ingress.kubernetes.io/';

/** An ingress-nginx annotation netplane refuses when `applies` says its value asks for something. */
interface Refusal {
  /** The name without prefix; a name starting with `*` matches by suffix (`*-snippet`). */
  name: string;
  /** Whether the value (trimmed) asks for the behaviour; `all` reads the Ingress's other annotations, by name. */
  applies: (value: string, all: (name: string) => string | undefined, o: UnhonouredOptions) => boolean;
  /** Why serving the Ingress without it is wrong: what netplane does not do, and what would follow. */
  why: string;
}

// Go's ParseBool false words, and the empty value: what asks for nothing. Any other value counts as "on", so a
// garbled boolean fails closed.
const falseWords: ReadonlySet<string> = new Set(['', 'false', 'False', 'FALSE', 'f', 'F', '0']);
const on = (v: string): boolean => !falseWords.has(v);
const set = (v: string): boolean => v !== '';
const nonZero = (v: string): boolean => v !== '' && v !== '0';

/** The gateway's switches that make a refusable annotation servable. */
export interface UnhonouredOptions {
  /**
   * --enable-ssl-passthrough: ingress/edge passes the TLS connections of an Ingress with ssl-passthrough "true"
   * (Go's true words) through, so only other values are refused.
   */
  sslPassthrough?: boolean | undefined;
}

const goTrue: ReadonlySet<string> = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
const passedThrough = (v: string, o: UnhonouredOptions): boolean => o.sslPassthrough === true && goTrue.has(v);

/** The ssl-passthrough annotation's full key. */
export const sslPassthroughKey = `${nginxPrefix}ssl-passthrough`;

/** Whether the annotations ask for ssl-passthrough in a way the gateway serves (Go's true words, with the switch on). */
export function asksPassthrough(annotations: Readonly<Record<string, string>>, o: UnhonouredOptions): boolean {
  const value = annotations[sslPassthroughKey];
  return value !== undefined && passedThrough(value.trim(), o);
}

const noSnippets = 'netplane never runs nginx configuration, and serving the Ingress without it would drop whatever it enforces (deny rules, returns, headers)';

/** The refused ingress-nginx annotations, most used first. */
export const refusals: readonly Refusal[] = [
  { name: '*-snippet', applies: set, why: noSnippets },
  { name: 'enable-modsecurity', applies: on, why: 'netplane has no web application firewall, and serving the Ingress without it would pass requests the firewall was to stop' },
  { name: 'enable-owasp-core-rules', applies: on, why: 'netplane has no web application firewall, and serving the Ingress without it would pass requests the rules were to stop' },
  { name: 'global-rate-limit', applies: nonZero, why: 'netplane has no rate limit shared between replicas (limit-rps and limit-rpm count per gateway), and serving the Ingress without it would lift the limit' },
  { name: 'global-rate-limit-window', applies: set, why: 'netplane has no rate limit shared between replicas (limit-rps and limit-rpm count per gateway)' },
  { name: 'global-rate-limit-key', applies: set, why: 'netplane has no rate limit shared between replicas (limit-rps and limit-rpm count per gateway)' },
  { name: 'global-rate-limit-ignored-cidrs', applies: set, why: 'netplane has no rate limit shared between replicas (limit-rps and limit-rpm count per gateway)' },
  {
    name: 'ssl-passthrough',
    applies: (v, _all, o) => on(v) && !passedThrough(v, o),
    why: 'without --enable-ssl-passthrough (and a value of "true" with it) netplane terminates TLS itself, and the backend would then get plain HTTP',
  },
];

/**
 * The ingress-nginx annotations that tune nginx itself (buffers, its own time-outs, tracing, access-log switches,
 * TLS ciphers) or refine a feature netplane does its own way: accepted, and reported once per Ingress as ignored.
 */
export const ignoredNames: readonly string[] = [
  'proxy-buffering', 'proxy-buffer-size', 'proxy-buffers-number', 'proxy-max-temp-file-size', 'proxy-request-buffering',
  'client-body-buffer-size', 'proxy-http-version',
  'connection-proxy-header', 'http2-push-preload', 'preserve-trailing-slash', 'relative-redirects',
  'enable-access-log', 'enable-rewrite-log', 'enable-opentracing', 'opentracing-trust-incoming-span', 'enable-opentelemetry',
  'opentelemetry-trust-incoming-span', 'opentelemetry-operation-name', 'enable-influxdb', 'influxdb-measurement', 'influxdb-port',
  'influxdb-host', 'influxdb-server-name', 'modsecurity-transaction-id', 'ssl-ciphers', 'ssl-prefer-server-ciphers',
  'proxy-ssl-ciphers', 'proxy-ssl-protocols', 'proxy-ssl-verify-depth', 'auth-cache-key', 'auth-cache-duration', 'auth-keepalive',
  'auth-keepalive-share-vars', 'auth-keepalive-requests', 'auth-keepalive-timeout', 'enable-global-auth', 'affinity-mode',
  'affinity-canary-behavior', 'session-cookie-expires', 'session-cookie-change-on-failure', 'session-cookie-conditional-samesite-none',
  'fastcgi-index', 'fastcgi-params-configmap',
];
const ignored: ReadonlySet<string> = new Set(ignoredNames);

function refusalOf(name: string): Refusal | undefined {
  return refusals.find((r) => (r.name.startsWith('*') ? name.endsWith(r.name.slice(1)) : name === r.name));
}

/**
 * Throws AnnotationError for the first ingress-nginx annotation of `annotations` whose value asks for something
 * netplane does not do (see `refusals`): one sentence naming the annotation, its value and why.
 */
export function refuseUnhonoured(annotations: Readonly<Record<string, string>>, o: UnhonouredOptions = {}): void {
  const all = (name: string) => annotations[nginxPrefix + name];
  for (const [key, value] of Object.entries(annotations)) {
    if (!key.startsWith(nginxPrefix)) continue;
    const refusal = refusalOf(key.slice(nginxPrefix.length));
    if (refusal !== undefined && refusal.applies(value.trim(), (n) => all(n)?.trim(), o)) {
      throw new AnnotationError(key, `annotation ${key} is ${quote(value.trim())}; ${refusal.why}`);
    }
  }
}

/** What an Ingress sets under `nginx.ingress.kubernetes.io/` that netplane does not use, full keys, sorted. */
export interface IgnoredAnnotations {
  /** Tuning of nginx itself (`ignoredNames`), and refusable ones set to a value that asks for nothing (`"false"`). */
  tuning: string[];
  /** Names netplane does not know at all (misspelt, retired, or newer than netplane). */
  unknown: string[];
}

/** Sorts the ingress-nginx annotations netplane does not use into tuning and unknown; `known` says what netplane reads. */
export function ignoredAnnotations(annotations: Readonly<Record<string, string>>, known: (name: string) => boolean, o: UnhonouredOptions = {}): IgnoredAnnotations {
  const out: IgnoredAnnotations = { tuning: [], unknown: [] };
  for (const key of Object.keys(annotations).sort()) {
    if (!key.startsWith(nginxPrefix)) continue;
    const name = key.slice(nginxPrefix.length);
    if (known(name) || (name === 'ssl-passthrough' && passedThrough(annotations[key]!.trim(), o))) continue;
    if (ignored.has(name) || refusalOf(name) !== undefined) out.tuning.push(key);
    else out.unknown.push(key);
  }
  return out;
}

/** Something with annotations, as an Ingress has. */
interface Annotated {
  metadata: { annotations: Readonly<Record<string, string>> };
}

/**
 * Logs at info, for each served Ingress, the ingress-nginx annotations it sets that netplane ignores: once per
 * Ingress, and again only when that list changes.
 */
export class IgnoredAnnotationLog {
  readonly #known: (name: string) => boolean;
  readonly #logged = new Map<string, string>();
  readonly #o: UnhonouredOptions;

  constructor(known: (name: string) => boolean, o: UnhonouredOptions = {}) {
    this.#known = known;
    this.#o = o;
  }

  /** Reports the served Ingresses (`namespace/name` → Ingress) and forgets those no longer served. */
  report(served: ReadonlyMap<string, Annotated>, log: Logger): void {
    for (const key of this.#logged.keys()) if (!served.has(key)) this.#logged.delete(key);
    for (const [ingress, object] of served) {
      const { tuning, unknown } = ignoredAnnotations(object.metadata.annotations, this.#known, this.#o);
      const text = `${tuning.join(',')}|${unknown.join(',')}`;
      if (this.#logged.get(ingress) === text) continue;
      this.#logged.set(ingress, text);
      if (tuning.length === 0 && unknown.length === 0) continue;
      const parts = [
        ...(tuning.length > 0 ? [`nginx tuning, or asking for nothing: ${tuning.join(', ')}`] : []),
        ...(unknown.length > 0 ? [`not known to netplane: ${unknown.join(', ')}`] : []),
      ];
      log.info({ ingress, ignored: tuning, unknown }, `Ingress ${ingress}: annotations ignored (${parts.join('; ')})`);
    }
  }
}
