// Routing over real HTTP through `netplane ingress`: the Kubernetes documentation's path-matching examples and the
// host rules, as a table; forwarded headers; rewrite; canary; default backend; metrics; a bad annotation.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../helpers/wait.ts';
import { EchoBackend, GatewayProcess, echoOf, ingressClassYaml, ingressYaml, serviceYaml } from './harness.ts';

type Rule = [pathType: 'Prefix' | 'Exact' | 'ImplementationSpecific', path: string, service: 'a' | 'b'];

// [rules, host, request path, expected backend or 404] — rows from https://kubernetes.io/docs/concepts/services-networking/ingress/#examples
const pathCases: Array<[Rule[], string, 'a' | 'b' | 404]> = [
  [[['Prefix', '/', 'a']], '/anything/at/all', 'a'],
  [[['Exact', '/foo', 'a']], '/foo', 'a'],
  [[['Exact', '/foo', 'a']], '/bar', 404],
  [[['Exact', '/foo', 'a']], '/foo/', 404],
  [[['Exact', '/foo/', 'a']], '/foo', 404],
  [[['Prefix', '/foo', 'a']], '/foo', 'a'],
  [[['Prefix', '/foo', 'a']], '/foo/', 'a'],
  [[['Prefix', '/aaa/bbb/', 'a']], '/aaa/bbb', 'a'],
  [[['Prefix', '/aaa/bbb/', 'a']], '/aaa/bbb/', 'a'],
  [[['Prefix', '/aaa/bbb', 'a']], '/aaa/bbb/', 'a'],
  [[['Prefix', '/aaa/bbb', 'a']], '/aaa/bbb/ccc', 'a'],
  [[['Prefix', '/aaa/bbb', 'a']], '/aaa/bbbxyz', 404],
  [[['Prefix', '/', 'a'], ['Prefix', '/aaa', 'b']], '/aaa/ccc', 'b'],
  [[['Prefix', '/aaa', 'a'], ['Prefix', '/aaa/bbb', 'b']], '/aaa/bbb', 'b'],
  [[['Prefix', '/', 'a'], ['Prefix', '/aaa', 'b']], '/ccc', 'a'],
  [[['Prefix', '/aaa', 'a']], '/ccc', 404],
  [[['Prefix', '/foo', 'a'], ['Exact', '/foo', 'b']], '/foo', 'b'],
  [[['ImplementationSpecific', '/foo', 'a']], '/foo/bar', 'a'],
];

function ingress(name: string, host: string | undefined, rules: Rule[], annotations: Record<string, string> = {}): string {
  return ingressYaml({ name, host, paths: rules.map(([t, p, svc]) => [t, p, `svc-${svc}`]), annotations });
}

describe('netplane ingress routing over HTTP', () => {
  const a = new EchoBackend('a');
  const b = new EchoBackend('b');
  const gw = new GatewayProcess();

  beforeAll(async () => {
    await Promise.all([a.start(), b.start()]);
    gw.write('services.yaml', `${serviceYaml('svc-a', [a])}---\n${serviceYaml('svc-b', [b])}---\n${ingressClassYaml}`);
    const ingresses = pathCases.map(([rules], i) => ingress(`case${i}`, `case${i}.test`, rules));
    ingresses.push(ingress('exact-host', 'foo.bar.com', [['Prefix', '/', 'a']]));
    ingresses.push(ingress('wildcard-host', '*.foo.com', [['Prefix', '/', 'b']]));
    ingresses.push(ingress('rewrite', 'rewrite.test', [['Prefix', '/app', 'a']], { 'nginx.ingress.kubernetes.io/rewrite-target': '/' }));
    ingresses.push(ingress('main', 'canary.test', [['Prefix', '/', 'a']]));
    ingresses.push(ingress('main-canary', 'canary.test', [['Prefix', '/', 'b']], { 'nginx.ingress.kubernetes.io/canary': 'true', 'nginx.ingress.kubernetes.io/canary-by-header': 'X-Canary' }));
    ingresses.push(ingress('bad', 'bad.test', [['Prefix', '/', 'a']], { 'nginx.ingress.kubernetes.io/backend-protocol': 'FCGI' }));
    gw.write('ingresses.yaml', ingresses.join(''));
    await gw.start(['--access-log', 'on'], { host: 'case0.test' });
  }, 30_000);

  afterAll(async () => {
    await gw.stop();
    await Promise.all([a.stop(), b.stop()]);
  });

  it.each(pathCases.map(([rules, path, want], i) => [i, rules.map((r) => r.join(' ')).join(', '), path, want] as const))(
    'case %i: rules [%s], request %s -> %s',
    async (i, _rules, path, want) => {
      const r = await gw.get(`case${i}.test`, path);
      if (want === 404) expect(r.status).toBe(404);
      else {
        expect(r.status).toBe(200);
        expect(echoOf(r).backend).toBe(want);
      }
    },
  );

  it.each([
    ['foo.bar.com', 'a'],
    ['FOO.Bar.com:8080', 'a'],
    ['bar.foo.com', 'b'],
    ['BAR.foo.com', 'b'],
    ['baz.bar.foo.com', 404],
    ['foo.com', 404],
    ['unknown.test', 404],
  ] as const)('host %s -> %s', async (host, want) => {
    const r = await gw.get(host, '/');
    if (want === 404) expect(r.status).toBe(404);
    else expect(echoOf(r).backend).toBe(want);
  });

  it('sends X-Forwarded-*, X-Real-IP and a request id upstream, and replaces a forged X-Forwarded-For', async () => {
    const e = echoOf(await gw.get('foo.bar.com', '/x?y=1', { headers: { 'x-forwarded-for': '6.6.6.6' } }));
    expect(e.url).toBe('/x?y=1');
    expect(e.headers.host).toBe('foo.bar.com');
    expect(e.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(e.headers['x-real-ip']).toBe('127.0.0.1');
    expect(e.headers['x-forwarded-proto']).toBe('http');
    expect(e.headers['x-forwarded-host']).toBe('foo.bar.com');
    expect(e.headers['x-request-id']).toMatch(/^[0-9a-f]{32}$/);
  });

  it('matches and forwards the normalised path, so dot segments cannot step around a route', async () => {
    expect((await gw.get('case2.test', '/bar/../foo')).status).toBe(200);
    expect(echoOf(await gw.get('case2.test', '/bar/%2e%2e/foo')).url).toBe('/foo');
  });

  it('sends every path of the rule as the rewrite-target, the query kept, as ingress-nginx does', async () => {
    expect(echoOf(await gw.get('rewrite.test', '/app/page?q=1')).url).toBe('/?q=1');
    expect(echoOf(await gw.get('rewrite.test', '/app')).url).toBe('/');
  });

  it('sends requests with the canary header to the canary backend, the rest to the main one', async () => {
    expect(echoOf(await gw.get('canary.test', '/')).backend).toBe('a');
    expect(echoOf(await gw.get('canary.test', '/', { headers: { 'x-canary': 'always' } })).backend).toBe('b');
    expect(echoOf(await gw.get('canary.test', '/', { headers: { 'x-canary': 'never' } })).backend).toBe('a');
  });

  it('does not serve an Ingress whose annotation cannot be honoured, says why, and serves the rest', async () => {
    expect((await gw.get('bad.test', '/')).status).toBe(404);
    expect(gw.output).toMatch(/default\/bad.*backend-protocol/);
    expect(await gw.metrics()).toMatch(/netplane_ingress_problems\{namespace="default",ingress="bad",served="no"\} 1/);
    expect((await gw.get('case0.test', '/')).status).toBe(200);
  });

  it('counts requests by ingress, service, status and method, and logs one JSON line per request', async () => {
    await gw.get('foo.bar.com', '/counted');
    const m = await gw.metrics();
    expect(m).toMatch(/nginx_ingress_controller_requests\{ingress="exact-host",namespace="default",service="svc-a",status="200",method="GET",canary=""\} \d+/);
    expect(m).toMatch(/nginx_ingress_controller_request_duration_seconds_count\{ingress="exact-host"/);
    // The access line is written when the response has ended, which may be after the client has read it.
    const line = () => gw.output.split('\n').find((l) => l.includes('"/counted"'));
    await waitFor('the access log line', () => line() !== undefined, 5000, 20);
    expect(JSON.parse(line()!)).toMatchObject({ access: true, method: 'GET', host: 'foo.bar.com', path: '/counted', status: 200, ingress: 'default/exact-host', backend: 'default/svc-a:80' });
  });

  it('routes unmatched requests to a default backend once one is added, without a restart', async () => {
    gw.write('default.yaml', `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: { name: fallback, namespace: default }
spec:
  ingressClassName: netplane
  defaultBackend: { service: { name: svc-b, port: { number: 80 } } }
`);
    await waitFor('the default backend', async () => (await gw.get('nowhere.test', '/')).status === 200, 5000, 50);
    expect(echoOf(await gw.get('nowhere.test', '/')).backend).toBe('b');
  });
});
