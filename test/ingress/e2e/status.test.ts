// `netplane ingress --publish-service` against the test API server, run as users run it: the status of the
// Ingresses it serves (not another class's, not one it refuses) shows the published Service's address and follows
// it; of two gateways one writes; when it stops the other takes over and the status stays, and when the last one
// stops the status is emptied. In manifests mode nothing is written, and the log says so.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestApiServer } from '../../apiserver/server.ts';
import { service } from '../../fixtures/objects.ts';
import { waitFor } from '../../helpers/wait.ts';
import { EchoBackend, GatewayProcess, ingressClassYaml, ingressYaml, serviceYaml } from './harness.ts';

const bin = fileURLToPath(new URL('../../../bin/netplane.ts', import.meta.url));
const objects = (yaml: string) => parseAllDocuments(yaml).map((d) => d.toJSON() as object).filter(Boolean);
const lbService = (...ips: string[]) => service('gw', { type: 'LoadBalancer', clusterIP: '10.96.0.5', ports: [{ port: 80 }] }, { namespace: 'ops', status: { loadBalancer: { ingress: ips.map((ip) => ({ ip })) } } });
const logLines = (output: string) => output.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
const updates = (gw: GatewayProcess) => logLines(gw.output).filter((l) => String(l.msg).startsWith('updated the status of Ingress')).map((l) => l.ingress);

describe('netplane ingress writing Ingress status', () => {
  const web = new EchoBackend('web');
  const gateways: GatewayProcess[] = [];
  let api: TestApiServer;
  const apply = (yaml: string) => objects(yaml).forEach((o) => api.apply(o));
  const statusOf = async (name: string) => {
    const res = await fetch(`${api.url}/apis/networking.k8s.io/v1/namespaces/default/ingresses/${name}`);
    return ((await res.json()) as { status?: { loadBalancer?: { ingress?: unknown[] } } }).status?.loadBalancer?.ingress ?? [];
  };
  const start = async () => {
    const gw = new GatewayProcess();
    gateways.push(gw);
    gw.sourceArgs = ['--kubeconfig', await api.kubeconfigPath()];
    await gw.start(['--publish-service', 'ops/gw', '--election-ttl', '1500ms'], { host: 'shop.test' });
    return gw;
  };

  beforeAll(async () => {
    await web.start();
    api = await TestApiServer.start();
    apply(ingressClassYaml);
    apply(serviceYaml('web', [web]));
    api.apply(lbService('203.0.113.10'));
    apply(ingressYaml({ name: 'shop', host: 'shop.test', paths: [['Prefix', '/', 'web']] }));
    // Refused by netplane (a snippet), so not served.
    apply(ingressYaml({ name: 'snippet', host: 'snippet.test', paths: [['Prefix', '/', 'web']], annotations: { 'nginx.ingress.kubernetes.io/configuration-snippet': 'return 200;' } }));
    // Another controller's.
    apply(ingressYaml({ name: 'legacy', host: 'legacy.test', paths: [['Prefix', '/', 'web']] }).replace('ingressClassName: netplane', 'ingressClassName: nginx'));
  }, 30_000);

  afterAll(async () => {
    for (const gw of gateways) await gw.stop();
    await web.stop();
    await api.close();
  });

  it('publishes the Service address on served Ingresses only, and follows it', async () => {
    const gw = await start();
    await waitFor('the status of shop', async () => (await statusOf('shop')).length > 0, 10_000, 50);
    expect(await statusOf('shop')).toEqual([{ ip: '203.0.113.10' }]);
    expect([await statusOf('snippet'), await statusOf('legacy')]).toEqual([[], []]);
    api.apply(lbService('203.0.113.20', '2001:db8::20'));
    await waitFor('the new addresses', async () => (await statusOf('shop')).length === 2, 10_000, 50);
    expect(await statusOf('shop')).toEqual([{ ip: '2001:db8::20' }, { ip: '203.0.113.20' }]);
    await waitFor('the log line of the second write', () => updates(gw).length >= 2, 5000, 20);
    expect(updates(gw)).toEqual(['default/shop', 'default/shop']);
    const metrics = await gw.metrics();
    expect(metrics).toMatch(/nginx_ingress_controller_leader_election_status\{name="netplane-ingress-leader"\} 1/);
    // Its requests to the API server, under client-go's names: the lists and watches, and the status patches.
    expect(metrics).toMatch(/^rest_client_requests_total\{code="200",method="GET",host="127\.0\.0\.1:\d+"\} [1-9]/m);
    expect(metrics).toMatch(/^rest_client_requests_total\{code="200",method="PATCH",host="127\.0\.0\.1:\d+"\} [1-9]/m);
    expect(metrics).toMatch(/^rest_client_request_duration_seconds_count\{verb="PATCH",host="127\.0\.0\.1:\d+"\} [1-9]/m);
  });

  it('lets one of two gateways write; when it stops, the other takes over and the status stays', async () => {
    const [first] = gateways as [GatewayProcess];
    const second = await start();
    api.apply(lbService('203.0.113.30'));
    await waitFor('the new address', async () => JSON.stringify(await statusOf('shop')) === JSON.stringify([{ ip: '203.0.113.30' }]), 10_000, 50);
    await new Promise((r) => setTimeout(r, 300));
    expect([updates(first).length, updates(second)]).toEqual([3, []]);
    expect(await second.metrics()).toMatch(/nginx_ingress_controller_leader_election_status\{name="netplane-ingress-leader"\} 0/);

    expect(await first.stop()).toBe(0);
    expect(logLines(first.output).some((l) => l.msg === 'another replica took the leader Lease over; Ingress status left as it is')).toBe(true);
    expect(await statusOf('shop')).toEqual([{ ip: '203.0.113.30' }]);
    api.apply(lbService('203.0.113.31'));
    await waitFor('the second gateway to write', async () => JSON.stringify(await statusOf('shop')) === JSON.stringify([{ ip: '203.0.113.31' }]), 10_000, 50);
    // Its log line is written once the API server has answered the write: it may come a moment after the status.
    await waitFor('the log line of the write', () => updates(second).length > 0, 5000, 20);
    expect(updates(second)).toEqual(['default/shop']);
  });

  it('empties the status when the last gateway stops', async () => {
    const last = gateways[1]!;
    expect(await last.stop()).toBe(0);
    expect(await statusOf('shop')).toEqual([]);
    expect(logLines(last.output).some((l) => l.msg === 'no other replica took over: emptied the status of served Ingresses' && l.ingresses === 1)).toBe(true);
  });

  it('writes nothing in manifests mode, and says so once', async () => {
    const gw = new GatewayProcess();
    gateways.push(gw);
    gw.write('cluster.yaml', `${ingressClassYaml}---\n${serviceYaml('web', [web])}${ingressYaml({ name: 'shop', host: 'shop.test', paths: [['Prefix', '/', 'web']] })}`);
    await gw.start(['--publish-status-address', '203.0.113.10'], { host: 'shop.test' });
    expect(logLines(gw.output).filter((l) => l.msg === 'Ingress status is not written: the cluster is read from manifests, not the Kubernetes API')).toHaveLength(1);
  });

  it('refuses --publish-service with --publish-status-address, and a bad address', () => {
    // An existing manifests directory: the source is checked before these flags.
    const dir = fileURLToPath(new URL('../../../examples/quickstart', import.meta.url));
    const run = (...args: string[]) => spawnSync(process.execPath, [bin, 'ingress', '--manifests', dir, ...args], { encoding: 'utf8', timeout: 15_000 });
    const both = run('--publish-service', 'ops/gw', '--publish-status-address', '203.0.113.10');
    expect([both.status, both.stderr.trim()]).toEqual([2, 'netplane ingress: give --publish-service or --publish-status-address, not both']);
    const bad = run('--publish-status-address', '203.0.113.10,http://x');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('--publish-status-address "203.0.113.10,http://x": "http://x" is neither an IP address nor a DNS name');
  });
});
