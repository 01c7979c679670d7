// Ingress objects → RouteTable. Each Ingress of our class is compiled on its own (spec.ts); one that cannot be
// honoured is replaced by its last good version when that still compiles, else left out. Then, in ingress-nginx's
// order (order.ts: the oldest first), the rules go into the index (the first Ingress to claim a host+path+type keeps
// it, as the first to name a host's certificate keeps that), canaries attach to the routes they shadow, and TLS hosts, Secrets and backends are collected from what is actually served.
// As in ingress-nginx, the primary Ingress owns a host's server and its locations: a canary Ingress contributes only
// its rules, as another backend of the primary's routes, and its other annotations give way to the primary's (see
// canaryPolicy); its auth, defaultBackend and tls entries are not used, and its Secrets are not read.
// Each route's backend carries how its own Ingress reaches the Service port (backend-protocol, proxy-ssl-*,
// service-upstream: an UpstreamSpec) and the key of the upstream built for exactly that (upstreamKey), so two
// Ingresses that reach one Service port differently never share an upstream, and those that reach it alike do.
import type { X509Certificate } from 'node:crypto';
import type { Ingress, IngressClass } from '../../cluster/model/ingress.ts';
import { defaultClassAnnotation } from '../../cluster/model/ingress.ts';
import { IngressSpecError, quote } from './errors.ts';
import { ConfigMapPendingError } from './configmap-headers.ts';
import type { PolicyDefaults } from './policy.ts';
import { backendKey } from './names.ts';
import { byAge, whyFirst } from './order.ts';
import { defaultServiceRoute, type DefaultService } from './default-service.ts';
import { compileIngress, ingressKey, type CompiledIngress, type CompiledRule } from './spec.ts';
import { CompiledRouteTable, deepFreeze, RouteIndex, type TableParts } from './table.ts';
import type { BackendRef, ClientCertPolicy, IngressPolicy, IngressProblem, ObjectRef, Route, RouteTable, TlsChoice, UpstreamSpec } from './types.ts';

/** What compileRoutes reads. */
export interface CompileInput {
  ingresses: readonly Ingress[];
  classes: readonly IngressClass[];
  /** --ingress-class (default 'netplane') */
  className: string;
  /** --watch-ingress-without-class: Ingresses without a class are served even when the class is not the default. */
  withoutClass?: boolean;
  /** --controller-class: every IngressClass whose spec.controller is this is served too (ingress-nginx's selection). */
  controllerClass?: string;
  /** Last version of each Ingress (namespace/name) that was served; used when the current version cannot be honoured. */
  lastGood: ReadonlyMap<string, Ingress>;
  defaults: PolicyDefaults;
  /**
   * The leaf certificate of a TLS Secret (its tls.crt), for the hosts of an Ingress that no tls entry lists; undefined
   * when the Secret is not there (yet) or holds none. Without it such hosts get no TLS.
   */
  certificate?: (ref: ObjectRef) => X509Certificate | undefined;
  /** --default-backend-service at its Service's first port: what no route takes goes there (routes/default-service.ts). */
  defaultService?: DefaultService;
}

/** The table, and the Ingress versions it serves (the next call's lastGood). */
export interface CompileResult {
  table: RouteTable;
  served: Map<string, Ingress>;
}

/** The legacy class annotation, read when an Ingress has no spec.ingressClassName. */
export const legacyClassAnnotation = 'kubernetes.io/ingress.class';

/** Compiles the Ingresses of `className` into a RouteTable; never throws for bad Ingresses (they become problems). */
export function compileRoutes(input: CompileInput): CompileResult {
  const problems: IngressProblem[] = [];
  const ours = classSelector(input);
  const mine = input.ingresses.filter(ours).sort(byAge);
  const compiled: CompiledIngress[] = [];
  for (const ingress of mine) {
    const c = compileOrKeep(ingress, input, problems);
    if (c !== undefined) compiled.push(c);
  }
  const parts: TableParts = {
    index: new RouteIndex(),
    defaultRoute: undefined,
    tlsExact: new Map(),
    tlsWildcard: new Map(),
    secrets: new Set(),
    clientCas: new Set(),
    backends: new Map(),
    ingresses: new Map(),
    problems,
    versions: new Map(compiled.map((c) => [c.key, c.ingress])),
    contributors: new Set(),
    users: new Map(),
  };
  const served = new Map<string, Ingress>();
  const tlsOwner = new Map<string, string>();
  for (const c of compiled) {
    if (c.canary !== undefined) continue;
    deepFreeze(c.policy);
    for (const rule of c.rules) addRoute(parts, c, rule);
    // The custom error backend is a backend like the others: its endpoints are followed, spoken to in plain HTTP
    // whatever the Ingress's own backends are (the key it has, and that the steps look it up by, says so too).
    if (c.policy.errorBackend !== undefined) addBackend(parts, c.policy.errorBackend, errorBackendPolicy, c.key);
    if (c.policy.clientCert !== undefined) addClientCert(parts, c, c.policy.clientCert);
    // As in ingress-nginx: the defaultBackend of an Ingress without rules is the catch-all server's (the first such
    // Ingress in order): it answers hosts no rule names and what the rules without a host do not match, never a
    // host with rules of its own (table.ts match); that of an Ingress with rules only on its own hosts (below).
    if (c.defaultBackend !== undefined && c.rules.length === 0) {
      if (parts.defaultRoute === undefined) {
        parts.defaultRoute = defaultRoute(c, '', addBackend(parts, c.defaultBackend, c.policy, c.key));
        parts.contributors.add(c.key);
      } else {
        const reason = `its defaultBackend is not the catch-all: ${owner(parts, c, parts.defaultRoute.ingress)} already answers the hosts no rule names`;
        parts.problems.push({ ingress: c.key, reason, keptLastGood: false, partly: true });
      }
    }
    for (const { host, choice } of c.tls) addTls(parts, tlsOwner, c, host, choice);
    for (const { host, choice } of tlsByCertificate(parts, c, input.certificate)) addTls(parts, tlsOwner, c, host, choice);
    served.set(c.key, c.ingress);
    parts.ingresses.set(c.key, c.policy);
    for (const s of c.authSecrets) parts.secrets.add(s);
  }
  // A passthrough host whose client certificates another Ingress checks is terminated instead (the check is made in
  // a handshake netplane makes; edge/passthrough.ts): the passthrough Ingress is not served as written.
  for (const c of compiled) {
    for (const host of c.canary === undefined && served.has(c.key) ? (c.policy.sslPassthrough?.hosts ?? []) : []) {
      const check = parts.index.hostSet(host)?.clientCert;
      if (check === undefined) continue;
      parts.problems.push({ ingress: c.key, reason: `host ${quote(host)} is not passed through: Ingress ${check.ingress} asks for client certificates for it, which netplane can check only on TLS it terminates`, keptLastGood: false });
    }
  }
  // Host default backends after every rule: they take a host's `/` only when no Ingress has a rule for it.
  for (const c of compiled) {
    if (c.canary !== undefined || c.defaultBackend === undefined) continue;
    for (const host of new Set(c.rules.map((r) => r.host))) {
      if (parts.index.get(host, '/', 'Prefix') !== undefined || parts.index.getRegex(host, '/') !== undefined) continue;
      parts.index.add(defaultRoute(c, host, addBackend(parts, c.defaultBackend, c.policy, c.key)));
      parts.contributors.add(c.key);
    }
  }
  // Canaries after every primary, so a canary attaches whatever the order of names.
  for (const c of compiled) {
    if (c.canary !== undefined && attachCanary(parts, c) > 0) {
      served.set(c.key, c.ingress);
      parts.ingresses.set(c.key, c.policy);
    }
  }
  // The www redirects last: they take only names that no rule, default backend or canary of any Ingress has.
  for (const c of compiled) {
    if (c.canary !== undefined) continue;
    for (const pair of c.wwwRedirects ?? []) addWwwRedirect(parts, c, pair.from, pair.to);
  }
  // The controller's default backend last: it answers only what nothing above takes. It has no Ingress (no user, so
  // its Service missing is no Ingress's problem: the state keeper logs it), and shares the upstream of a route that
  // reaches the same port in plain HTTP.
  if (input.defaultService !== undefined) {
    const route = defaultServiceRoute(input.defaultService, input.defaults);
    const known = parts.backends.get(route.backend.key);
    if (known !== undefined) route.backend = known;
    else parts.backends.set(route.backend.key, deepFreeze(route.backend));
    parts.fallbackRoute = route;
  }
  // A problem that took one part of an Ingress (a rule, a TLS host another Ingress holds) leaves it partly served,
  // unless nothing of it is served at all.
  for (const p of parts.problems) if (p.partly === true && !parts.contributors.has(p.ingress)) delete p.partly;
  return { table: new CompiledRouteTable(parts), served };
}

/**
 * Whether this controller serves an Ingress, by spec.ingressClassName, else the legacy annotation: --ingress-class,
 * the classes of --controller-class, and class-less ones when one of those is the default class.
 */
export function classSelector(input: Pick<CompileInput, 'classes' | 'className' | 'withoutClass' | 'controllerClass'>): (ingress: Ingress) => boolean {
  const names = new Set([input.className]);
  if (input.controllerClass !== undefined) for (const c of input.classes) if (c.spec.controller === input.controllerClass) names.add(c.metadata.name);
  const isDefault = input.withoutClass === true || input.classes.some((c) => names.has(c.metadata.name) && c.metadata.annotations[defaultClassAnnotation] === 'true');
  return (ingress) => {
    const name = ingress.spec.ingressClassName ?? ingress.metadata.annotations[legacyClassAnnotation];
    return name === undefined ? isDefault : names.has(name);
  };
}

/** The current version compiled, else the last good one (with a problem), else undefined (with a problem). */
function compileOrKeep(ingress: Ingress, input: CompileInput, problems: IngressProblem[]): CompiledIngress | undefined {
  const key = ingressKey(ingress);
  let reason: string;
  let pending: { pending?: true } = {};
  try {
    return withWarnings(compileIngress(ingress, input.defaults), problems);
  } catch (error) {
    if (!(error instanceof IngressSpecError)) throw error;
    reason = error.message;
    if (error instanceof ConfigMapPendingError) pending = { pending: true };
  }
  const last = input.lastGood.get(key);
  if (last !== undefined && last !== ingress) {
    try {
      const kept = compileIngress(last, input.defaults);
      problems.push({ ingress: key, reason, keptLastGood: true, ...pending });
      return withWarnings(kept, problems);
    } catch (error) {
      if (!(error instanceof IngressSpecError)) throw error;
    }
  }
  problems.push({ ingress: key, reason, keptLastGood: false, ...pending });
  return undefined;
}

/**
 * A compiled Ingress, its warnings (a value replaced by its default) added to `problems` as problems of a part: it is
 * served, with that part not as written, and the reason is logged once.
 */
function withWarnings(c: CompiledIngress, problems: IngressProblem[]): CompiledIngress {
  for (const reason of c.warnings ?? []) problems.push({ ingress: c.key, reason, keptLastGood: false, partly: true });
  return c;
}

/** The route of an Ingress's default backend for `host` ('' for any): path `/`, a regex one when its paths are. */
function defaultRoute(c: CompiledIngress, host: string, backend: BackendRef): Route {
  const route: Route = { ingress: c.key, namespace: c.namespace, host, path: '/', pathType: 'Prefix', backend, policy: c.policy };
  if (c.rootRegex !== undefined) route.regex = c.rootRegex;
  return route;
}

function describeRule(rule: CompiledRule): string {
  return `rule ${rule.host === '' ? 'for any host' : `host ${quote(rule.host)}`} path ${quote(rule.path)} (${rule.regex === undefined ? rule.pathType : 'regex'})`;
}

/**
 * The route already there for a rule: by host and path as written for a regex rule, by host, path and type for
 * another. A canary finds its primary by the path as written either way, as ingress-nginx matches them (a regex
 * rule's plain twin is the same path without its trailing slashes).
 */
function existingRoute(parts: TableParts, rule: CompiledRule, canary = false): Route | undefined {
  if (rule.regex !== undefined) {
    const route = parts.index.getRegex(rule.host, rule.path);
    if (route !== undefined || !canary) return route;
    let end = rule.path.length;
    while (rule.pathType === 'Prefix' && end > 1 && rule.path.charCodeAt(end - 1) === 0x2f) end--;
    return parts.index.get(rule.host, rule.path.slice(0, end), rule.pathType);
  }
  return parts.index.get(rule.host, rule.path, rule.pathType) ?? (canary ? parts.index.getRegex(rule.host, rule.path) : undefined);
}

/** Who holds what `c` asks for: an earlier rule of its own, or Ingress `other` and why that one comes first. */
function owner(parts: TableParts, c: CompiledIngress, other: string): string {
  if (other === c.key) return 'an earlier rule of the same Ingress';
  const first = parts.versions.get(other);
  return first === undefined ? `Ingress ${other}` : `Ingress ${other}, which ${whyFirst(first, c.ingress)},`;
}

/** The conflict field of a problem with `other` (none when it is the Ingress itself: two of its own rules). */
function conflictWith(c: CompiledIngress, other: string): { conflict?: string } {
  return other === c.key || other === '' ? {} : { conflict: other };
}

function addRoute(parts: TableParts, c: CompiledIngress, rule: CompiledRule): void {
  const existing = existingRoute(parts, rule);
  if (existing !== undefined) {
    parts.problems.push({ ingress: c.key, reason: `${describeRule(rule)} is dropped: ${owner(parts, c, existing.ingress)} already routes it`, keptLastGood: false, partly: true, ...conflictWith(c, existing.ingress) });
    return;
  }
  const backend = addBackend(parts, rule.backend, c.policy, c.key);
  const route: Route = { ingress: c.key, namespace: c.namespace, host: rule.host, path: rule.path, pathType: rule.pathType, backend, policy: c.policy };
  if (rule.regex !== undefined) route.regex = rule.regex;
  parts.index.add(route);
  parts.contributors.add(c.key);
}

/**
 * Puts the Ingress's client-certificate check on each of its hosts. The first Ingress in order (order.ts) to set one
 * for a host keeps it, and it guards every rule of that host, whichever Ingress the rule came from (the handshake
 * asks for a certificate per host name, as ingress-nginx's server block does); a different later one is a problem.
 */
function addClientCert(parts: TableParts, c: CompiledIngress, policy: ClientCertPolicy): void {
  for (const host of new Set(c.rules.map((r) => r.host))) {
    const set = parts.index.hostSet(host);
    if (set === undefined) continue;
    if (set.clientCert === undefined) {
      set.clientCert = { policy, ingress: c.key };
      parts.clientCas.add(`${policy.secret.namespace}/${policy.secret.name}`);
    }
    else if (JSON.stringify(set.clientCert.policy) !== JSON.stringify(policy)) {
      const first = set.clientCert.ingress;
      parts.problems.push({
        ingress: c.key,
        reason: `the auth-tls settings for host ${quote(host)} are not used: ${owner(parts, c, first)} set other ones for it, which guard the host`,
        keptLastGood: false,
        partly: true,
        ...conflictWith(c, first),
      });
    }
  }
}

/** The annotations of a policy that say how its backends are reached. */
type UpstreamPolicy = Pick<IngressPolicy, 'backendProtocol' | 'backendTls' | 'serviceUpstream'>;

/** A custom error backend (default-backend annotation) is asked in plain HTTP at its endpoints. */
const errorBackendPolicy: UpstreamPolicy = { backendProtocol: 'HTTP' };

/**
 * How a policy reaches `backend`: its backend-protocol; its proxy-ssl-* only over TLS, with the name to verify filled
 * in (so that writing the default name or leaving it out is one upstream); its service-upstream.
 */
export function upstreamSpec(backend: Pick<BackendRef, 'namespace' | 'service'>, policy: UpstreamPolicy): UpstreamSpec {
  const spec: UpstreamSpec = { protocol: policy.backendProtocol, viaService: policy.serviceUpstream === true };
  const v = policy.backendTls;
  if (v !== undefined && (spec.protocol === 'HTTPS' || spec.protocol === 'GRPCS')) {
    spec.tls = { secret: { namespace: v.secret.namespace, name: v.secret.name }, name: v.name ?? `${backend.service}.${backend.namespace}.svc`, sni: v.sni };
  }
  return spec;
}

/**
 * The key of the upstream that reaches a Service port as `spec` says: `namespace/service:port` for plain HTTP to the
 * endpoints, else that followed by the protocol, ` verify=NS/SECRET name=NAME` (and ` sni`), ` service-upstream`.
 * Every part is a DNS name, so different settings never write the same key; it names the upstream in logs.
 */
export function upstreamKey(backend: Pick<BackendRef, 'namespace' | 'service' | 'port'>, spec: UpstreamSpec): string {
  let key = backendKey(backend.namespace, backend.service, backend.port);
  if (spec.protocol !== 'HTTP') key += ` ${spec.protocol}`;
  if (spec.tls !== undefined) key += ` verify=${spec.tls.secret.namespace}/${spec.tls.secret.name} name=${spec.tls.name}${spec.tls.sni ? ' sni' : ''}`;
  if (spec.viaService) key += ' service-upstream';
  return key;
}

/**
 * The backend as `policy` reaches it, recorded in the table: a route's own copy with its UpstreamSpec and that
 * upstream's key. Routes (of any Ingresses) that reach the port alike get the same object, hence one upstream.
 */
function addBackend(parts: TableParts, backend: BackendRef, policy: UpstreamPolicy, ingress: string): BackendRef {
  const upstream = upstreamSpec(backend, policy);
  const key = upstreamKey(backend, upstream);
  const users = parts.users.get(key);
  if (users === undefined) parts.users.set(key, new Set([ingress]));
  else users.add(ingress);
  const known = parts.backends.get(key);
  if (known !== undefined) return known;
  const placed: BackendRef = { namespace: backend.namespace, service: backend.service, port: backend.port, key, upstream };
  parts.backends.set(key, deepFreeze(placed));
  return placed;
}

/**
 * As ingress-nginx's extractTLSSecretName: each host of the Ingress's rules that none of its tls entries lists takes
 * the first of its tls Secrets whose certificate names the host in a SAN (checkHost, wildcards too, never the CN) — the way a
 * tls entry without hosts is served. Each Secret looked at is read (put in `secrets`), so a change to it compiles again.
 */
function tlsByCertificate(parts: TableParts, c: CompiledIngress, certificate: CompileInput['certificate']): { host: string; choice: TlsChoice }[] {
  if (c.tlsSecrets.length === 0 || certificate === undefined) return [];
  for (const s of c.tlsSecrets) parts.secrets.add(`${s.namespace}/${s.name}`);
  const listed = new Set(c.tls.map((t) => t.host));
  const out: { host: string; choice: TlsChoice }[] = [];
  for (const host of new Set(c.rules.map((r) => r.host))) {
    if (host === '' || host.startsWith('*.') || listed.has(host)) continue;
    // SANs only: ingress-nginx's second pass asks Go's VerifyHostname, which ignores the CN (Go 1.15 and later).
    const secret = c.tlsSecrets.find((s) => certificate(s)?.checkHost(host, { subject: 'never' }) !== undefined);
    if (secret !== undefined) out.push({ host, choice: { secret } });
  }
  return out;
}

function describeTls(choice: TlsChoice): string {
  return choice.secret === undefined ? 'the default certificate' : `Secret ${choice.secret.namespace}/${choice.secret.name}`;
}

function addTls(parts: TableParts, owners: Map<string, string>, c: CompiledIngress, host: string, choice: TlsChoice): void {
  const [map, key] = host.startsWith('*.') ? [parts.tlsWildcard, host.slice(2)] : [parts.tlsExact, host];
  const existing = map.get(key);
  if (existing === undefined) {
    map.set(key, deepFreeze({ ...choice, ingress: c.key }));
    owners.set(host, c.key);
    parts.contributors.add(c.key);
    if (choice.secret !== undefined) parts.secrets.add(`${choice.secret.namespace}/${choice.secret.name}`);
    return;
  }
  // Ingresses of one host commonly share its certificate; only a different choice is a conflict.
  if (describeTls(existing) !== describeTls(choice)) {
    parts.problems.push({
      ingress: c.key,
      reason: `TLS host ${quote(host)} with ${describeTls(choice)} is dropped: ${owner(parts, c, owners.get(host) ?? '')} already chose ${describeTls(existing)} for it`,
      keptLastGood: false,
      partly: true,
      ...conflictWith(c, owners.get(host) ?? ''),
    });
  }
}

/**
 * from-to-www-redirect: a route for `from` that answers every request with a 308 to `to` (the steps' routeRedirect),
 * unless an Ingress routes `from` itself or by a wildcard — as ingress-nginx skips the redirect when a server of that
 * name exists; here a wildcard rule also stands, so the redirect never takes a name another Ingress serves. Rules
 * without a host do not count: ingress-nginx's redirect server takes the name before its catch-all. The first Ingress
 * in order (order.ts) to ask for a name gets it. `from` gets the certificate of `to` when no TLS entry covers it, so an
 * HTTPS request for it is answered under a certificate that names both when it does (ingress-nginx asks for one).
 */
function addWwwRedirect(parts: TableParts, c: CompiledIngress, from: string, to: string): void {
  const parent = from.slice(from.indexOf('.') + 1);
  if (parts.index.hostSet(from) !== undefined || parts.index.hostSet(`*.${parent}`) !== undefined) return;
  const rule = c.rules.find((r) => r.host === to);
  if (rule === undefined) return;
  const p = c.policy;
  // Only what a redirect needs: no HTTPS redirect first (ingress-nginx's redirect server has none), no limits or auth.
  const policy: IngressPolicy = {
    sslRedirect: false, forceSslRedirect: false, backendProtocol: p.backendProtocol, maxBodyBytes: p.maxBodyBytes,
    connectTimeoutMs: p.connectTimeoutMs, readTimeoutMs: p.readTimeoutMs, sendTimeoutMs: p.sendTimeoutMs, loadBalance: p.loadBalance, redirectToHost: to,
  };
  // Never forwarded (every request is redirected), so no upstream is made for it; the backend says how the rule reaches it.
  const upstream = upstreamSpec(rule.backend, p);
  const backend: BackendRef = { namespace: rule.backend.namespace, service: rule.backend.service, port: rule.backend.port, key: upstreamKey(rule.backend, upstream), upstream };
  parts.index.add({ ingress: c.key, namespace: c.namespace, host: from, path: '/', pathType: 'Prefix', backend, policy: deepFreeze(policy) });
  parts.contributors.add(c.key);
  const tls = parts.tlsExact.get(to) ?? parts.tlsWildcard.get(to.slice(to.indexOf('.') + 1));
  if (tls !== undefined && !parts.tlsExact.has(from) && !parts.tlsWildcard.has(parent)) parts.tlsExact.set(from, tls);
}

/** Attaches each rule of a canary Ingress to its primary route; returns how many attached. */
function attachCanary(parts: TableParts, c: CompiledIngress): number {
  const settings = c.canary!;
  if (c.rules.length === 0) {
    parts.problems.push({ ingress: c.key, reason: 'canary Ingress has no host/path rule to attach to a primary route', keptLastGood: false });
    return 0;
  }
  deepFreeze(c.policy);
  let attached = 0;
  for (const rule of c.rules) {
    const primary = existingRoute(parts, rule, true);
    if (primary === undefined) {
      parts.problems.push({ ingress: c.key, reason: `canary ${describeRule(rule)} has no primary: no served Ingress without canary routes this host, path and path type`, keptLastGood: false, partly: true, waitsForPrimary: true });
    } else if (primary.canary !== undefined) {
      parts.problems.push({ ingress: c.key, reason: `canary ${describeRule(rule)} is dropped: Ingress ${primary.canary.ingress} is already its canary (one canary per route)`, keptLastGood: false, partly: true, ...conflictWith(c, primary.canary.ingress) });
    } else {
      const policy = canaryPolicy(primary.policy, c.policy);
      // Reached as the primary's location says (protocol, proxy-ssl-*), at its cluster IP as the canary's Ingress says.
      const backend = addBackend(parts, rule.backend, policy, c.key);
      primary.canary = { ingress: c.key, backend, weight: settings.weight, weightTotal: settings.weightTotal, policy };
      if (settings.header !== undefined) primary.canary.header = settings.header;
      if (settings.headerValue !== undefined) primary.canary.headerValue = settings.headerValue;
      if (settings.headerPattern !== undefined) primary.canary.headerPattern = settings.headerPattern;
      if (settings.cookie !== undefined) primary.canary.cookie = settings.cookie;
      attached++;
      parts.contributors.add(c.key);
    }
  }
  return attached;
}

/**
 * The policy of requests a route sends to its canary: the primary's, as ingress-nginx documents it ("all the other
 * non-canary annotations will be ignored (inherited from the corresponding main ingress) except load-balance,
 * upstream-hash-by, and annotations related to session affinity"). The canary is one more upstream of the primary's
 * location, so the location's settings apply to it: upstream-vhost, x-forwarded-prefix, time-outs, body size,
 * backend-protocol and proxy-ssl-*, custom errors, retries. What belongs to the upstream itself is the canary's:
 * load-balance and upstream-hash-by, and service-upstream (ingress-nginx's createUpstreams reads it from the Ingress
 * that names the Service, canaries included). Session affinity is the primary's: ingress-nginx's default
 * affinity-canary-behavior (sticky) copies the primary upstream's affinity onto the canary's (mergeAlternativeBackend).
 */
export function canaryPolicy(primary: IngressPolicy, canary: IngressPolicy): IngressPolicy {
  const policy: IngressPolicy = { ...primary, loadBalance: canary.loadBalance };
  if (canary.serviceUpstream !== undefined) policy.serviceUpstream = canary.serviceUpstream;
  else delete policy.serviceUpstream;
  if (canary.upstreamHashBy !== undefined) policy.upstreamHashBy = canary.upstreamHashBy;
  else delete policy.upstreamHashBy;
  if (canary.upstreamHashSubset !== undefined) policy.upstreamHashSubset = canary.upstreamHashSubset;
  else delete policy.upstreamHashSubset;
  return policy;
}
