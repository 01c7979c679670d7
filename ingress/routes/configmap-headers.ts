// Headers an Ingress takes from a ConfigMap, as ingress-nginx reads them: custom-headers (response headers added to
// every response of the Ingress's routes) and auth-proxy-set-headers (headers sent to the external auth service).
// The ConfigMap is named `namespace/name` in the Ingress's own namespace; its keys are header names and its values
// header values, checked here and held as data: never rendered into anything, never expanded.
import { AnnotationError, quote } from './errors.ts';
import type { Annotation } from './annotations.ts';
import { objectName } from './names.ts';
import type { ObjectRef } from './types.ts';

/** What the route compiler may know of a ConfigMap: its data; 'loading' while the source has not read it yet. */
export type ConfigMapLookup = (ref: ObjectRef) => { readonly data: Readonly<Record<string, string>> } | 'loading' | undefined;

/** What the headers of a ConfigMap are for: the client's responses, or the auth subrequest. */
export type HeaderUse = 'custom-headers' | 'auth-proxy-set-headers';

/**
 * The ConfigMap `a` names, or undefined when its value is empty (ingress-nginx reads that as unset). Only
 * `namespace/name` in the Ingress's own namespace: ingress-nginx looks the value up as a `namespace/name` key, so a
 * bare name finds nothing there, and an Ingress author may not read another namespace's ConfigMaps through the gateway.
 */
export function configMapRef(a: Annotation, namespace: string): ObjectRef | undefined {
  if (a.value === '') return undefined;
  const parts = a.value.split('/');
  if (parts.length !== 2 || !objectName.test(parts[0]!) || !objectName.test(parts[1]!)) {
    throw new AnnotationError(a.key, `annotation ${a.key} is ${quote(a.value)}; allowed is a ConfigMap as "namespace/name", such as ${quote(`${namespace}/headers`)} (ingress-nginx finds no ConfigMap by a bare name)`);
  }
  if (parts[0] !== namespace) {
    throw new AnnotationError(a.key, `annotation ${a.key} is ${quote(a.value)}; the ConfigMap must be in the Ingress's own namespace ${quote(namespace)}: reading another namespace's ConfigMap is not allowed`);
  }
  return { namespace, name: parts[1]! };
}

// ingress-nginx's header name pattern (customheaders and authreq ValidHeader): a subset of RFC 9110's token.
const headerName = /^[A-Za-z0-9_-]+$/;
// Visible ASCII and spaces inside: ingress-nginx's custom-headers value pattern, without the leading and trailing
// spaces that no field value has (RFC 9110 5.5). No control character, no byte above 0x7e.
const headerValue = /^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$/;

/** Names that describe the connection or the message framing, not the content: never set from a ConfigMap. */
const connectionNames: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'content-length', 'http2-settings']);
/** The auth subrequest's own headers (ingress/auth/external.ts sets them), and those its client sets itself. */
const subrequestNames: ReadonlySet<string> = new Set([
  ...connectionNames, 'host', 'expect', 'proxy-authorization',
  'x-original-url', 'x-original-method', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-real-ip', 'x-auth-request-redirect',
]);

/**
 * Why the data of a ConfigMap cannot be used as headers for `use`, or undefined when it can. Names follow
 * ingress-nginx's pattern (letters, digits, "-" and "_") and may not be connection or framing fields; values are
 * visible ASCII with inner spaces, without "$" (nginx's more_set_headers and proxy_set_header would expand it as a
 * variable, or refuse the configuration for an unknown one; netplane never expands). For the auth subrequest a value
 * may be empty (nginx's proxy_set_header with an empty value sends no such header).
 */
export function headerDataProblem(data: Readonly<Record<string, string>>, use: HeaderUse): string | undefined {
  const reserved = use === 'custom-headers' ? connectionNames : subrequestNames;
  const lower = new Map<string, string>();
  for (const [name, value] of Object.entries(data)) {
    if (!headerName.test(name)) return `key ${quote(name)} is not a header name (allowed are letters, digits, "-" and "_")`;
    const l = name.toLowerCase();
    if (reserved.has(l) || (use === 'auth-proxy-set-headers' && l.startsWith('ssl-client-'))) return `key ${quote(name)} is not allowed: ${use === 'custom-headers' || connectionNames.has(l) ? 'it describes the connection, not the response' : 'netplane sets it on the auth subrequest itself'}`;
    const twin = lower.get(l);
    if (twin !== undefined) return `keys ${quote(twin)} and ${quote(name)} name the same header`;
    lower.set(l, name);
    if (use === 'auth-proxy-set-headers' && value === '') continue;
    if (!headerValue.test(value)) return `the value of ${quote(name)} is ${quote(value)}: allowed is visible ASCII text with spaces only inside it (no control character, line break or non-ASCII byte)${use === 'custom-headers' ? ', not empty' : ''}`;
    if (value.includes('$')) return `the value of ${quote(name)} is ${quote(value)}: nginx would expand "$" as a variable, and netplane sends values as written`;
  }
  return undefined;
}

/**
 * The headers of the ConfigMap annotation `a` names (lower-case names), for `use`; undefined when its value is empty.
 * Throws AnnotationError when the name is not allowed, the ConfigMap is not there (or not read yet), or its data is
 * not usable: the Ingress is then not served as written, as ingress-nginx denies its locations.
 */
export function readHeaderMap(a: Annotation, namespace: string, lookup: ConfigMapLookup | undefined, use: HeaderUse): Readonly<Record<string, string>> | undefined {
  const ref = configMapRef(a, namespace);
  if (ref === undefined) return undefined;
  const found = lookup?.(ref);
  const name = `ConfigMap ${ref.namespace}/${ref.name}`;
  if (found === 'loading') throw new ConfigMapPendingError(a.key, `annotation ${a.key} names ${name}, which is being read`);
  if (found === undefined) throw new AnnotationError(a.key, `annotation ${a.key} names ${name}, which is not there`);
  const problem = headerDataProblem(found.data, use);
  if (problem !== undefined) throw new AnnotationError(a.key, `annotation ${a.key} names ${name}, which cannot be used: ${problem}`);
  const out: Record<string, string> = {};
  for (const key of Object.keys(found.data).sort()) out[key.toLowerCase()] = found.data[key]!;
  return out;
}

/** The Ingress names a ConfigMap the source has not read yet: not served until it has (a problem that is not logged). */
export class ConfigMapPendingError extends AnnotationError {
  readonly pending = true;
}
