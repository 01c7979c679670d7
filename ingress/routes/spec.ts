// One Ingress on its own: its hosts, paths, backends, TLS entries and annotations checked and normalised, before
// any other Ingress is looked at. Anything that cannot be served throws IngressSpecError (or AnnotationError) with
// one sentence naming the field, the value and what is allowed.
import { backendKey, hostName, ipv4, objectName, portName, serviceName } from './names.ts';
import type { Ingress, IngressBackend } from '../../cluster/model/ingress.ts';
import { IngressSpecError, quote } from './errors.ts';
import { parseRegexPath, rewriteParts } from './pattern.ts';
import { readPolicy, type CanarySettings, type PolicyDefaults } from './policy.ts';
import type { BackendRef, IngressPolicy, ObjectRef, RegexPath, TlsChoice } from './types.ts';

/** One host/path rule of an Ingress, normalised. */
export interface CompiledRule {
  /** Lower-case host, `*.example.com`, or '' for any host. */
  host: string;
  /** Exact: as written; Prefix: without trailing slash (except `/`). */
  path: string;
  pathType: 'Exact' | 'Prefix';
  backend: BackendRef;
  /** Set when the Ingress's paths are regular expressions (see regexPaths): `path` is then the path as written. */
  regex?: RegexPath;
}

/** One Ingress checked on its own. */
export interface CompiledIngress {
  /** `namespace/name`. */
  key: string;
  namespace: string;
  /** The version compiled. */
  ingress: Ingress;
  policy: IngressPolicy;
  /** Set when the Ingress is a canary: its rules attach to other Ingresses' routes. */
  canary?: CanarySettings;
  rules: CompiledRule[];
  defaultBackend?: BackendRef;
  tls: { host: string; choice: TlsChoice }[];
  /**
   * The Secrets of its tls entries, in order: a host of its rules that no entry lists takes the first whose
   * certificate names it (ingress-nginx's extractTLSSecretName), so that an entry without hosts serves its rules.
   */
  tlsSecrets: ObjectRef[];
  /** Secrets (`namespace/name`) its auth reads. */
  authSecrets: string[];
  /** When its paths are regular expressions and it has a default backend: the regex of the default backend's `/`. */
  rootRegex?: RegexPath;
  /** from-to-www-redirect: the other name of each of its hosts, to be redirected to that host when no Ingress routes it. */
  wwwRedirects?: { from: string; to: string }[];
  /** Annotation values replaced by their default, as ingress-nginx replaces them (policy.ts AnnotatedPolicy.warnings). */
  warnings?: string[];
}

/**
 * Client certificates are asked for in the TLS handshake, by the name the client gives there (SNI): they can guard
 * only rules with a host, and they belong to the primary Ingress of a host, not to a canary.
 */
function checkClientCertHosts(c: CompiledIngress): void {
  const why = 'client certificates are asked for per TLS host name';
  if (c.canary !== undefined) throw new IngressSpecError(`a canary Ingress cannot set auth-tls-secret: ${why}, by the primary Ingress of the host`);
  if (c.defaultBackend !== undefined) throw new IngressSpecError(`spec.defaultBackend cannot be guarded by auth-tls-secret: ${why}, and the default backend answers any name`);
  const i = c.ingress.spec.rules.findIndex((r) => r.host === undefined || r.host === '');
  if (i >= 0) throw new IngressSpecError(`spec.rules[${i}] has no host, so auth-tls-secret cannot guard it: ${why}`);
}

/** The store key of an Ingress: `namespace/name`. */
export function ingressKey(ingress: Ingress): string {
  return `${ingress.metadata.namespace}/${ingress.metadata.name}`;
}

/**
 * Whether ingress-nginx reads the Ingress's paths as regular expressions: with use-regex, or with a rewrite-target
 * other than one of its paths (enforceRegexModifier with needsRewrite; a default backend's location is `/`).
 * ingress-nginx then does so for every Ingress of the host; netplane for this one only, so an Ingress keeps the
 * Kubernetes meaning of its paths whatever another Ingress of the host asks for. A canary's paths name its
 * primary's, so they are read as regular expressions also when they look like one.
 */
function regexPaths(useRegex: boolean, target: string | undefined, paths: readonly string[], defaultBackend: boolean, canary: boolean): boolean {
  if (useRegex) return true;
  if (target !== undefined && (paths.some((p) => p !== target) || (defaultBackend && target !== '/'))) return true;
  return canary && paths.some(looksRegex);
}

// RFC 3986 path characters (pchar and "/").
const urlPath = /^\/[A-Za-z0-9\-._~%!$&'()*+,;=:@/]*$/;
/** Whether a path holds a group, `.*` or `.+`, or ends in `$`: written as a regular expression. */
function looksRegex(path: string): boolean {
  const open = path.indexOf('(');
  return (open >= 0 && path.indexOf(')', open) > 0) || path.includes('.*') || path.includes('.+') || path.endsWith('$');
}
// Kubernetes refuses these in Exact and Prefix paths; netplane reads ImplementationSpecific as Prefix, so there too.
const badSequence = /\/\/|\/\.\.?(\/|$)|%2f/i;

/** Checks and normalises one Ingress; throws IngressSpecError when any part of it cannot be served. */
export function compileIngress(ingress: Ingress, defaults: PolicyDefaults): CompiledIngress {
  const { namespace, annotations } = ingress.metadata;
  const { policy, canary, secrets, aliases, regex, fromToWww, passthrough, warnings } = readPolicy(namespace, annotations, defaults);
  const compiled: CompiledIngress = { key: ingressKey(ingress), namespace, ingress, policy, rules: [], tls: [], tlsSecrets: [], authSecrets: secrets };
  if (canary !== undefined) compiled.canary = canary;
  if (warnings !== undefined) compiled.warnings = warnings;
  const { spec } = ingress;
  if (spec.defaultBackend !== undefined) compiled.defaultBackend = backendRef(spec.defaultBackend, namespace, 'spec.defaultBackend');
  const written = (p: { path?: string | undefined }) => (p.path === undefined || p.path === '' ? '/' : p.path);
  const target = policy.rewriteTarget;
  const asRegex = regexPaths(regex === true, target, spec.rules.flatMap((r) => r.http?.paths.map(written) ?? []), spec.defaultBackend !== undefined, canary !== undefined);
  const readRegex = (source: string, where: string): RegexPath => {
    const rx = parseRegexPath(source, where);
    return target === undefined || target === source ? rx : { ...rx, rewrite: rewriteParts(target, rx, where) };
  };
  spec.rules.forEach((rule, i) => {
    const host = rule.host === undefined || rule.host === '' ? '' : checkHost(rule.host, `spec.rules[${i}].host`);
    rule.http?.paths.forEach((p, j) => {
      const where = `spec.rules[${i}].http.paths[${j}]`;
      const pathType = p.pathType === 'Exact' ? 'Exact' : 'Prefix';
      const backend = backendRef(p.backend, namespace, `${where}.backend`);
      if (asRegex) compiled.rules.push({ host, path: written(p), pathType, backend, regex: readRegex(written(p), `${where}.path`) });
      else compiled.rules.push({ host, path: checkPath(written(p), pathType, `${where}.path`), pathType, backend });
    });
  });
  if (asRegex && spec.defaultBackend !== undefined) compiled.rootRegex = readRegex('/', 'spec.defaultBackend path');
  if (policy.clientCert !== undefined) checkClientCertHosts(compiled);
  spec.tls.forEach((entry, i) => {
    const secretName = entry.secretName === '' ? undefined : entry.secretName;
    if (secretName !== undefined && !objectName.test(secretName)) {
      throw new IngressSpecError(`spec.tls[${i}].secretName ${quote(secretName)} is not allowed; it must be a Secret name (RFC 1123 subdomain)`);
    }
    if (secretName !== undefined) compiled.tlsSecrets.push({ namespace, name: secretName });
    entry.hosts.forEach((h, j) => {
      const choice: TlsChoice = secretName === undefined ? {} : { secret: { namespace, name: secretName } };
      compiled.tls.push({ host: checkHost(h, `spec.tls[${i}].hosts[${j}]`), choice });
    });
  });
  // Before the aliases: as in ingress-nginx, the redirect is for the Ingress's own hosts, not for its server-alias names.
  if (fromToWww === true) compiled.wwwRedirects = wwwCounterparts(compiled.rules);
  // Likewise passthrough (ingress-nginx passes only a server's own host name through; its aliases stay on nginx).
  if (passthrough === true) policy.sslPassthrough = { hosts: [...new Set(compiled.rules.map((r) => r.host).filter((h) => h !== ''))] };
  if (aliases !== undefined) addAliases(compiled, aliases);
  return compiled;
}

/**
 * from-to-www-redirect: for each host of the rules, the name to redirect from — `www.` and the host, or the host without
 * its `www.` — as ingress-nginx pairs them. Wildcard hosts, rules without a host, and a pair whose other name would not
 * be a name of two labels or more (`www.com` → `com`) get none.
 */
function wwwCounterparts(rules: readonly CompiledRule[]): { from: string; to: string }[] {
  const pairs: { from: string; to: string }[] = [];
  for (const to of new Set(rules.map((r) => r.host))) {
    if (to === '' || to.startsWith('*.')) continue;
    const from = to.startsWith('www.') ? to.slice(4) : `www.${to}`;
    if (from.length > 253 || !from.includes('.')) continue;
    pairs.push({ from, to });
  }
  return pairs;
}

/**
 * server-alias: the rules of the Ingress's first host (and its TLS choice) again under each alias, as ingress-nginx
 * adds the aliases to that host's server block. An Ingress without a host rule has nothing to alias.
 */
function addAliases(c: CompiledIngress, aliases: readonly string[]): void {
  const first = c.rules.find((r) => r.host !== '')?.host;
  if (first === undefined) throw new IngressSpecError('server-alias needs a rule with a host: the aliases are more names for the first host');
  const rules = c.rules.filter((r) => r.host === first);
  const tls = c.tls.find((t) => t.host === first);
  for (const alias of new Set(aliases)) {
    if (alias === first) continue;
    for (const r of rules) c.rules.push({ ...r, host: alias });
    if (tls !== undefined) c.tls.push({ host: alias, choice: tls.choice });
  }
}

/** A host lower-cased and checked: an RFC 1123 name, optionally `*.` and a name; never an IP address. */
function checkHost(raw: string, where: string): string {
  const host = raw.toLowerCase();
  if (host.length > 253 || !hostName.test(host) || ipv4.test(host)) {
    throw new IngressSpecError(`${where} ${quote(raw)} is not allowed; it must be a DNS name (RFC 1123), optionally starting with "*.", and not an IP address`);
  }
  return host;
}

/** A path checked and, for Prefix, stripped of trailing slashes (`/` stays `/`). */
function checkPath(raw: string, pathType: 'Exact' | 'Prefix', where: string): string {
  if (!urlPath.test(raw)) {
    throw new IngressSpecError(`${where} ${quote(raw)} is not allowed; it must start with "/" and hold only URL path characters (a regular expression needs use-regex: "true")`);
  }
  if (looksRegex(raw)) {
    // ingress-nginx reads such a path as a regex when another Ingress of the host has use-regex or a rewrite-target,
    // else character for character: served either way here, it would match nothing its author meant.
    throw new IngressSpecError(`${where} ${quote(raw)} is written as a regular expression, but the Ingress sets neither use-regex nor a rewrite-target; set use-regex: "true" on it`);
  }
  if (badSequence.test(raw)) {
    throw new IngressSpecError(`${where} ${quote(raw)} is not allowed; it must not contain "//", "/./", "/../" or "%2F", nor end in "/." or "/.."`);
  }
  if (pathType === 'Exact') return raw;
  let end = raw.length;
  while (end > 1 && raw.charCodeAt(end - 1) === 0x2f) end--;
  return raw.slice(0, end);
}

/** The BackendRef of a Service backend; throws for a resource backend, which netplane cannot serve. */
function backendRef(backend: IngressBackend, namespace: string, where: string): BackendRef {
  const service = backend.service;
  if (service === undefined) {
    const kind = backend.resource?.kind ?? 'resource';
    throw new IngressSpecError(`${where} is a ${kind} resource backend ${quote(backend.resource?.name ?? '')}; netplane serves only Service backends`);
  }
  if (!serviceName.test(service.name)) {
    throw new IngressSpecError(`${where}.service.name ${quote(service.name)} is not allowed; it must be a Service name (RFC 1035 label)`);
  }
  const port = service.port.number ?? service.port.name ?? '';
  if (typeof port === 'string' && !portName.test(port)) {
    throw new IngressSpecError(`${where}.service.port.name ${quote(port)} is not allowed; it must be a port name (lower-case letters, digits and "-", at most 15)`);
  }
  return { namespace, service: service.name, port, key: backendKey(namespace, service.name, port) };
}
