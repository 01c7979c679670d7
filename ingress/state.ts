// Keeps the gateway's state current from the cluster view: compiles the route table when Ingresses or
// IngressClasses change, feeds each backend's ready endpoints to the upstream pools, and swaps certificates and
// authenticators when a Secret that a route references changes. The ConfigMaps Ingresses name for headers
// (custom-headers, auth-proxy-set-headers) are read by reference: exactly those the last compile looked up, and a
// change to one (or its first read, found or not) compiles again. A change never interrupts a request: the table is
// replaced whole, pools that stay are kept.
// An upstream is built per BackendRef.key: one Service port reached one way (protocol, proxy-ssl-*,
// service-upstream: its UpstreamSpec, from the Ingress of the route). The ways a port is reached share its
// endpoints (read once per change of the Service), but each has its own pools and outlier ejection state: a TLS
// or protocol failure of one way says nothing about another. A change of one Ingress's settings moves its routes
// to another upstream; the others' are kept as they are.
import type { ServiceMap } from '../cluster/servicemap/index.ts';
import type { Store, StoreChange } from '../cluster/store.ts';
import type { Ingress } from '../cluster/model/ingress.ts';
import type { Logger } from '../runtime/logger.ts';
import { compileRoutes, type CompileInput } from './routes/compile.ts';
import { defaultServicePort } from './routes/default-service.ts';
import type { PolicyDefaults } from './routes/policy.ts';
import { readsNginxName } from './routes/annotations.ts';
import { IgnoredAnnotationLog } from './routes/unhonoured.ts';
import { basicAuthProblems } from './auth/secret-problems.ts';
import type { BackendRef, BackendTlsPolicy, IngressProblem, ObjectRef, RouteTable, UpstreamSpec } from './routes/types.ts';
import { createHash, X509Certificate } from 'node:crypto';
import { certificateBlocks } from './tls/keypair.ts';
import { secretValue, type Secret } from '../cluster/model/secret.ts';
import { parseCaBundle } from './tls/client-auth.ts';
import { servedHash, type GatewayMetrics } from './server/metrics.ts';
import type { GatewayState } from './server/steps.ts';
import type { Certificates } from './tls/certificates.ts';
import type { Endpoint, UpstreamTls } from './upstream/upstreams.ts';
import type { ConfigMapLookup } from './routes/configmap-headers.ts';
import { defaultAnnotation, readControllerConfig, type ControllerConfig } from './routes/controller-config.ts';
import { TrustedProxies } from './limits/client-ip.ts';

/** What the state keeper needs. */
export interface IngressStateOptions {
  store: Store;
  serviceMap: ServiceMap;
  log: Logger;
  metrics: GatewayMetrics;
  className: string;
  /** --watch-ingress-without-class true. */
  withoutClass?: boolean;
  /** --controller-class. */
  controllerClass?: string;
  defaults: PolicyDefaults;
  certificates?: Certificates;
  /** ingress-nginx's controller ConfigMap (--configmap): its settings are the defaults, but for flags given. */
  controllerConfigMap?: ObjectRef;
  /** The flags given on the command line that the ConfigMap has keys of (same names): the ConfigMap leaves those. */
  explicit?: ReadonlySet<string>;
  /**
   * ConfigMaps (`namespace/name`) other parts of the gateway read (the TCP and UDP services'): wanted always, with
   * those the routes name; a change to one compiles nothing.
   */
  alsoWanted?: readonly string[];
  /** Secrets (`namespace/name`) other parts of the gateway read (the --default-certificate Secret): wanted always. */
  alsoWantedSecrets?: readonly string[];
  /**
   * --default-backend-service: the Service that answers what no route takes, at its first port (followed: a change of
   * its ports compiles again, of its endpoints is applied as any backend's).
   */
  defaultService?: ObjectRef;
  /** Told the controller ConfigMap's settings each time it is read (its stream keys are the TCP and UDP services'). */
  onControllerConfig?: (config: ControllerConfig) => void;
}

/** The table before the first compile: no routes, every request 404. */
export const emptyTable: RouteTable = {
  match: () => undefined,
  tls: () => undefined,
  clientCert: () => undefined,
  secrets: new Set(),
  clientCas: new Set(),
  backends: new Map(),
  ingresses: new Map(),
  problems: [],
  size: 0,
};

/** Compiles and applies; `state.table` is always the latest good table. */
export class IngressState {
  readonly #o: IngressStateOptions;
  readonly #state: GatewayState;
  #lastGood = new Map<string, Ingress>();
  /** Problems already logged, by Ingress, so a recompile does not repeat them. */
  #logged = new Map<string, string>();
  /** The ingress-nginx annotations each served Ingress sets that netplane ignores, logged once. */
  readonly #ignored: IgnoredAnnotationLog;
  /** Upstreams (BackendRef) by the Service (namespace/name) whose endpoints they take. */
  #byService = new Map<string, BackendRef[]>();
  #pending = false;
  #compiled = false;
  /** The ConfigMaps (`namespace/name`) the last compile looked up: the ones the store reads. */
  #configMaps: ReadonlySet<string> = new Set();
  /** The TLS Secrets whose certificate the last compile read to find a host's (tlsByCertificate): a change compiles again. */
  #certSecrets: ReadonlySet<string> = new Set();
  #unsubscribe: Array<() => void> = [];
  /** The controller ConfigMap's settings as last read (undefined before, and without --configmap). */
  #controller: ControllerConfig | undefined;
  /** The default backend Service's port as the last compile took it ('' when it had none), to compile again on a change. */
  #defaultPort = '';
  /** Why the default backend answers nothing, as last logged ('' when it answers; undefined before the first look). */
  #defaultProblem: string | undefined;

  constructor(state: GatewayState, options: IngressStateOptions) {
    this.#state = state;
    this.#o = options;
    this.#ignored = new IgnoredAnnotationLog(readsNginxName, { sslPassthrough: options.defaults.sslPassthrough });
  }

  /** Whether a table has been compiled from a complete view of the cluster. */
  get ready(): boolean {
    return this.#compiled;
  }

  /** Compiles now and on every relevant change from here on. */
  start(): void {
    const { store, serviceMap } = this.#o;
    this.#unsubscribe.push(store.subscribe((changes) => this.#onStore(changes)));
    const tracker = serviceMap.tracker();
    this.#unsubscribe.push(
      tracker.onChange(() => {
        const changed = tracker.take();
        const d = this.#o.defaultService;
        if (d !== undefined && changed.services.has(`${d.namespace}/${d.name}`)) {
          // A port that came, went or moved compiles again; endpoints alone are applied below, as any backend's.
          if (this.#compiled && portText(this.#defaultServicePort()) !== this.#defaultPort) this.#schedule();
        }
        let used = false;
        for (const svc of changed.services) {
          for (const b of this.#byService.get(svc) ?? []) {
            this.#applyEndpoints(b);
            used = true;
          }
        }
        // A backend's Service or port may have come or gone.
        if (used && this.#compiled) this.#o.metrics.configLastSuccessful.set(this.#reportProblems(this.#state.table) === 0 ? 1 : 0);
        if (this.#compiled) this.#reportDefaultService();
      }),
    );
    this.#unsubscribe.push(store.onStatus((st) => st.synced && !this.#compiled && this.#schedule()));
    // A ConfigMap found absent makes no change: its first read is what tells an Ingress waiting for it.
    this.#unsubscribe.push(store.onLoaded((kind, key) => kind === 'ConfigMap' && this.#configMaps.has(key) && this.#schedule()));
    if (store.status.synced) this.compile();
  }

  /** Stops following changes. */
  stop(): void {
    for (const u of this.#unsubscribe) u();
    this.#unsubscribe = [];
  }

  /** Compiles the route table from the store and applies it. */
  compile(): void {
    this.#pending = false;
    const { store, log, metrics } = this.#o;
    const started = performance.now();
    const configMaps = new Set<string>();
    const certSecrets = new Set<string>();
    const lookup = this.#configMapLookup(configMaps);
    const defaultService = this.#defaultServicePort();
    this.#defaultPort = portText(defaultService);
    const { table, served } = compileRoutes(this.#compileInput(lookup, this.#defaults(lookup), certSecrets, defaultService));
    this.#configMaps = configMaps;
    this.#certSecrets = certSecrets;
    this.#lastGood = served;
    metrics.configHash.set(servedHash(served.values()));
    this.#ignored.report(served, log);
    this.#applyBackends(table);
    this.#state.table = table;
    // Secrets read by reference: the source now reads exactly the ones this table names.
    if (store.byReference.has('Secret')) store.want('Secret', new Set([...table.secrets, ...(this.#o.alsoWantedSecrets ?? [])]));
    // The ConfigMaps of this compile, those of the last good versions kept included; one newly wanted is read and
    // its arrival (or absence) compiles again.
    if (store.byReference.has('ConfigMap')) store.want('ConfigMap', new Set([...configMaps, ...(this.#o.alsoWanted ?? [])]));
    this.#state.auth.retain(new Set(table.ingresses.keys()));
    this.#state.limiters.retain(new Set(table.ingresses.keys()));
    this.#applySecrets(table, undefined);
    // After the Secrets are wanted: one that arrives meanwhile is read by the basic-auth check.
    const problems = this.#reportProblems(table);
    this.#compiled = this.#compiled || store.status.synced;
    if (this.#compiled) this.#reportDefaultService();
    const ok = problems === 0;
    metrics.configReloads.inc({ result: ok ? 'ok' : 'problems' });
    (ok ? metrics.reloadSuccess : metrics.reloadErrors).inc();
    metrics.configLastSuccessful.set(ok ? 1 : 0);
    if (ok) metrics.configLastTimestamp.set(Date.now() / 1000);
    log.info({ ingresses: table.ingresses.size, rules: table.size, backends: table.backends.size, problems, ms: Math.round(performance.now() - started) }, 'routes updated');
  }

  /**
   * What compile() reads now, without reading the controller ConfigMap again, logging or recording anything: the
   * ground the admission webhook checks an Ingress write on (admission/check.ts). Undefined before the first compile
   * from a full view of the cluster.
   */
  reviewInput(): CompileInput | undefined {
    if (!this.#compiled) return undefined;
    const lookup = this.#configMapLookup(new Set());
    return this.#compileInput(lookup, this.#annotationDefaults(), new Set(), this.#defaultServicePort());
  }

  /** The problems of a table that the store's Services and Secrets cause (missing backends, basic-auth Secrets). */
  objectProblems(table: RouteTable): IngressProblem[] {
    return [...this.#authProblems(table), ...missingBackends(table, this.#o.serviceMap)];
  }

  /** The problems of the basic-auth Secrets a table's Ingresses name. */
  #authProblems(table: RouteTable): IngressProblem[] {
    return basicAuthProblems(table.ingresses, (ref) => this.#o.store.get('Secret', `${ref.namespace}/${ref.name}`));
  }

  #compileInput(lookup: ConfigMapLookup, defaults: PolicyDefaults, certSecrets: Set<string>, defaultService: ReturnType<typeof defaultServicePort> | undefined): CompileInput {
    const { store } = this.#o;
    return {
      ingresses: store.list('Ingress'),
      classes: store.list('IngressClass'),
      className: this.#o.className,
      withoutClass: this.#o.withoutClass === true,
      ...(this.#o.controllerClass !== undefined ? { controllerClass: this.#o.controllerClass } : {}),
      lastGood: this.#lastGood,
      defaults: { ...defaults, configMaps: lookup },
      certificate: (ref) => {
        const key = `${ref.namespace}/${ref.name}`;
        certSecrets.add(key);
        return leafCertificate(store.get('Secret', key));
      },
      ...(defaultService !== undefined && !('problem' in defaultService) ? { defaultService } : {}),
    };
  }

  /**
   * The policy defaults: the flags', with the controller ConfigMap's settings in place of those no flag set; HSTS too.
   * A ConfigMap not read yet keeps what was last read; a bad value keeps its last good one (readControllerConfig).
   */
  #defaults(lookup: ConfigMapLookup): PolicyDefaults {
    const ref = this.#o.controllerConfigMap;
    if (ref === undefined) return this.#o.defaults;
    const found = lookup(ref);
    const name = `${ref.namespace}/${ref.name}`;
    if (found !== 'loading') {
      const read = readControllerConfig(found?.data, this.#controller);
      this.#controller = read.config;
      const { log } = this.#o;
      if (found === undefined) this.#logOnce(`configmap ${name}`, 'absent', () => log.warn({ configMap: name }, `ConfigMap ${name} (--configmap) is not in the cluster: ingress-nginx's defaults apply`));
      else this.#logged.delete(`configmap ${name}`);
      for (const p of read.problems) {
        this.#logOnce(`configmap ${name} ${p.key}`, p.reason, () => log.warn({ configMap: name, key: p.key, reason: p.reason }, `ConfigMap ${name}: ${p.reason}; ${p.key} keeps its last good value`));
      }
      const unread = read.unread.join(', ');
      if (unread !== '') this.#logOnce(`configmap ${name} unread`, unread, () => log.warn({ configMap: name, keys: read.unread }, `ConfigMap ${name}: keys netplane does not read: ${unread}`));
      this.#o.onControllerConfig?.(read.config);
    }
    const c = this.#controller;
    if (c === undefined) return this.#o.defaults;
    const x = this.#o.explicit ?? new Set();
    if (!x.has('hsts')) this.#state.hsts = c.hsts ?? undefined;
    if (!x.has('trusted-proxies')) this.#state.trusted = TrustedProxies.parse(c.trustedProxies);
    return this.#annotationDefaults();
  }

  /** The flags' defaults with the controller ConfigMap's annotation defaults as last read, but those a flag set. */
  #annotationDefaults(): PolicyDefaults {
    const c = this.#controller;
    if (c === undefined) return this.#o.defaults;
    // A default a flag on the command line set stays the flag's.
    const skip = new Set([...(this.#o.explicit ?? [])].map(defaultAnnotation));
    const annotations = Object.fromEntries(Object.entries(c.annotations ?? {}).filter(([name]) => !skip.has(name)));
    return { ...this.#o.defaults, annotations };
  }

  /** The ConfigMaps of the store, each key looked up recorded in `asked`; 'loading' for a wanted one not read yet. */
  #configMapLookup(asked: Set<string>): ConfigMapLookup {
    const store = this.#o.store;
    return (ref) => {
      const key = `${ref.namespace}/${ref.name}`;
      asked.add(key);
      const found = store.get('ConfigMap', key);
      if (found !== undefined || !store.byReference.has('ConfigMap')) return found;
      // Not wanted yet (this compile names it first), or wanted and not read yet: it is on its way.
      return !store.wanted('ConfigMap')!.has(key) || store.loading('ConfigMap').includes(key) ? 'loading' : undefined;
    };
  }

  #onStore(changes: readonly StoreChange[]): void {
    const secrets: string[] = [];
    for (const c of changes) {
      if (c.kind === 'Secret' && this.#certSecrets.has(c.key)) this.#schedule();
      if (c.kind === 'Ingress' || c.kind === 'IngressClass' || (c.kind === 'ConfigMap' && this.#configMaps.has(c.key))) this.#schedule();
      else if (c.kind === 'Secret' && this.#state.table.secrets.has(c.key)) secrets.push(c.key);
    }
    if (secrets.length > 0) {
      this.#applySecrets(this.#state.table, secrets);
      // A basic-auth Secret that changed may have become usable, or unusable.
      this.#o.metrics.configLastSuccessful.set(this.#reportProblems(this.#state.table) === 0 ? 1 : 0);
    }
  }

  /** Batches the changes of one turn of the event loop into one compile. */
  #schedule(): void {
    if (this.#pending) return;
    this.#pending = true;
    setImmediate(() => this.compile());
  }

  #applyBackends(table: RouteTable): void {
    this.#byService.clear();
    for (const b of table.backends.values()) {
      const svc = `${b.namespace}/${b.service}`;
      const list = this.#byService.get(svc);
      if (list) list.push(b);
      else this.#byService.set(svc, [b]);
      this.#applyEndpoints(b);
    }
    this.#state.upstreams.retain(new Set(table.backends.keys()));
  }

  /** Builds (or updates) the upstream `b.key` from `b.upstream` and the endpoints of its Service port. */
  #applyEndpoints(b: BackendRef): void {
    const spec: UpstreamSpec = b.upstream ?? plainHttp;
    const { protocol } = spec;
    if (spec.tls === undefined) return this.#state.upstreams.setEndpoints(b.key, endpointsOf(this.#o.serviceMap, b, spec.viaService), protocol);
    const tls = upstreamTls(b, spec.tls, (ref) => this.#o.store.get('Secret', `${ref.namespace}/${ref.name}`));
    if ('problem' in tls) {
      // Fail closed: without the CA the backend is not reached at all (503), never unverified.
      this.#logOnce(`backend-tls ${b.key}`, tls.problem, () => this.#o.log.warn({ backend: b.key, reason: tls.problem }, `backend ${b.key} is not reached: ${tls.problem}`));
      return this.#state.upstreams.setEndpoints(b.key, [], protocol);
    }
    this.#logged.delete(`backend-tls ${b.key}`);
    this.#state.upstreams.setEndpoints(b.key, endpointsOf(this.#o.serviceMap, b, spec.viaService), protocol, tls);
  }

  #applySecrets(table: RouteTable, changed: readonly string[] | undefined): void {
    const lookup = (ref: ObjectRef) => this.#o.store.get('Secret', `${ref.namespace}/${ref.name}`);
    this.#o.certificates?.update(table, lookup);
    if (changed) this.#state.auth.secretsChanged(changed);
    // Backends verified against a CA of a changed Secret take the new bundle (new pools) from the next request on.
    if (changed) {
      for (const b of table.backends.values()) {
        const v = b.upstream?.tls;
        if (v !== undefined && changed.includes(`${v.secret.namespace}/${v.secret.name}`)) this.#applyEndpoints(b);
      }
    }
    for (const p of this.#o.certificates?.problems() ?? []) this.#logOnce(`secret ${p.secret}`, p.reason, () => this.#o.log.warn({ secret: p.secret, reason: p.reason }, `TLS Secret ${p.secret} is not used: ${p.reason}`));
  }

  /** Sets the problems gauge and logs new problems: the table's, and those of basic-auth Secrets; returns how many. */
  #reportProblems(table: RouteTable): number {
    const { metrics, log } = this.#o;
    metrics.ingressProblems.reset();
    const now = new Set<string>();
    const auth = this.#authProblems(table);
    const missing = missingBackends(table, this.#o.serviceMap);
    for (const p of [...table.problems, ...auth, ...missing]) {
      const [namespace, name] = p.ingress.split('/') as [string, string];
      metrics.ingressProblems.set({ namespace, ingress: name, served: p.partly === true ? 'partly' : p.keptLastGood ? 'last-good' : 'no' }, 1);
      // Waiting for a ConfigMap the source is reading: counted (the Ingress is not served as written) but not logged,
      // as it is over in a moment; readiness waits for it, and a source that cannot read it logs why.
      if (p.pending === true) continue;
      // An Ingress may have a problem of each kind: each is logged once under its own key.
      // An Ingress may have several problems of the table too (a TLS host and a client-certificate check another holds):
      // keyed by Ingress alone they would replace each other's reason and be logged again at every rebuild.
      const key = auth.includes(p) ? `auth ${p.ingress}` : missing.includes(p) ? `backend ${p.ingress} ${p.reason}` : `${p.ingress} ${p.reason}`;
      now.add(key);
      this.#logOnce(key, p.reason, () =>
        log.warn({ ingress: p.ingress, reason: p.reason, served: p.partly === true ? 'partly' : p.keptLastGood ? 'last good version' : 'no' }, `Ingress ${p.ingress}: ${p.reason}`),
      );
    }
    for (const key of this.#logged.keys()) if (!key.startsWith('secret ') && !now.has(key)) this.#logged.delete(key);
    return table.problems.length + auth.length + missing.length;
  }

  /** The --default-backend-service Service's first port, or why it has none; undefined without the flag. */
  #defaultServicePort(): ReturnType<typeof defaultServicePort> | undefined {
    const d = this.#o.defaultService;
    return d === undefined ? undefined : defaultServicePort(d, this.#o.serviceMap.services.get(`${d.namespace}/${d.name}`));
  }

  /**
   * Logs, once per change, why the default backend answers nothing (its Service missing, without a TCP first port, or
   * without a ready endpoint: requests no route takes then get 404, custom errors the gateway's own page), and when it
   * answers again.
   */
  #reportDefaultService(): void {
    const d = this.#defaultServicePort();
    if (d === undefined) return;
    const fallback = this.#state.table.defaultBackend;
    let problem = '';
    if ('problem' in d) problem = d.problem;
    else if (fallback === undefined || this.#state.upstreams.endpoints(fallback.key).length === 0) {
      problem = `Service ${d.namespace}/${d.service} (--default-backend-service) has no ready endpoint at its first port, ${d.port}`;
    }
    if (problem === this.#defaultProblem) return;
    this.#defaultProblem = problem;
    const { log } = this.#o;
    const service = `${this.#o.defaultService!.namespace}/${this.#o.defaultService!.name}`;
    if (problem !== '') log.warn({ defaultBackend: service, reason: problem }, `${problem}: requests no Ingress takes get 404, and custom-http-errors without a default-backend annotation the gateway's own page`);
    else log.info({ defaultBackend: service, backend: fallback!.key }, `default backend ${fallback!.key} answers the requests no Ingress takes`);
  }

  #logOnce(key: string, reason: string, write: () => void): void {
    if (this.#logged.get(key) === reason) return;
    this.#logged.set(key, reason);
    write();
  }
}

/** The default backend's port as a comparable text: '' when there is none (or no flag). */
function portText(d: ReturnType<typeof defaultServicePort> | undefined): string {
  return d === undefined || 'problem' in d ? '' : String(d.port);
}

/**
 * The backends whose Service, or whose port of the Service (by number or name, TCP), is not in the cluster: their
 * requests answer 503. One problem per Ingress that uses such a backend, partly served (its other backends are).
 */
export function missingBackends(table: RouteTable, map: ServiceMap): IngressProblem[] {
  const out: IngressProblem[] = [];
  for (const [key, users] of table.backendUsers ?? []) {
    const b = table.backends.get(key);
    if (b === undefined) continue;
    const svc = map.services.get(`${b.namespace}/${b.service}`);
    let why: string | undefined;
    if (svc === undefined) why = `backend Service ${b.namespace}/${b.service} does not exist`;
    else if (!svc.ports.some((p) => p.protocol === 'TCP' && (typeof b.port === 'number' ? p.port === b.port : p.portName === b.port))) {
      why = `backend Service ${b.namespace}/${b.service} has no TCP port ${typeof b.port === 'number' ? b.port : `named ${JSON.stringify(b.port)}`}`;
    }
    if (why === undefined) continue;
    for (const ingress of users) out.push({ ingress, reason: `${why}; requests routed to it find no endpoint (503, or the Ingress's default-backend)`, keptLastGood: false, partly: true });
  }
  return out;
}

/**
 * The ready endpoints of a backend's Service port (by number or by name, TCP unless `protocol` says UDP). When none
 * is ready, the serving ones that are terminating, as kube-proxy falls back to them; an unknown Service or port has
 * none (503).
 */
export function endpointsOf(map: ServiceMap, b: Pick<BackendRef, 'namespace' | 'service' | 'port'>, viaService = false, protocol: 'TCP' | 'UDP' = 'TCP'): Endpoint[] {
  const svc = map.services.get(`${b.namespace}/${b.service}`);
  if (!svc) return [];
  const port = svc.ports.find((p) => p.protocol === protocol && (typeof b.port === 'number' ? p.port === b.port : p.portName === b.port));
  if (!port) return [];
  // service-upstream: the Service's virtual address, as a mesh or kube-proxy balances it; a headless Service has
  // none, so its endpoints are used.
  if (viaService && svc.clusterIPs.length > 0) return [{ ip: svc.clusterIPs[0]!, port: port.port }];
  let usable = port.endpoints.filter((e) => e.ready);
  if (usable.length === 0) usable = port.endpoints.filter((e) => e.serving && e.terminating);
  return usable.map((e) => ({ ip: e.ip, port: e.port }));
}

/** How a BackendRef without `upstream` (an Ingress's errorBackend) is reached. */
const plainHttp: UpstreamSpec = Object.freeze({ protocol: 'HTTP', viaService: false });

const leaves = new WeakMap<Secret, X509Certificate | null>();

/** The first certificate of a Secret's tls.crt, read once per Secret version; undefined when there is none. */
function leafCertificate(secret: Secret | undefined): X509Certificate | undefined {
  if (secret === undefined) return undefined;
  let leaf = leaves.get(secret);
  if (leaf === undefined) {
    const block = certificateBlocks(secretValue(secret, 'tls.crt')?.toString('utf8') ?? '')[0];
    try {
      leaf = block === undefined ? null : new X509Certificate(block);
    } catch {
      // Not a certificate OpenSSL reads: names no host (the Secret's problem is reported where it is served).
      leaf = null;
    }
    leaves.set(secret, leaf);
  }
  return leaf ?? undefined;
}

const caProblems = new WeakMap<Secret, string>();

/** The verification settings of a backend from its CA Secret; a problem when the Secret or its ca.crt is missing. */
export function upstreamTls(b: BackendRef, v: BackendTlsPolicy, secrets: (ref: ObjectRef) => Secret | undefined): UpstreamTls | { problem: string } {
  const ref = `${v.secret.namespace}/${v.secret.name}`;
  const secret = secrets(v.secret);
  if (secret === undefined) return { problem: `proxy-ssl-secret ${ref} is not there` };
  const ca = secretValue(secret, 'ca.crt')?.toString('utf8');
  if (!ca) return { problem: `proxy-ssl-secret ${ref} has no ca.crt` };
  // Checked once per Secret version: a bundle OpenSSL cannot read would fail every connection instead.
  let bad = caProblems.get(secret);
  if (bad === undefined) {
    const parsed = parseCaBundle(ca);
    caProblems.set(secret, (bad = Array.isArray(parsed) ? '' : parsed.reason));
  }
  if (bad !== '') return { problem: `proxy-ssl-secret ${ref}: ${bad}` };
  const cert = secretValue(secret, 'tls.crt')?.toString('utf8');
  const key = secretValue(secret, 'tls.key')?.toString('utf8');
  const name = v.name ?? `${b.service}.${b.namespace}.svc`;
  const id = createHash('sha256').update(ca).update('\0').update(cert ?? '').update('\0').update(key ?? '').update('\0').update(name).update(v.sni ? '1' : '0').digest('hex');
  return { id, ca, ...(cert && key ? { cert, key } : {}), name, sni: v.sni };
}
