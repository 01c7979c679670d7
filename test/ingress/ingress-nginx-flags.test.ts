// ingress-nginx's controller command line read as netplane ingress's (pure): its Helm chart's args line by line, the
// static manifests' line and the chart's usual extra args, pflag's forms, what is warned of and what is refused with
// its sentence; then netplane ingress started with a Helm chart's args (its listeners on loopback, the cluster from
// manifests): an Ingress of class nginx served, the default certificate from the Secret the chart names, its admission
// webhook refusing a host and path defined twice, the metrics served whatever --enable-metrics says, the warnings
// logged; and a namespace-scoped chart refused with exit code 2.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ingressComponent as ingress } from '../../ingress/component.ts';
import { ingressNginxFlags } from '../../ingress/ingress-nginx-flags.ts';
import { translateAnchorFlags } from '../../runtime/anchor-flags.ts';
import { commonFlags } from '../../runtime/component.ts';
import { UsageError } from '../../runtime/errors.ts';
import { parseFlags } from '../../runtime/flags.ts';
import { configMapYaml } from './e2e/configmaps.ts';
import { echoOf, EchoBackend, GatewayProcess, peerCert, serviceYaml, tlsSecretYaml } from './e2e/harness.ts';
import { makeCert } from './tls/pki.ts';
import { admissionReview, ingressObject } from './e2e/admission.ts';
import { freePort } from '../helpers/ports.ts';

const bin = fileURLToPath(new URL('../../bin/netplane.ts', import.meta.url));
const specs = { ...commonFlags(ingress.defaultAdmin), ...ingress.flags };
const translate = (argv: string[]) => translateAnchorFlags('netplane ingress', specs, ingressNginxFlags, argv);

const webhookFiles = ['--validating-webhook=:8443', '--validating-webhook-certificate=/usr/local/certificates/cert', '--validating-webhook-key=/usr/local/certificates/key'];
const metricsNote = 'netplane serves its metrics all the same, on its admin port with /healthz and /readyz (--admin, every IPv4 address at 10254 unless given); ignored';

/** The args the Helm chart writes with its default values (POD_NAMESPACE ingress-nginx, release ingress-nginx). */
const helmDefaults = [
  '--publish-service=ingress-nginx/ingress-nginx-controller',
  '--election-id=ingress-nginx-leader',
  '--controller-class=k8s.io/ingress-nginx',
  '--ingress-class=nginx',
  '--configmap=ingress-nginx/ingress-nginx-controller',
  '--validating-webhook=:8443',
  '--validating-webhook-certificate=/usr/local/certificates/cert',
  '--validating-webhook-key=/usr/local/certificates/key',
];

describe("ingress-nginx's command line", () => {
  it.each<[string, string[], string | undefined]>([
    // The chart's args with its default values, one by one.
    ['--publish-service=ingress-nginx/ingress-nginx-controller', ['--publish-service=ingress-nginx/ingress-nginx-controller'], undefined],
    ['--election-id=ingress-nginx-leader', ['--election-id=ingress-nginx-leader'], undefined],
    ['--controller-class=k8s.io/ingress-nginx', ['--controller-class=k8s.io/ingress-nginx'], undefined],
    ['--ingress-class=nginx', ['--ingress-class=nginx'], undefined],
    ['--configmap=ingress-nginx/ingress-nginx-controller', ['--configmap=ingress-nginx/ingress-nginx-controller'], undefined],
    ['--validating-webhook=:8443', ['--validating-webhook=:8443'], undefined],
    // ingress-nginx's default: no webhook.
    ['--validating-webhook=', [], undefined],
    // Without --validating-webhook, as in ingress-nginx: unread.
    ['--validating-webhook-certificate=/usr/local/certificates/cert', [], "ingress-nginx's --validating-webhook-certificate \"/usr/local/certificates/cert\": only the admission webhook reads it, and --validating-webhook is not given; ignored"],
    // The chart's other values and the usual controller.extraArgs.
    ['--enable-metrics=false', [], `ingress-nginx's --enable-metrics "false": ${metricsNote}`],
    // defaultBackend.enabled: netplane's flag of the same name.
    ['--default-backend-service=ingress-nginx/ingress-nginx-defaultbackend', ['--default-backend-service=ingress-nginx/ingress-nginx-defaultbackend'], undefined],
    ['--tcp-services-configmap=ingress-nginx/ingress-nginx-tcp', ['--tcp-services-configmap=ingress-nginx/ingress-nginx-tcp'], undefined],
    ['--udp-services-configmap=ingress-nginx/ingress-nginx-udp', ['--udp-services-configmap=ingress-nginx/ingress-nginx-udp'], undefined],
    ['--watch-namespace=ingress-nginx', [], 'refused'],
    ['--watch-ingress-without-class=true', ['--watch-ingress-without-class=true'], undefined],
    ['--ingress-class-by-name=true', [], undefined],
    ['--enable-annotation-validation=true', [], undefined],
    ['--enable-topology-aware-routing=true', [], "ingress-nginx's --enable-topology-aware-routing \"true\": netplane ingress spreads the requests over every ready endpoint of a Service, whatever its zone (the EndpointSlices' hints are not read); ignored"],
    ['--disable-leader-election=true', [], "ingress-nginx's --disable-leader-election \"true\": netplane elects the replica that writes Ingress status with a Lease all the same (--election-id); ignored"],
    ['--election-ttl=60s', ['--election-ttl=60s'], undefined],
    ['--healthz-host=127.0.0.1', ['--admin=127.0.0.1:10254'], undefined],
    ['--health-check-path=/healthz', [], undefined],
    ['--default-ssl-certificate=ingress-nginx/wildcard-tls', ['--default-certificate=ingress-nginx/wildcard-tls'], undefined],
    ['--enable-ssl-passthrough', ['--enable-ssl-passthrough'], undefined],
    ['--publish-status-address=203.0.113.10', ['--publish-status-address=203.0.113.10'], undefined],
    ['--update-status=false', ['--update-status=false'], undefined],
    ['--update-status-on-shutdown=false', ['--update-status-on-shutdown=false'], undefined],
    ['--http-port=8080', ['--http=0.0.0.0:8080'], undefined],
    ['--https-port=8443', ['--https=0.0.0.0:8443'], undefined],
    ['--healthz-port=10254', ['--admin=0.0.0.0:10254'], undefined],
    ['--annotations-prefix=nginx.ingress.kubernetes.io', [], undefined],
    ['--v=2', ['--log-level=info'], undefined],
    ['--maxmind-license-key=abc123', [], `ingress-nginx's --maxmind-license-key "abc123": netplane has no GeoIP databases (and no variables that need them); ignored`],
  ])('%s', (arg, want, note) => {
    if (note === 'refused') {
      expect(() => translate([arg])).toThrow(UsageError);
      return;
    }
    const got = translate([arg]);
    expect(got.argv).toEqual(want);
    expect(got.notes).toEqual(note === undefined ? [] : [note]);
    expect(parseFlags('netplane ingress', specs, got.argv)).not.toBeNull();
  });

  it.each<[string, string[], string[], string[]]>([
    [
      "the Helm chart's default args",
      helmDefaults,
      ['--publish-service=ingress-nginx/ingress-nginx-controller', '--election-id=ingress-nginx-leader', '--controller-class=k8s.io/ingress-nginx', '--ingress-class=nginx', '--configmap=ingress-nginx/ingress-nginx-controller', ...webhookFiles],
      [],
    ],
    [
      "deploy/static's args (the chart's, with metrics off)",
      [...helmDefaults, '--enable-metrics=false'],
      ['--publish-service=ingress-nginx/ingress-nginx-controller', '--election-id=ingress-nginx-leader', '--controller-class=k8s.io/ingress-nginx', '--ingress-class=nginx', '--configmap=ingress-nginx/ingress-nginx-controller', ...webhookFiles],
      [`ingress-nginx's --enable-metrics "false": ${metricsNote}`],
    ],
    [
      'a hostNetwork DaemonSet on other ports, by hand',
      ['--http-port', '8080', '--https-port', '8443', '--healthz-port', '10254', '--healthz-host', '10.0.0.5', '--tcp-services-configmap', 'ingress-nginx/tcp-services', '--annotations-prefix', 'nginx.ingress.kubernetes.io', '--v', '3'],
      ['--http=0.0.0.0:8080', '--https=0.0.0.0:8443', '--admin=10.0.0.5:10254', '--tcp-services-configmap=ingress-nginx/tcp-services', '--log-level=info'],
      [],
    ],
    [
      "pflag's forms: a bare boolean, -v, ingress-nginx's 0 election TTL; netplane's own form of a true|false flag",
      ['--watch-ingress-without-class', '-v', '5', '--election-ttl=0s', '--update-status', 'false', '--enable-ssl-passthrough=false'],
      ['--watch-ingress-without-class=true', '--log-level=debug', '--election-ttl=30s', '--update-status=false'],
      [],
    ],
    [
      "ingress-nginx's defaults written out: nothing to say",
      ['--default-server-port=8181', '--ssl-passthrough-proxy-port=442', '--status-port=10246', '--stream-port=10247', '--profiling=false', '--sync-period=0s', '--watch-namespace=', '--enable-metrics=true', '--deep-inspect=true', '--disable-catch-all=false', '--disable-svc-external-name=false', '--maxmind-edition-ids=GeoLite2-City,GeoLite2-ASN'],
      [],
      [],
    ],
    ['klog flags written with underscores', ['--log_dir=/var/log', '--skip_headers'], [], [
      `ingress-nginx's --log_dir "/var/log": netplane writes its logs as JSON lines on stdout (--log-level says how many); ignored`,
      "ingress-nginx's --skip_headers: netplane writes its logs as JSON lines on stdout (--log-level says how many); ignored",
    ]],
  ])('%s', (_what, argv, want, notes) => {
    const got = translate(argv);
    expect(got.argv).toEqual(want);
    expect(got.notes).toEqual(notes);
    expect(parseFlags('netplane ingress', specs, got.argv)).not.toBeNull();
  });

  it('warns of what netplane does its own way, naming the flag and why', () => {
    const argv = [
      '--profiling', '--apiserver-host=https://10.96.0.1', '--sync-period=10m', '--status-update-interval=30', '--shutdown-grace-period=5', '--enable-ssl-chain-completion',
      '--report-node-internal-ip-address=true', '--enable-annotation-validation=false', '--deep-inspect=false', '--metrics-per-host', '--time-buckets=0.5,1,5', '--default-server-port=8282',
    ];
    expect(translate(argv).notes).toEqual([
      "ingress-nginx's --profiling: netplane serves no profiling handlers; ignored",
      `ingress-nginx's --apiserver-host "https://10.96.0.1": netplane talks to the API server its kubeconfig names (--kubeconfig, else $KUBECONFIG, else in-cluster); ignored`,
      `ingress-nginx's --sync-period "10m": netplane watches the cluster and never lists it again on a timer; ignored`,
      `ingress-nginx's --status-update-interval "30": netplane looks at the Ingress status every 60 s and soon after each change of the Ingresses, their classes and the published Service; ignored`,
      `ingress-nginx's --shutdown-grace-period "5": netplane stops accepting at SIGTERM and lets the requests in flight finish for --drain-timeout; ignored`,
      "ingress-nginx's --enable-ssl-chain-completion: netplane serves the certificate chain a Secret holds as it is, and fetches no intermediate certificates; ignored",
      `ingress-nginx's --report-node-internal-ip-address "true": netplane writes Ingress status from --publish-service or --publish-status-address only, never from the nodes' addresses; ignored`,
      `ingress-nginx's --enable-annotation-validation "false": netplane checks every annotation's value all the same, and serves no Ingress with a bad one; ignored`,
      `ingress-nginx's --deep-inspect "false": netplane never renders or runs what an Ingress says (no template; snippets are refused), so it inspects nothing further; ignored`,
      "ingress-nginx's --metrics-per-host: netplane's metrics keep their own series and buckets (ingress-nginx's names, without a host label); ignored",
      `ingress-nginx's --time-buckets "0.5,1,5": netplane's metrics keep their own series and buckets (ingress-nginx's names, without a host label); ignored`,
      `ingress-nginx's --default-server-port "8282": netplane has no catch-all server of its own: a request no Ingress takes is answered on --http and --https; ignored`,
    ]);
  });

  it.each<[string, string[], string]>([
    ['--watch-namespace', ['--watch-namespace=ingress-nginx'], `--watch-namespace "ingress-nginx": netplane ingress reads Ingresses in every namespace and cannot keep to one: it would serve this class's Ingresses of the other namespaces too; leave --watch-namespace out`],
    ['--watch-namespace-selector', ['--watch-namespace-selector=team=a'], `--watch-namespace-selector "team=a": netplane ingress reads Ingresses in every namespace and cannot keep to some: it would serve this class's Ingresses of the other namespaces too; leave --watch-namespace-selector out`],
    ['another --annotations-prefix', ['--annotations-prefix=custom.example.com'], `--annotations-prefix "custom.example.com": netplane ingress reads its annotations under nginx.ingress.kubernetes.io/ (and netplane.io/) only, so the Ingresses' annotations under another prefix would be lost`],
    ['--disable-catch-all', ['--disable-catch-all=true'], '--disable-catch-all "true": netplane ingress serves the Ingresses that have a defaultBackend and no rules (catch-all), and cannot leave them out'],
    ['--disable-svc-external-name', ['--disable-svc-external-name'], '--disable-svc-external-name: netplane ingress reaches Services of type ExternalName at their name, and cannot refuse them'],
    ['another --health-check-path', ['--health-check-path=/ready'], '--health-check-path "/ready": netplane serves /healthz on its admin port (--admin) and no other path; point the probes at /healthz and leave --health-check-path out'],
    ['--version', ['--version'], '--version: netplane ingress runs, it does not print a version: netplane --version does'],
    ['a default backend that is no NAMESPACE/NAME', ['--default-backend-service=ingress-nginx-defaultbackend'], '--default-backend-service "ingress-nginx-defaultbackend": must be NAMESPACE/NAME of a Service, such as netplane-system/netplane-ingress'],
    ['a port that is none', ['--http-port=80000'], '--http-port "80000": must be a port from 1 to 65535'],
    ['a default certificate of neither form', ['--default-ssl-certificate=wildcard'], '--default-ssl-certificate "wildcard": must be CERT.pem,KEY.pem, or NAMESPACE/NAME of a TLS Secret'],
    ['an --election-id netplane cannot name a Lease', ['--election-id=Ingress_Leader'], '--election-id "Ingress_Leader": must be a Lease name (lower-case letters, digits, "-" and ".")'],
    ['a healthz host that is no address', ['--healthz-host=node1'], '--healthz-host "node1": must be ADDR:PORT with an IP address (or localhost), e.g. 127.0.0.1:9153 or [::1]:9153'],
    ['a boolean that is none', ['--enable-ssl-passthrough=yes'], '--enable-ssl-passthrough "yes": must be true or false'],
    ['the HTTP listener in both spellings', ['--http-port=8080', '--http', '127.0.0.1:8080'], "--http is given twice (ingress-nginx's --http-port, --http); give it once"],
    ['the admin address in both spellings', ['--healthz-port=10254', '--admin', '127.0.0.1:10254'], "--admin is given twice (ingress-nginx's --healthz-port, --admin); give it once"],
  ])('refuses %s: one sentence', (_what, argv, why) => {
    expect(() => translate(argv)).toThrow(new UsageError(`netplane ingress: ${why}`));
  });
});

describe("netplane ingress started with the Helm chart's args", () => {
  const web = new EchoBackend('web');
  const gw = new GatewayProcess();

  const certs = mkdtempSync(join(tmpdir(), 'netplane-webhook-'));
  let webhookPort = 0;
  let webhookCa = '';

  beforeAll(async () => {
    await web.start();
    const wildcard = await makeCert('wildcard.example.test');
    // As the chart's certgen job makes it: for the admission Service's name.
    const admission = await makeCert('ingress-nginx-controller-admission', ['ingress-nginx-controller-admission.default.svc']);
    writeFileSync(join(certs, 'cert'), admission.cert);
    writeFileSync(join(certs, 'key'), admission.key);
    webhookCa = admission.cert;
    webhookPort = await freePort();
    gw.write(
      'all.yaml',
      [
        // The IngressClass the chart creates, and an Ingress of that class.
        'apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata: { name: nginx }\nspec: { controller: k8s.io/ingress-nginx }\n',
        serviceYaml('web', [web]),
        `---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: { name: web, namespace: default }
spec:
  ingressClassName: nginx
  rules: [{ host: web.test, http: { paths: [{ path: /, pathType: Prefix, backend: { service: { name: web, port: { number: 80 } } } }] } }]
`,
        tlsSecretYaml('wildcard-tls', wildcard),
        configMapYaml('ingress-nginx-controller', { 'allow-snippet-annotations': 'false' }),
      ].join('---\n'),
    );
    // The chart's args for POD_NAMESPACE default, with controller.extraArgs default-ssl-certificate and v: 2 (the log
    // level is --v's); the listeners and admin port are the harness's, on loopback.
    gw.logArgs = [];
    await gw.start(
      [
        '--publish-service=default/ingress-nginx-controller',
        '--election-id=ingress-nginx-leader',
        '--controller-class=k8s.io/ingress-nginx',
        '--ingress-class=nginx',
        '--configmap=default/ingress-nginx-controller',
        // The webhook's port and the files the chart mounts from its Secret, here a free port and a temporary directory.
        `--validating-webhook=:${webhookPort}`,
        `--validating-webhook-certificate=${join(certs, 'cert')}`,
        `--validating-webhook-key=${join(certs, 'key')}`,
        '--enable-metrics=false',
        '--default-ssl-certificate=default/wildcard-tls',
        '--v=2',
      ],
      { host: 'web.test' },
    );
  }, 30_000);

  afterAll(async () => {
    await gw.stop();
    await web.stop();
    rmSync(certs, { recursive: true, force: true });
  });

  it('serves an Ingress of class nginx', async () => {
    const r = await gw.get('web.test', '/hello');
    expect(r.status).toBe(200);
    expect(echoOf(r)).toMatchObject({ backend: 'web', url: '/hello' });
  });

  it("serves the default certificate from the chart's --default-ssl-certificate Secret", async () => {
    expect((await peerCert(gw.https, 'nothing.test')).subject.CN).toBe('wildcard.example.test');
  });

  it("serves the admission webhook the chart's ValidatingWebhookConfiguration calls, over HTTPS with the chart's certificate", async () => {
    const copy = ingressObject({ name: 'copy', className: 'nginx', rules: [['web.test', '/', 'web']] });
    const r = await admissionReview({ port: webhookPort, ca: webhookCa, servername: 'ingress-nginx-controller-admission.default.svc', path: '/networking/v1/ingresses' }, copy);
    expect(r.response).toMatchObject({ allowed: false, status: { message: expect.stringMatching(/^netplane would not serve Ingress default\/copy as written: .*web\.test.* already routes it$/) } });
  });

  it('serves its metrics whatever --enable-metrics says, and logs at --v=2 as info', async () => {
    expect(await gw.metrics()).toContain('nginx_ingress_controller_requests{');
    const lines = gw.output.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: number; msg: string });
    expect(lines.every((l) => l.level >= 30)).toBe(true);
    expect(lines.filter((l) => l.level === 40).map((l) => l.msg)).toEqual(
      expect.arrayContaining([`ingress-nginx's --enable-metrics "false": ${metricsNote}`]),
    );
  });

  it('is refused with exit code 2 and one sentence when the chart keeps it to a namespace (controller.scope)', () => {
    const r = spawnSync(process.execPath, [bin, 'ingress', '--manifests', gw.dir, '--ingress-class=nginx', '--watch-namespace=ingress-nginx'], { encoding: 'utf8', timeout: 15_000 });
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toEqual([
      `netplane ingress: --watch-namespace "ingress-nginx": netplane ingress reads Ingresses in every namespace and cannot keep to one: it would serve this class's Ingresses of the other namespaces too; leave --watch-namespace out`,
    ]);
  });
});
