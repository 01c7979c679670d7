// ingress-nginx's controller command line (/nginx-ingress-controller: pkg/flags/flags.go, pflag, and klog's flags)
// taken as netplane ingress's, so that the args its Helm chart and its deploy/static manifests write —
// `--publish-service=ingress-nginx/ingress-nginx-controller --election-id=ingress-nginx-leader
// --controller-class=k8s.io/ingress-nginx --ingress-class=nginx --configmap=... --validating-webhook=:8443 ...` — start
// netplane as they are. Flags of the same name and meaning are netplane's own (--configmap, --publish-service,
// --election-id, --controller-class, --ingress-class, the services ConfigMaps ...) and are listed so that pflag's
// forms of them work (`--watch-ingress-without-class` bare, `--update-status=false`), the admission webhook's too. What
// ingress-nginx does with nginx itself (its internal ports, Lua, GeoIP) has no counterpart: a warning, silent at
// ingress-nginx's default; what would change which Ingresses are served, or how, and cannot be honoured is refused.
import { goBool, ignored, klogLevel, klogOutput, portNumber, refused, renamed, same, type AnchorFlag, type AnchorFlags } from '../runtime/anchor-flags.ts';
import { hostPortText, parseDuration } from '../runtime/flags.ts';

/** The prefix of ingress-nginx's annotations, the only one netplane reads besides its own netplane.io/. */
const annotationsPrefix = 'nginx.ingress.kubernetes.io';
/** ingress-nginx listens on every address (nginx's `listen 80`, Go's `:10254`): on IPv4 here, as kube-proxy's tables do. */
const everyAddress = '0.0.0.0';
/** ingress-nginx's --healthz-port default: its /healthz and /metrics. */
const healthzPortDefault = 10254;

const apiServer = 'netplane talks to the API server its kubeconfig names (--kubeconfig, else $KUBECONFIG, else in-cluster); ignored';
const metricsShape = "netplane's metrics keep their own series and buckets (ingress-nginx's names, without a host label); ignored";
const webhookOnly = 'only the admission webhook reads it, and --validating-webhook is not given; ignored';
const noGeoIp = 'netplane has no GeoIP databases (and no variables that need them); ignored';
const noLua = 'netplane has no internal configuration port (nothing is configured through Lua); ignored';

/** A listener's port (--http-port, --https-port): netplane's listener on every address, at that port. */
const listenerPort = (as: 'http' | 'https'): AnchorFlag => renamed(as, (raw) => hostPortText(everyAddress, portNumber(raw, 1)));

/** A file of the admission webhook: netplane's flag beside --validating-webhook, else unread (as in ingress-nginx). */
const webhookFile = (name: string): AnchorFlag => ({
  takes: 'value',
  as: name,
  take: (value, line) => ((line.value('validating-webhook') ?? '').trim() !== '' ? { argv: [`--${name}=${value}`] } : { ignored: webhookOnly }),
});

/** A pflag boolean that is a true|false value in netplane: both forms, bare included. */
const boolValue = (name: string): AnchorFlag => ({ takes: 'bool-or-value', as: name, take: (value) => ({ argv: [`--${name}=${goBool(value)}`] }) });

/** A value whose ingress-nginx default asks for nothing here: silent at `quiet`, a warning with `why` otherwise. */
const ignoredBut = (quiet: readonly string[], why: string): AnchorFlag => ignored('value', (v) => (quiet.includes(v.trim()) ? undefined : why));

/** A boolean ingress-nginx has on by default, whose `false` asks netplane for what it cannot stop doing. */
const offIgnored = (why: string): AnchorFlag => ({ takes: 'bool', take: (value) => (value === 'false' ? { ignored: why } : {}) });

/** A value that is allowed only at `allowed` (ingress-nginx's default); any other is refused with `why`. */
const onlyAt = (allowed: readonly string[], why: string): AnchorFlag => ({
  takes: 'value',
  take(value) {
    if (allowed.includes(value.trim())) return {};
    throw new Error(why);
  },
});

/** A boolean whose `true` cannot be honoured (refused with `why`); `false`, its default, asks for nothing. */
const trueRefused = (why: string): AnchorFlag => ({
  takes: 'bool',
  take(value) {
    if (value === 'true') throw new Error(why);
    return {};
  },
});

const flags: Record<string, AnchorFlag> = {
  // netplane's flags of the same name and meaning.
  configmap: same('value', 'configmap'),
  'tcp-services-configmap': same('value', 'tcp-services-configmap'),
  'udp-services-configmap': same('value', 'udp-services-configmap'),
  'publish-service': same('value', 'publish-service'),
  'publish-status-address': same('value', 'publish-status-address'),
  'election-id': same('value', 'election-id'),
  // ingress-nginx takes 0 (or less) as its default, 30s.
  'election-ttl': renamed('election-ttl', (v) => (v.trim().startsWith('-') || safeZero(v) ? '30s' : v)),
  'controller-class': same('value', 'controller-class'),
  // The Helm chart's defaultBackend.enabled: `--default-backend-service=$(POD_NAMESPACE)/ingress-nginx-defaultbackend`.
  'default-backend-service': same('value', 'default-backend-service'),
  'ingress-class': same('value', 'ingress-class'),
  kubeconfig: same('value', 'kubeconfig'),
  'enable-ssl-passthrough': same('bool', 'enable-ssl-passthrough'),
  'watch-ingress-without-class': boolValue('watch-ingress-without-class'),
  'update-status': boolValue('update-status'),
  'update-status-on-shutdown': boolValue('update-status-on-shutdown'),

  // Under other names.
  'default-ssl-certificate': renamed('default-certificate'),
  'http-port': listenerPort('http'),
  'https-port': listenerPort('https'),
  'healthz-port': {
    takes: 'value',
    as: 'admin',
    take: (value, line) => ({ argv: [`--admin=${hostPortText(line.value('healthz-host')?.trim() || everyAddress, portNumber(value, 1))}`] }),
  },
  'healthz-host': {
    takes: 'value',
    as: 'admin',
    // Beside --healthz-port, that flag takes the address (above).
    take: (host, line) => (line.value('healthz-port') !== undefined ? {} : { argv: [`--admin=${hostPortText(host.trim() || everyAddress, healthzPortDefault)}`] }),
  },
  v: renamed('log-level', klogLevel),

  // What netplane does not do, or does its own way: a warning.
  // Empty, ingress-nginx's default, serves no webhook.
  'validating-webhook': { takes: 'value', as: 'validating-webhook', take: (value) => (value.trim() === '' ? {} : { argv: [`--validating-webhook=${value.trim()}`] }) },
  'validating-webhook-certificate': webhookFile('validating-webhook-certificate'),
  'validating-webhook-key': webhookFile('validating-webhook-key'),
  'disable-full-test': ignored('bool', "netplane's admission webhook checks an Ingress write together with the other Ingresses of its hosts, which is all that can conflict with it (so a host and path defined twice is found), in about a millisecond; ignored"),
  'enable-metrics': offIgnored('netplane serves its metrics all the same, on its admin port with /healthz and /readyz (--admin, every IPv4 address at 10254 unless given); ignored'),
  'metrics-per-host': ignored('bool', metricsShape),
  'metrics-per-undefined-host': ignored('bool', metricsShape),
  'report-status-classes': ignored('bool', metricsShape),
  'time-buckets': ignored('value', metricsShape),
  'length-buckets': ignored('value', metricsShape),
  'size-buckets': ignored('value', metricsShape),
  'bucket-factor': ignoredBut(['0'], metricsShape),
  'max-buckets': ignoredBut(['100'], metricsShape),
  'exclude-socket-metrics': ignoredBut([''], metricsShape),
  'monitor-max-batch-size': ignoredBut(['10000'], metricsShape),
  profiling: ignored('bool', 'netplane serves no profiling handlers; ignored'),
  'profiler-port': ignoredBut(['10245'], 'netplane serves no profiling handlers; ignored'),
  'profiler-address': ignoredBut(['127.0.0.1'], 'netplane serves no profiling handlers; ignored'),
  'apiserver-host': ignored('value', apiServer),
  'certificate-authority': ignored('value', apiServer),
  'sync-period': ignored('value', (v) => (safeZero(v) ? undefined : 'netplane watches the cluster and never lists it again on a timer; ignored')),
  'sync-rate-limit': ignoredBut(['0.3'], 'netplane applies each change of the cluster at once, the changes that come together at one time; ignored'),
  'status-update-interval': ignoredBut(['60'], 'netplane looks at the Ingress status every 60 s and soon after each change of the Ingresses, their classes and the published Service; ignored'),
  'default-server-port': ignoredBut(['8181'], 'netplane has no catch-all server of its own: a request no Ingress takes is answered on --http and --https; ignored'),
  'ssl-passthrough-proxy-port': ignoredBut(['442'], 'netplane passes TLS through on --https itself, with no internal port; ignored'),
  'status-port': ignoredBut(['10246'], noLua),
  'stream-port': ignoredBut(['10247'], noLua),
  'internal-logger-address': ignoredBut(['127.0.0.1:11514'], "netplane's access log is JSON lines on stdout (--access-log); ignored"),
  'health-check-timeout': ignoredBut(['10'], "netplane's /healthz answers from its own checks at once; ignored"),
  'shutdown-grace-period': ignoredBut(['0'], 'netplane stops accepting at SIGTERM and lets the requests in flight finish for --drain-timeout; ignored'),
  'post-shutdown-grace-period': ignoredBut(['10'], 'netplane exits once the requests in flight are done (--drain-timeout); ignored'),
  'dynamic-configuration-retries': ignoredBut(['15'], 'netplane applies its configuration in-process, with nothing to retry; ignored'),
  'disable-leader-election': ignored('bool', 'netplane elects the replica that writes Ingress status with a Lease all the same (--election-id); ignored'),
  'enable-topology-aware-routing': ignored('bool', "netplane ingress spreads the requests over every ready endpoint of a Service, whatever its zone (the EndpointSlices' hints are not read); ignored"),
  'enable-ssl-chain-completion': ignored('bool', 'netplane serves the certificate chain a Secret holds as it is, and fetches no intermediate certificates; ignored'),
  'report-node-internal-ip-address': ignored('bool', "netplane writes Ingress status from --publish-service or --publish-status-address only, never from the nodes' addresses; ignored"),
  'enable-annotation-validation': offIgnored("netplane checks every annotation's value all the same, and serves no Ingress with a bad one; ignored"),
  'deep-inspect': offIgnored('netplane never renders or runs what an Ingress says (no template; snippets are refused), so it inspects nothing further; ignored'),
  'maxmind-license-key': ignored('value', noGeoIp),
  'maxmind-mirror': ignoredBut([''], noGeoIp),
  'maxmind-edition-ids': ignoredBut(['GeoLite2-City,GeoLite2-ASN'], noGeoIp),
  'maxmind-retries-count': ignoredBut(['1'], noGeoIp),
  'maxmind-retries-timeout': ignoredBut(['0s', '0'], noGeoIp),
  // What netplane does already: silent.
  'ingress-class-by-name': ignored('bool', () => undefined),
  'disable-sync-events': ignored('bool', () => undefined),
  ...Object.fromEntries(klogOutput.values.map((n) => [n, ignored('value', `${klogOutput.why}; ignored`)])),
  ...Object.fromEntries(klogOutput.bools.map((n) => [n, ignored('bool', `${klogOutput.why}; ignored`, true)])),

  // What would change which Ingresses are served, or how: refused.
  'watch-namespace': onlyAt([''], "netplane ingress reads Ingresses in every namespace and cannot keep to one: it would serve this class's Ingresses of the other namespaces too; leave --watch-namespace out"),
  'watch-namespace-selector': onlyAt([''], "netplane ingress reads Ingresses in every namespace and cannot keep to some: it would serve this class's Ingresses of the other namespaces too; leave --watch-namespace-selector out"),
  'annotations-prefix': onlyAt([annotationsPrefix, `${annotationsPrefix}/`], `netplane ingress reads its annotations under ${annotationsPrefix}/ (and netplane.io/) only, so the Ingresses' annotations under another prefix would be lost`),
  'health-check-path': onlyAt(['/healthz'], 'netplane serves /healthz on its admin port (--admin) and no other path; point the probes at /healthz and leave --health-check-path out'),
  'disable-catch-all': trueRefused('netplane ingress serves the Ingresses that have a defaultBackend and no rules (catch-all), and cannot leave them out'),
  'disable-svc-external-name': trueRefused('netplane ingress reaches Services of type ExternalName at their name, and cannot refuse them'),
  version: refused('bool', 'netplane ingress runs, it does not print a version: netplane --version does'),
};

/** Whether a Go duration (`0`, `0s`, `0m0s`) is zero; false for one that is not a duration netplane reads. */
function safeZero(raw: string): boolean {
  try {
    return parseDuration(raw) === 0;
  } catch {
    return false;
  }
}

/** ingress-nginx's controller flags, as netplane ingress takes them. */
export const ingressNginxFlags: AnchorFlags = { program: 'ingress-nginx', flags };
