// netplane ingress: the ingress gateway. HTTP and HTTPS at the edge, routed by host and path from Ingress objects
// to Service endpoints, with TLS by SNI, per-Ingress rate limits and auth.
import { defineComponent, listenProblem, type ComponentContext } from '../runtime/component.ts';
import { UsageError } from '../runtime/errors.ts';
import { durationFlag, flagGiven, type HostPort, intInRange, nonEmpty, oneOf, parseCIDRList, parseDuration, parseHostPort, positiveInt, switchFlag, valueFlag } from '../runtime/flags.ts';
import type { Logger } from '../runtime/logger.ts';
import { Authenticators } from './auth/authenticators.ts';
import { TrustedProxies } from './limits/client-ip.ts';
import { ConnectionCap } from './limits/connection-cap.ts';
import { defaultMaxTrackedClients } from './limits/client-table.ts';
import { RateLimiters } from './limits/rate.ts';
import { Gateway } from './server/gateway.ts';
import { Passthrough } from './edge/passthrough.ts';
import { controllerLabels, GatewayMetrics, registerCertificateExpiry, registerLimitMetrics } from './server/metrics.ts';
import type { GatewayState } from './server/steps.ts';
import { emptyTable, endpointsOf, IngressState } from './state.ts';
import { Certificates, DefaultCertificateFiles, hstsHeader } from './tls/index.ts';
import { DefaultCertificateSecret, isSecretRef } from './tls/default-secret.ts';
import { Upstreams } from './upstream/upstreams.ts';
import { Streams } from './stream/streams.ts';
import { ingressNginxFlags } from './ingress-nginx-flags.ts';
import type { StreamSettings } from './stream/settings.ts';
import { Mirrors } from './upstream/mirror.ts';
import { parseSize } from './routes/annotations.ts';
import { defaultMaxBodyBytes } from './routes/policy.ts';
import { parseServiceRef, parseStatusAddresses, type PublishSource } from './status/addresses.ts';
import type { StatusPublisher } from './status/index.ts';
import { AdmissionServer } from './admission/server.ts';
import { checkIngress } from './admission/check.ts';

/** The controller of netplane's own IngressClass (deploy/ingress.yaml), the metrics' controller_class without --controller-class. */
const defaultControllerClass = 'netplane.io/ingress';

/** --proxy-body-size: a size as nginx writes one. */
function bodySizeFlag(raw: string): number {
  const n = parseSize(raw);
  if (n === undefined) throw new Error('must be a size such as 0 (no limit), 512, 100k, 8m or 1g');
  return n;
}

/** The flags given on the command line whose settings the controller ConfigMap leaves as they are. */
function explicitDefaults(f: object): Set<string> {
  return new Set(['proxy-connect-timeout', 'proxy-read-timeout', 'proxy-send-timeout', 'proxy-body-size', 'hsts', 'trusted-proxies'].filter((flag) => flagGiven(f, flag)));
}

/** NAMESPACE/NAME of a ConfigMap. */
const configMapRef = (raw: string) => {
  const m = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\/([a-z0-9]([-a-z0-9.]*[a-z0-9])?)$/.exec(raw);
  if (!m || raw.length > 317) throw new Error('must be NAMESPACE/NAME of a ConfigMap, such as ingress-nginx/ingress-nginx-controller');
  return { namespace: m[1]!, name: m[3]! };
};

/** NAMESPACE/NAME of a Secret (a namespace is a DNS label, a Secret name a DNS subdomain). */
const secretRefPattern = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\/[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/** --default-certificate: two files, or a Secret. */
function defaultCertificateFlag(raw: string): string {
  if (isSecretRef(raw) ? secretRefPattern.test(raw) : /^[^,]+,[^,]+$/.test(raw)) return raw;
  throw new Error('must be CERT.pem,KEY.pem, or NAMESPACE/NAME of a TLS Secret');
}

/** A checked NAMESPACE/NAME (parseServiceRef) as an ObjectRef. */
function serviceObjectRef(ref: string): { namespace: string; name: string } {
  const [namespace = '', name = ''] = ref.split('/');
  return { namespace, name };
}

/** ADDR:PORT, or `off` for no listener. */
const listener = (raw: string): HostPort | 'off' => (raw === 'off' ? 'off' : parseHostPort(raw));
const className = (raw: string) => {
  if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(raw)) throw new Error('must be an IngressClass name (lower-case letters, digits, "-" and ".")');
  return raw;
};
/** A Kubernetes object name as a Lease takes it (a DNS subdomain). */
const leaseName = (raw: string) => {
  if (raw.length > 253 || !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(raw)) throw new Error('must be a Lease name (lower-case letters, digits, "-" and ".")');
  return raw;
};
/** A duration in whole seconds, as max-age is written; a fraction is refused rather than rounded (0.4s is not off). */
const seconds = (raw: string) => {
  const ms = parseDuration(raw);
  if (ms % 1000 !== 0) throw new Error('must be a whole number of seconds, e.g. 1s, 30m or 8760h (0s: off)');
  return ms / 1000;
};
const bool = oneOf(['true', 'false'] as const);
const yes = (raw: string) => bool(raw) === 'true';

const flags = {
  http: valueFlag({ value: 'ADDR:PORT', listens: true, help: 'serve plain HTTP here (`off`: none)', parse: listener, default: parseHostPort('0.0.0.0:80') as HostPort | 'off' }),
  https: valueFlag({ value: 'ADDR:PORT', listens: true, help: 'serve HTTPS (HTTP/2 and HTTP/1.1) here (`off`: none)', parse: listener, default: parseHostPort('0.0.0.0:443') as HostPort | 'off' }),
  // The ports clients use when a Service, NAT or load balancer in front maps them onto the listeners' (80 -> 8080):
  // ingress-nginx listens on 80/443 itself, so its redirects and X-Forwarded-Port name those.
  'public-http-port': valueFlag({ value: 'PORT', help: "the port clients reach --http on (a Service or load balancer in front mapping it), sent upstream as X-Forwarded-Port (default: --http's own port)", parse: intInRange(1, 65535) }),
  'public-https-port': valueFlag({
    value: 'PORT',
    help: "the port clients reach HTTPS on, written in HTTPS redirects (left out when 443) and sent upstream as X-Forwarded-Port (default: --https's own port); with --https off, where TLS ends in front (a load balancer), which turns the HTTPS redirects on",
    parse: intInRange(1, 65535),
  }),
  'controller-class': valueFlag({
    value: 'NAME',
    help: "also serve every IngressClass whose spec.controller is NAME (ingress-nginx's selection; k8s.io/ingress-nginx takes over its classes)",
    parse: nonEmpty,
  }),
  'watch-ingress-without-class': valueFlag({
    value: 'true|false',
    help: "also serve Ingresses without a class (no ingressClassName, no kubernetes.io/ingress.class) when --ingress-class is not the default IngressClass (ingress-nginx's flag)",
    parse: yes,
    default: false,
  }),
  'ingress-class': valueFlag({ value: 'NAME', help: 'serve Ingresses of this class (and class-less ones when this IngressClass is the default)', parse: className, default: 'netplane' }),
  'default-certificate': valueFlag({
    value: 'CERT.pem,KEY.pem|NAMESPACE/NAME',
    help: "certificate for names without one: two PEM files, re-read when they change, or a TLS Secret's tls.crt and tls.key (ingress-nginx's --default-ssl-certificate), followed in the cluster (default: self-signed, made at start)",
    parse: defaultCertificateFlag,
  }),
  'trusted-proxies': valueFlag({ value: 'CIDRS', help: 'believe X-Forwarded-For, -Proto, -Host and -Port only from peers in these ranges', parse: parseCIDRList, default: [] as string[] }),
  hsts: valueFlag({ value: 'DURATION', help: 'send Strict-Transport-Security with this max-age on HTTPS (0s: off)', parse: seconds, default: 0, shown: '0s' }),
  'hsts-include-subdomains': switchFlag('add includeSubDomains to Strict-Transport-Security'),
  'max-connections-per-ip': valueFlag({ value: 'N', help: 'open client connections allowed from one IP', parse: positiveInt, default: 1000 }),
  'max-tracked-clients': valueFlag({
    value: 'N',
    help: 'client addresses the rate and connection limits of all Ingresses track together (200 to 320 bytes each); past it the least recently used one without requests in flight is forgotten, which only lets it through sooner',
    parse: positiveInt,
    default: defaultMaxTrackedClients,
  }),
  'proxy-connect-timeout': durationFlag({ help: 'default time to connect to an endpoint (504 after)', default: '5s', min: '1ms', max: '1h' }),
  'proxy-read-timeout': durationFlag({ help: 'default time to wait for an endpoint to answer (504 after)', default: '60s', min: '1ms', max: '24h' }),
  'proxy-send-timeout': durationFlag({ help: 'default time an endpoint may take none of a request body (504 after)', default: '60s', min: '1ms', max: '24h' }),
  'proxy-body-size': {
    ...valueFlag({ value: 'SIZE', help: 'default largest request body, as nginx writes sizes (512, 100k, 8m, 1g; 0: no limit); larger gets 413', parse: bodySizeFlag, default: defaultMaxBodyBytes }),
    shown: '1m',
  },
  'headers-timeout': durationFlag({ help: 'time a client has to send the request headers', default: '60s', min: '1s', max: '1h' }),
  'request-timeout': durationFlag({ help: 'time a client has to send a whole request', default: '5m', min: '1s', max: '24h' }),
  'keepalive-timeout': durationFlag({ help: 'idle time before a client keep-alive connection is closed', default: '75s', min: '1s', max: '1h' }),
  'max-header-size': valueFlag({ value: 'BYTES', help: 'largest request header block (431 above)', parse: positiveInt, default: 16_384 }),
  'drain-timeout': durationFlag({ help: 'on SIGTERM, time requests in flight get to finish', default: '25s' }),
  'access-log': valueFlag({ value: 'on|off', help: 'one JSON line per request on stdout', parse: oneOf(['on', 'off'] as const), default: 'on' as 'on' | 'off' }),
  'reuse-port': switchFlag('listen with SO_REUSEPORT, so several gateway processes share the ports'),
  'proxy-protocol': switchFlag('every connection to --http and --https must start with a PROXY protocol header (v1 or v2, as from a load balancer); its client address is used'),
  'proxy-protocol-from': valueFlag({
    value: 'CIDRS',
    help: 'with --proxy-protocol: peers allowed to connect (the load balancers); others are closed. Also the only peers allowed on the TCP services entries that read a PROXY header (--tcp-services-configmap), where without it any peer may send one',
    parse: parseCIDRList,
  }),
  'proxy-protocol-timeout': durationFlag({ help: 'with --proxy-protocol, and on the TCP services entries that read a PROXY header (--tcp-services-configmap): time a connection has to send its whole header', default: '5s', min: '1s', max: '1m' }),
  'mirror-max-in-flight': valueFlag({ value: 'N', help: 'copies to a mirror-target under way per route; requests beyond them are not copied (counted as dropped)', parse: positiveInt, default: 100 }),
  'enable-ssl-passthrough': switchFlag('pass the TLS connections of Ingresses with ssl-passthrough "true" through to their backend by SNI, unterminated'),
  'read-secrets': valueFlag({
    value: 'referenced|all',
    help: 'read only the Secrets an Ingress names (one watch each), or all of them (one watch, for thousands of TLS hosts)',
    parse: oneOf(['referenced', 'all'] as const),
    default: 'referenced' as 'referenced' | 'all',
  }),
  'publish-service': valueFlag({
    value: 'NAMESPACE/NAME',
    help: "write this Service's addresses into the status of served Ingresses: its load-balancer IPs or names and external IPs (LoadBalancer), external IPs (NodePort), cluster IP, or external name",
    parse: parseServiceRef,
  }),
  'default-backend-service': valueFlag({
    value: 'NAMESPACE/NAME',
    help: "a Service that answers the requests no Ingress takes (ingress-nginx's flag): at its first port, its ready endpoints, after every rule and defaultBackend; also the custom-http-errors of Ingresses without a default-backend annotation. Without a ready endpoint: 404, as without it",
    parse: parseServiceRef,
  }),
  configmap: valueFlag({
    value: 'NAMESPACE/NAME',
    help: "ingress-nginx's controller ConfigMap, followed live: its time-outs, body size, redirects, hsts*, use-forwarded-headers and proxy-real-ip-cidr, the proxy-stream-* keys of the TCP and UDP services, and the keys that are annotations' global defaults (load-balance, custom-http-errors, ...) apply to every Ingress (flags given win); as in ingress-nginx, HSTS is on unless it says hsts: \"false\"",
    parse: configMapRef,
  }),
  'tcp-services-configmap': valueFlag({
    value: 'NAMESPACE/NAME',
    help: "ingress-nginx's TCP services ConfigMap, followed live: each key a port listened on (at --http's address, else --https's), each value NAMESPACE/SERVICE:PORT[:PROXY][:PROXY], relayed to the Service's ready endpoints (the first PROXY reads a PROXY protocol header from clients, the second sends one to the endpoint)",
    parse: configMapRef,
  }),
  'udp-services-configmap': valueFlag({
    value: 'NAMESPACE/NAME',
    help: "ingress-nginx's UDP services ConfigMap, followed live: each key a port listened on (at --http's address, else --https's), each value NAMESPACE/SERVICE:PORT, a flow per client to the Service's ready endpoints",
    parse: configMapRef,
  }),
  'validating-webhook': valueFlag({
    value: 'ADDR:PORT',
    listens: true,
    help: "serve ingress-nginx's validating admission webhook here, over HTTPS (ADDR may be left out: :8443): the API server sends each Ingress write of a served class, and one netplane would not serve as written is refused with the reason (a bad annotation value, a host and path another Ingress holds); what it would serve otherwise than written comes back as warnings",
    parse: parseHostPort,
  }),
  'validating-webhook-certificate': valueFlag({ value: 'FILE', help: "the webhook's PEM certificate (chain), re-read when it changes", parse: nonEmpty }),
  'validating-webhook-key': valueFlag({ value: 'FILE', help: "the webhook's PEM private key, re-read when it changes", parse: nonEmpty }),
  'publish-status-address': valueFlag({ value: 'ADDRS', help: 'write these addresses (IPs or DNS names, comma-separated) into the status of served Ingresses', parse: parseStatusAddresses }),
  'update-status': valueFlag({ value: 'true|false', help: 'keep status.loadBalancer of served Ingresses (one replica writes, elected by a Lease; not with --manifests)', parse: yes, default: true }),
  'update-status-on-shutdown': valueFlag({ value: 'true|false', help: 'when the writing replica stops and no other takes over, empty the status it wrote', parse: yes, default: true }),
  'election-id': valueFlag({ value: 'NAME', help: 'the Lease electing the replica that writes status, in $POD_NAMESPACE (else the kubeconfig namespace)', parse: leaseName, default: 'netplane-ingress-leader' }),
  'election-ttl': durationFlag({ help: 'how long a writing replica that stopped renewing its Lease keeps it', default: '30s', min: '1s', max: '1h' }),
};

/** The ingress component. */
export const ingressComponent = defineComponent({
  name: 'ingress',
  summary: 'Serves HTTP(S) at the edge from Ingress objects: host/path routing, TLS, rate limits and auth.',
  kinds: ['Ingress', 'IngressClass', 'Service', 'EndpointSlice', 'Secret', 'ConfigMap'],
  // ConfigMaps always by reference: only those an Ingress names for headers are read (one watch each).
  byReference: (f) => (f['read-secrets'] === 'referenced' ? ['Secret', 'ConfigMap'] : ['ConfigMap']),
  // ingress-nginx's metrics and health port, on every address as ingress-nginx has it: its Helm chart's probes and
  // Prometheus scrapes reach the pod's address.
  defaultAdmin: '0.0.0.0:10254',
  flags,
  anchor: ingressNginxFlags,
  async before(f, log) {
    if (f.http === 'off' && f.https === 'off') throw new UsageError('netplane ingress: --http and --https are both off; nothing to serve');
    const certificate = f['default-certificate'];
    // Read here, before the admin and listening ports are bound, as every other flag is checked; run reads it again.
    if (certificate !== undefined && !isSecretRef(certificate)) loadDefaultCertificate(certificate, log);
    // As in ingress-nginx, where they are mutually exclusive.
    if (f['publish-service'] !== undefined && f['publish-status-address'] !== undefined) {
      throw new UsageError('netplane ingress: give --publish-service or --publish-status-address, not both');
    }
    // The spec asks receivers to accept the header only from trusted proxies; with no list, anyone could name any address.
    if (f['proxy-protocol'] && f['proxy-protocol-from'] === undefined) {
      throw new UsageError('netplane ingress: --proxy-protocol needs --proxy-protocol-from CIDRS, the load balancers allowed to send the header (0.0.0.0/0,::/0 for any peer)');
    }
    // Also read by the TCP services entries that decode PROXY protocol (UDP entries never do), so a services
    // ConfigMap alone gives them a meaning; its entries are only known once it is read, so none is looked for here.
    const decoders = f['proxy-protocol'] || f['tcp-services-configmap'] !== undefined;
    if (!decoders && f['proxy-protocol-from'] !== undefined) throw new UsageError('netplane ingress: --proxy-protocol-from is given without --proxy-protocol or --tcp-services-configmap');
    if (!decoders && flagGiven(f, 'proxy-protocol-timeout')) throw new UsageError('netplane ingress: --proxy-protocol-timeout is given without --proxy-protocol or --tcp-services-configmap');
    if (f['hsts-include-subdomains'] && f.hsts === 0) throw new UsageError('netplane ingress: --hsts-include-subdomains is given without --hsts DURATION, so no Strict-Transport-Security header is sent');
    if (f.http === 'off' && f['public-http-port'] !== undefined) throw new UsageError('netplane ingress: --public-http-port is given but --http is off, so no request arrives over plain HTTP');
    if (f['enable-ssl-passthrough'] && f.https === 'off') throw new UsageError('netplane ingress: --enable-ssl-passthrough needs the HTTPS listener, but --https is off');
    checkWebhookFlags(f, log);
    return undefined;
  },
  async run(ctx, f) {
    await runIngress(ctx, f);
  },
});

type IngressFlags = Parameters<NonNullable<typeof ingressComponent.run>>[1];

/** --validating-webhook and its two files come together, and the files hold a pair that can be served. */
function checkWebhookFlags(f: Pick<IngressFlags, 'validating-webhook' | 'validating-webhook-certificate' | 'validating-webhook-key'>, log: Logger): void {
  const cert = f['validating-webhook-certificate'];
  const key = f['validating-webhook-key'];
  // Without the webhook the files are ingress-nginx's flags, unread with a warning (ingress-nginx-flags.ts).
  if (f['validating-webhook'] === undefined) return;
  if (cert === undefined || key === undefined) throw new UsageError('netplane ingress: --validating-webhook needs --validating-webhook-certificate FILE and --validating-webhook-key FILE: the API server speaks to the webhook over HTTPS only');
  loadPair(new DefaultCertificateFiles({ certPath: cert, keyPath: key, log }), '--validating-webhook-certificate and --validating-webhook-key');
}

/** Reads a pair of certificate files; one that cannot be served is a UsageError naming the flags and the file at fault. */
function loadPair(files: DefaultCertificateFiles, flags: string): { cert: string; key: string } {
  try {
    return files.load();
  } catch (e) {
    const why = (e as Error).message.replace(/^./, (c) => c.toLowerCase()).replace(/\.$/, '');
    throw new UsageError(`netplane ingress: ${flags}: ${why}`, { cause: e });
  }
}

/**
 * Starts the admission webhook of --validating-webhook: Ingress writes judged against the routes compiled now
 * (admission/check.ts). Resolves with its server, or undefined when it cannot listen (logged).
 */
async function startWebhook(ctx: ComponentContext, f: IngressFlags, keeper: IngressState, metrics: GatewayMetrics): Promise<AdmissionServer | undefined> {
  const listen = f['validating-webhook'];
  if (listen === undefined) return undefined;
  const server = new AdmissionServer({
    listen,
    certPath: f['validating-webhook-certificate']!,
    keyPath: f['validating-webhook-key']!,
    log: ctx.log.child({ part: 'admission' }),
    registry: ctx.registry,
    check: (ingress) => {
      const input = keeper.reviewInput();
      if (input === undefined) return { allowed: true, warnings: ['netplane has not read the cluster yet: this Ingress is let through unchecked'] };
      return checkIngress(ingress, { input, objectProblems: (table) => keeper.objectProblems(table) });
    },
    judged: (namespace, name, allowed) => (allowed ? metrics.checkSuccess : metrics.checkErrors).inc({ namespace, ingress: name }),
  });
  try {
    const port = await server.listen();
    ctx.log.info({ address: listen.host, port }, 'admission webhook serving');
    return server;
  } catch (e) {
    ctx.log.fatal({ err: (e as Error).message }, `cannot listen on ${listen.text} (--validating-webhook): ${listenProblem(e as NodeJS.ErrnoException)}`);
    await server.close();
    await ctx.shutdown.run(1);
    return undefined;
  }
}

/** Reads the --default-certificate pair (CERT.pem,KEY.pem); one that cannot be served is a UsageError naming the file. */
function loadDefaultCertificate(flag: string, log: Logger): { files: DefaultCertificateFiles; pems: { cert: string; key: string } } {
  const [certPath, keyPath] = flag.split(',') as [string, string];
  const files = new DefaultCertificateFiles({ certPath, keyPath, log });
  return { files, pems: loadPair(files, `--default-certificate ${JSON.stringify(flag)}`) };
}

async function runIngress(ctx: ComponentContext, f: IngressFlags): Promise<void> {
  const { log } = ctx;
  let defaultCertificate: { cert: string; key: string } | undefined;
  let defaultFiles: DefaultCertificateFiles | undefined;
  // A Secret is served once read (the self-signed certificate until then); files are read now.
  const defaultSecretRef = f['default-certificate'] !== undefined && isSecretRef(f['default-certificate']) ? f['default-certificate'] : undefined;
  if (f['default-certificate'] !== undefined && defaultSecretRef === undefined) {
    ({ files: defaultFiles, pems: defaultCertificate } = loadDefaultCertificate(f['default-certificate'], log));
  }
  const https = f.https === 'off' ? undefined : f.https;
  const http = f.http === 'off' ? undefined : f.http;
  const certificates = https ? await Certificates.create({ log, defaultCertificate }) : undefined;
  const controller = controllerLabels(process.env, f['controller-class'] ?? defaultControllerClass);
  if (controller !== undefined) ctx.registry.setDefaultLabels(controller);
  const metrics = new GatewayMetrics(ctx.registry);
  // The files are followed only when something serves them; a renewed certificate is served from the next handshake.
  if (certificates && defaultFiles) {
    defaultFiles.onProblem = (bad) => metrics.defaultCertificateProblem.set(bad ? 1 : 0);
    defaultFiles.follow(certificates);
  }
  const defaultSecret =
    certificates && defaultSecretRef !== undefined
      ? new DefaultCertificateSecret({ store: ctx.store, secret: defaultSecretRef, sink: certificates, log, onProblem: (bad) => metrics.defaultCertificateProblem.set(bad ? 1 : 0) })
      : undefined;
  const upstreams = new Upstreams({ log });
  const state: GatewayState = {
    table: emptyTable,
    limiters: new RateLimiters({ maxTrackedClients: f['max-tracked-clients'] }),
    auth: new Authenticators({ secrets: (ref) => ctx.store.get('Secret', `${ref.namespace}/${ref.name}`), log }),
    upstreams,
    // Where clients reach HTTPS, for redirects: the public port, else the listener's (a port of 0 is known once bound).
    httpsPort: f['public-https-port'] ?? (https?.port || undefined),
    hsts: f.hsts > 0 ? hstsHeader(f.hsts, f['hsts-include-subdomains'], false) : undefined,
    mirrors: new Mirrors({
      log,
      maxInFlight: f['mirror-max-in-flight'],
      count: (ingress, outcome) => {
        const [namespace = '', name = ''] = ingress.split('/');
        metrics.mirrored.inc({ namespace, ingress: name, outcome });
      },
    }),
  };
  const streamConfigMaps = {
    ...(f['tcp-services-configmap'] !== undefined ? { TCP: f['tcp-services-configmap'] } : {}),
    ...(f['udp-services-configmap'] !== undefined ? { UDP: f['udp-services-configmap'] } : {}),
  };
  // The controller ConfigMap's proxy-stream-* keys, as last read: the TCP and UDP services started later take them.
  let streamSettings: StreamSettings | undefined;
  let streams: Streams | undefined;
  const keeper = new IngressState(state, {
    store: ctx.store,
    serviceMap: ctx.serviceMap(),
    log,
    metrics,
    className: f['ingress-class'],
    withoutClass: f['watch-ingress-without-class'],
    ...(f['controller-class'] !== undefined ? { controllerClass: f['controller-class'] } : {}),
    defaults: { connectTimeoutMs: f['proxy-connect-timeout'], readTimeoutMs: f['proxy-read-timeout'], sendTimeoutMs: f['proxy-send-timeout'], maxBodyBytes: f['proxy-body-size'], sslPassthrough: f['enable-ssl-passthrough'] },
    certificates,
    ...(f.configmap ? { controllerConfigMap: f.configmap, explicit: explicitDefaults(f) } : {}),
    alsoWanted: Streams.configMapKeys(streamConfigMaps),
    ...(f['default-backend-service'] !== undefined ? { defaultService: serviceObjectRef(f['default-backend-service']) } : {}),
    ...(defaultSecret !== undefined ? { alsoWantedSecrets: [defaultSecretRef!] } : {}),
    onControllerConfig: (config) => {
      streamSettings = config.stream;
      streams?.configure(config.stream);
    },
  });
  registerLimitMetrics(ctx.registry, state.limiters.budget);
  if (certificates) {
    registerCertificateExpiry(ctx.registry, () => servedExpiries(state, certificates), { namespace: process.env.POD_NAMESPACE ?? '', class: f['ingress-class'] });
  }
  keeper.start();
  defaultSecret?.start();
  // Clients idle with full buckets are forgotten, so the limiters' memory follows the active clients.
  const pruning = setInterval(() => state.limiters.prune(), 30_000).unref();
  let listening = false;
  ctx.admin.addReadinessCheck('routes', () => (keeper.ready ? { ok: true } : { ok: false, reason: 'routes not compiled from a full view yet' }));
  ctx.admin.addReadinessCheck('secrets', () => {
    const waiting = ctx.store.loading('Secret');
    return waiting.length === 0 ? { ok: true } : { ok: false, reason: `waiting for Secrets ${waiting.slice(0, 5).join(', ')}${waiting.length > 5 ? ', ...' : ''}` };
  });
  ctx.admin.addReadinessCheck('configmaps', () => {
    const waiting = ctx.store.loading('ConfigMap');
    return waiting.length === 0 ? { ok: true } : { ok: false, reason: `waiting for ConfigMaps ${waiting.slice(0, 5).join(', ')}${waiting.length > 5 ? ', ...' : ''}` };
  });
  ctx.admin.addReadinessCheck('listeners', () => (listening ? { ok: true } : { ok: false, reason: 'not listening yet' }));
  const gateway = new Gateway(state, {
    http,
    https,
    publicPorts: { http: f['public-http-port'], https: f['public-https-port'] },
    reusePort: f['reuse-port'],
    certificates,
    trusted: TrustedProxies.parse(f['trusted-proxies']),
    connectionCap: new ConnectionCap(f['max-connections-per-ip']),
    log,
    accessLog: f['access-log'] === 'on' ? log.child({ access: true }) : undefined,
    metrics,
    headersTimeoutMs: f['headers-timeout'],
    requestTimeoutMs: f['request-timeout'],
    keepAliveTimeoutMs: f['keepalive-timeout'],
    maxHeaderSize: f['max-header-size'],
    maxHeadersCount: 100,
    passthrough: f['enable-ssl-passthrough']
      ? {
          // The served table decides, never the Ingress as the cluster has it now (a refused version has no effect).
          passthrough: new Passthrough({ table: () => state.table, endpoints: (b) => endpointsOf(ctx.serviceMap(), b), limiter: (ingress, policy) => state.limiters.get(ingress, policy) }),
          connectTimeoutMs: f['proxy-connect-timeout'],
        }
      : undefined,
    proxyProtocol: f['proxy-protocol'] ? { from: TrustedProxies.parse(f['proxy-protocol-from'] ?? []), timeoutMs: f['proxy-protocol-timeout'] } : undefined,
  });
  let bound;
  try {
    bound = await gateway.listen();
  } catch (e) {
    log.fatal({ err: (e as Error).message }, `cannot listen on ${[http?.text, https?.text].filter(Boolean).join(', ')}: ${listenProblem(e as NodeJS.ErrnoException)}`);
    await ctx.shutdown.run(1);
    return;
  }
  const webhook = await startWebhook(ctx, f, keeper, metrics);
  if (f['validating-webhook'] !== undefined && webhook === undefined) return;
  state.httpsPort ??= bound.https;
  streams = Object.keys(streamConfigMaps).length > 0 ? startStreams(ctx, f, streamConfigMaps, bound, streamSettings) : undefined;
  if (streams) ctx.admin.addReadinessCheck('stream-ports', () => (streams.ready ? { ok: true } : { ok: false, reason: 'the TCP and UDP services ports are not all tried yet' }));
  listening = true;
  ctx.shutdown.allow(f['drain-timeout'] + 5000);
  // Only a gateway that serves runs for the Lease: its addresses are then worth publishing.
  const status = await startStatus(ctx, f, { served: () => state.table.ingresses.keys(), ready: () => keeper.ready });
  ctx.shutdown.add('ingress', async () => {
    // Handed over or emptied while the requests in flight drain.
    const statusDone = status?.shutdown();
    keeper.stop();
    defaultFiles?.close();
    defaultSecret?.close();
    clearInterval(pruning);
    log.info({ inFlight: gateway.inFlight, ...(streams ? { streams: streams.inFlight } : {}) }, 'draining');
    await Promise.all([gateway.drain(f['drain-timeout']), streams?.drain(f['drain-timeout'])]);
    await webhook?.close();
    await upstreams.close();
    await state.mirrors?.close();
    state.auth.close();
    await statusDone;
  });
  log.info({ http: bound.http, https: bound.https, class: f['ingress-class'] }, 'ingress serving');
}

/** The TLS hosts of the served table that get their own Secret's certificate, with when it runs out. */
function* servedExpiries(state: GatewayState, certificates: Certificates): Iterable<[string, Date]> {
  for (const [host, choice] of state.table.tlsHosts?.() ?? []) {
    const notAfter = certificates.expiry(host, choice);
    if (notAfter !== undefined) yield [host, notAfter];
  }
}

/**
 * Starts the TCP and UDP services of --tcp-services-configmap and --udp-services-configmap, on the address of the HTTP
 * listener (else the HTTPS one's); the gateway's own TCP ports (`bound`, the admin port) are refused as entries.
 */
function startStreams(ctx: ComponentContext, f: IngressFlags, configMaps: ConstructorParameters<typeof Streams>[0]['configMaps'], bound: { http?: number; https?: number }, settings: StreamSettings | undefined): Streams {
  const reserved = new Map<number, string>();
  if (bound.http !== undefined) reserved.set(bound.http, 'the --http listener');
  if (bound.https !== undefined) reserved.set(bound.https, 'the --https listener');
  if (f.admin.port !== 0) reserved.set(f.admin.port, 'the admin listener (--admin)');
  const host = f.http !== 'off' ? f.http.host : f.https !== 'off' ? f.https.host : '0.0.0.0';
  const streams = new Streams({
    store: ctx.store,
    serviceMap: ctx.serviceMap(),
    log: ctx.log,
    registry: ctx.registry,
    configMaps,
    host,
    reserved,
    reusePort: f['reuse-port'],
    connectTimeoutMs: f['proxy-connect-timeout'],
    ...(settings !== undefined ? { settings } : {}),
    // The load balancers --proxy-protocol-from names are the only peers whose header is believed, here too.
    proxyProtocol: { ...(f['proxy-protocol-from'] !== undefined ? { from: TrustedProxies.parse(f['proxy-protocol-from']) } : {}), timeoutMs: f['proxy-protocol-timeout'] },
    ...(f['access-log'] === 'on' ? { accessLog: ctx.log.child({ access: true }) } : {}),
  });
  streams.start();
  return streams;
}

/**
 * Starts the Ingress status publisher when the gateway reads the Kubernetes API and an address source is given;
 * otherwise says once why status is not written. A kubeconfig that cannot be loaded here was already refused.
 */
async function startStatus(ctx: ComponentContext, f: IngressFlags, gateway: { served: () => Iterable<string>; ready: () => boolean }): Promise<StatusPublisher | undefined> {
  const { log } = ctx;
  if (!f['update-status']) return undefined;
  if (ctx.source.name !== 'kubernetes') {
    log.info('Ingress status is not written: the cluster is read from manifests, not the Kubernetes API');
    return undefined;
  }
  const publish: PublishSource | undefined = f['publish-service'] !== undefined ? { service: f['publish-service'] } : f['publish-status-address'] !== undefined ? { addresses: f['publish-status-address'] } : undefined;
  if (publish === undefined) {
    // ingress-nginx falls back to the addresses of the nodes its pods run on, which needs Pods and Nodes.
    log.info('Ingress status is not written: give --publish-service or --publish-status-address to say which addresses to publish');
    return undefined;
  }
  // Loaded only here: manifests mode needs none of the client library.
  const { writerConfig } = await import('../cluster/kubernetes/source.ts');
  const { StatusPublisher, defaultIdentity, leaseNamespace } = await import('./status/index.ts');
  const kc = writerConfig(ctx.source, f.kubeconfig, log.child({ part: 'status' }));
  const publisher = new StatusPublisher({
    kc,
    store: ctx.store,
    ...gateway,
    publish,
    log: log.child({ part: 'status' }),
    registry: ctx.registry,
    election: { namespace: leaseNamespace(kc), name: f['election-id'], identity: defaultIdentity(), ttlMs: f['election-ttl'] },
    clearOnShutdown: f['update-status-on-shutdown'],
  });
  publisher.start();
  return publisher;
}
