// The series ingress-nginx's Grafana dashboard and alerts read besides the request counts: request and response sizes
// (HTTP/1, counted off the connection: two requests on one kept-alive connection each get their own bytes), the
// reload counters, the nginx process gauges (here the gateway's own process), and the expiry of each TLS host's
// certificate (a host whose Secret does not name it is served the default, and left out). promtool reads the page,
// finding nothing but the counters that keep ingress-nginx's names without _total.
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../helpers/wait.ts';
import { makeCert, type Pems } from '../tls/pki.ts';
import { EchoBackend, GatewayProcess, ingressClassYaml, ingressYaml, serviceYaml, tlsSecretYaml } from './harness.ts';

/** The value of one sample, by its name and label values (all given labels must match); undefined when absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}

/** Sends `requests` (whole HTTP/1.1 requests) one after the other on one connection; resolves with the bytes of each response. */
async function exchange(port: number, requests: string[]): Promise<number[]> {
  const socket = connect(port, '127.0.0.1');
  const sizes: number[] = [];
  let buffered = Buffer.alloc(0);
  const next = () =>
    new Promise<number>((resolve, reject) => {
      const onData = (d: Buffer) => {
        buffered = Buffer.concat([buffered, d]);
        const end = buffered.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buffered.subarray(0, end).toString('latin1');
        const length = /content-length: (\d+)/i.exec(head)?.[1];
        // A chunked body ends with its last chunk, of size 0 (no trailers here).
        const size = length !== undefined ? end + 4 + Number(length) : buffered.indexOf('\r\n0\r\n\r\n', end) + 7;
        if (size < end + 4 || buffered.length < size) return;
        socket.off('data', onData);
        buffered = buffered.subarray(size);
        resolve(size);
      };
      socket.on('data', onData);
      socket.once('error', reject);
    });
  try {
    for (const r of requests) {
      socket.write(r);
      sizes.push(await next());
    }
  } finally {
    socket.destroy();
  }
  return sizes;
}

describe('the metrics of ingress-nginx’s dashboard', () => {
  const web = new EchoBackend('web');
  const gw = new GatewayProcess();
  let cert: Pems;

  beforeAll(async () => {
    await web.start();
    cert = await makeCert('web.test', ['web.test']);
    gw.write(
      'all.yaml',
      [
        ingressClassYaml,
        serviceYaml('web', [web]),
        ingressYaml({ name: 'web', host: 'web.test', paths: [['Prefix', '/', 'web']], tlsSecret: 'web-tls' }),
        // A Secret whose certificate names another host: other.test is served the default certificate.
        ingressYaml({ name: 'other', host: 'other.test', paths: [['Prefix', '/', 'web']], tlsSecret: 'web-tls' }),
        tlsSecretYaml('web-tls', cert),
        ingressYaml({ name: 'plain', host: 'plain.test', paths: [['Prefix', '/', 'web']] }),
      ].join('---\n'),
    );
    await gw.start([], { host: 'web.test' });
  }, 30_000);

  afterAll(async () => {
    await gw.stop();
    await web.stop();
  });

  it('counts each request’s bytes received and each response’s bytes sent, two on one connection apart', async () => {
    const first = 'GET /one HTTP/1.1\r\nHost: plain.test\r\n\r\n';
    const second = 'POST /two HTTP/1.1\r\nHost: plain.test\r\nContent-Length: 5\r\n\r\nhello';
    const responses = await exchange(gw.http, [first, second]);
    const m = await gw.metrics();
    const get = { ingress: 'plain', method: 'GET', status: '200' };
    const post = { ingress: 'plain', method: 'POST', status: '200' };
    expect([sample(m, 'nginx_ingress_controller_request_size_sum', get), sample(m, 'nginx_ingress_controller_request_size_count', get)]).toEqual([first.length, 1]);
    expect([sample(m, 'nginx_ingress_controller_request_size_sum', post), sample(m, 'nginx_ingress_controller_request_size_count', post)]).toEqual([second.length, 1]);
    expect(sample(m, 'nginx_ingress_controller_response_size_sum', get)).toBe(responses[0]);
    expect(sample(m, 'nginx_ingress_controller_response_size_sum', post)).toBe(responses[1]);
    expect(sample(m, 'nginx_ingress_controller_request_size_bucket', { ...post, le: '100' })).toBe(1);
  });

  it('counts route table updates as ingress-nginx counts reloads', async () => {
    const m = await gw.metrics();
    expect(sample(m, 'nginx_ingress_controller_success')).toBeGreaterThanOrEqual(1);
    expect(sample(m, 'nginx_ingress_controller_errors')).toBe(0);
  });

  it('reports its own process as the nginx process gauges', async () => {
    const m = await gw.metrics();
    expect(sample(m, 'nginx_ingress_controller_nginx_process_num_procs')).toBe(1);
    expect(sample(m, 'nginx_ingress_controller_nginx_process_resident_memory_bytes')).toBeGreaterThan(20 << 20);
    expect(sample(m, 'nginx_ingress_controller_nginx_process_cpu_seconds_total')).toBeGreaterThan(0);
    const started = sample(m, 'nginx_ingress_controller_nginx_process_oldest_start_time_seconds')!;
    expect(Date.now() / 1000 - started).toBeGreaterThanOrEqual(0);
    expect(Date.now() / 1000 - started).toBeLessThan(120);
  });

  it('gives the expiry of each TLS host’s certificate, and none for a host served the default', async () => {
    const m = await gw.metrics();
    const notAfter = Math.floor(new Date(new X509Certificate(cert.cert).validTo).getTime() / 1000);
    expect(sample(m, 'nginx_ingress_controller_ssl_expire_time_seconds', { host: 'web.test', class: 'netplane' })).toBe(notAfter);
    expect(sample(m, 'nginx_ingress_controller_ssl_expire_time_seconds', { host: 'other.test' })).toBeUndefined();
  });

  it('labels nothing with the controller outside a pod', async () => {
    expect(await gw.metrics()).not.toContain('controller_pod=');
  });

  it('passes promtool but for the counters that keep ingress-nginx’s names without _total', async () => {
    const text = await gw.metrics();
    const checked = await new Promise<string>((resolve) => {
      const child = execFile('promtool', ['check', 'metrics'], { encoding: 'utf8' }, (_e, stdout, stderr) => resolve(`${stdout}${stderr}`));
      child.stdin!.end(text);
    });
    const problems = checked.split('\n').filter((l) => l.trim() !== '');
    const names = problems.map((l) => /^(\S+?)(?::| )/.exec(l)?.[1]);
    expect(new Set(names)).toEqual(new Set(['nginx_ingress_controller_requests', 'nginx_ingress_controller_success', 'nginx_ingress_controller_errors']));
    for (const l of problems) expect(l).toMatch(/counter metrics should have "_total" suffix/);
  });
});

// In a pod ($POD_NAME and $POD_NAMESPACE, as the chart and deploy/ set them), every series carries ingress-nginx's
// controller labels, and nginx_ingress_controller_config_hash, whose labels the dashboard's selectors list, is the
// same on replicas that serve the same Ingresses and moves when one changes.
describe('ingress-nginx’s controller labels and configuration hash', () => {
  const web = new EchoBackend('web');
  const replicas = [new GatewayProcess(), new GatewayProcess()] as const;
  const manifests = (path: string) => [ingressClassYaml, serviceYaml('web', [web]), ingressYaml({ name: 'web', host: 'web.test', paths: [['Prefix', path, 'web']] })].join('---\n');
  const hashOf = async (gw: GatewayProcess, pod: string) =>
    sample(await gw.metrics(), 'nginx_ingress_controller_config_hash', { controller_namespace: 'ingress-nginx', controller_class: 'netplane.io/ingress', controller_pod: pod });

  beforeAll(async () => {
    await web.start();
    await Promise.all(
      replicas.map((gw, i) => {
        gw.env = { POD_NAME: `gw-${i}`, POD_NAMESPACE: 'ingress-nginx' };
        gw.write('all.yaml', manifests('/'));
        return gw.start([], { host: 'web.test' });
      }),
    );
  }, 30_000);

  afterAll(async () => {
    await Promise.all(replicas.map((gw) => gw.stop()));
    await web.stop();
  });

  it('labels every series with the pod, its namespace and the controller class', async () => {
    await replicas[0].get('web.test', '/');
    const m = await replicas[0].metrics();
    expect(sample(m, 'nginx_ingress_controller_requests', { ingress: 'web', controller_pod: 'gw-0', controller_namespace: 'ingress-nginx', controller_class: 'netplane.io/ingress' })).toBeGreaterThanOrEqual(1);
    expect(sample(m, 'nginx_ingress_controller_config_last_reload_successful', { controller_pod: 'gw-0' })).toBe(1);
  });

  it('gives replicas serving the same Ingresses the same hash, and moves it when one changes', async () => {
    const [first, second] = [await hashOf(replicas[0], 'gw-0'), await hashOf(replicas[1], 'gw-1')];
    expect(first).toBeGreaterThan(0);
    expect(second).toBe(first);
    replicas[0].write('all.yaml', manifests('/v2'));
    await waitFor('the new hash', async () => (await hashOf(replicas[0], 'gw-0')) !== first, 10_000, 50);
    replicas[1].write('all.yaml', manifests('/v2'));
    await waitFor('the second replica on the same version', async () => (await hashOf(replicas[1], 'gw-1')) === (await hashOf(replicas[0], 'gw-0')), 10_000, 50);
  });
});
