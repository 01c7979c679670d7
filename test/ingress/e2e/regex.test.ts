// ingress-nginx's regex paths and capture rewrites through `netplane ingress` run as a process, with echo backends
// that say which path they were asked for: the rewrite example of ingress-nginx's documentation, the older
// `/something/?(.*)` spelling, an API under `/api/(.*)` beside a plain frontend Ingress of the same host, the
// Kubernetes documentation's `/$1` example, and a regex netplane does not read taking its Ingress out of service.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EchoBackend, GatewayProcess, echoOf, ingressClassYaml, ingressYaml, serviceYaml } from './harness.ts';

const ngx = 'nginx.ingress.kubernetes.io/';

describe('netplane ingress serves ingress-nginx regex paths', () => {
  const api = new EchoBackend('api');
  const web = new EchoBackend('web');
  const gw = new GatewayProcess();

  beforeAll(async () => {
    await Promise.all([api.start(), web.start()]);
    gw.write(
      'all.yaml',
      [
        ingressClassYaml,
        serviceYaml('api', [api]),
        serviceYaml('web', [web]),
        ingressYaml({ name: 'rewrite', host: 'rewrite.bar.com', paths: [['Prefix', '/something(/|$)(.*)', 'api']], annotations: { [`${ngx}use-regex`]: 'true', [`${ngx}rewrite-target`]: '/$2' } }),
        ingressYaml({ name: 'older', host: 'older.test', paths: [['ImplementationSpecific', '/something/?(.*)', 'api']], annotations: { [`${ngx}rewrite-target`]: '/$1' } }),
        ingressYaml({ name: 'shop-api', host: 'shop.test', paths: [['ImplementationSpecific', '/api/(.*)', 'api']], annotations: { [`${ngx}use-regex`]: 'true', [`${ngx}rewrite-target`]: '/$1' } }),
        ingressYaml({ name: 'shop-web', host: 'shop.test', paths: [['Prefix', '/', 'web'], ['Exact', '/status', 'web']] }),
        ingressYaml({ name: 'hello', host: 'hello-world.info', paths: [['Prefix', '/', 'web'], ['Prefix', '/v2', 'api']], annotations: { [`${ngx}rewrite-target`]: '/$1' } }),
        ingressYaml({ name: 'unread', host: 'unread.test', paths: [['ImplementationSpecific', '/foo/bar/[A-Z0-9]{3}', 'api']], annotations: { [`${ngx}use-regex`]: 'true' } }),
      ].join('---\n'),
    );
    await gw.start([], { host: 'shop.test' });
  }, 30_000);

  afterAll(async () => {
    await gw.stop();
    await Promise.all([api.stop(), web.stop()]);
  });

  // [host, request, backend, the path and query it was asked for] — 404 when no route takes the request, 400 for a
  // path nginx refuses (one that climbs above the root).
  const cases: [string, string, 'api' | 'web' | 400 | 404, string?][] = [
    // docs/examples/rewrite: /something → /, /something/ → /, /something/new → /new.
    ['rewrite.bar.com', '/something', 'api', '/'],
    ['rewrite.bar.com', '/something/', 'api', '/'],
    ['rewrite.bar.com', '/something/new', 'api', '/new'],
    ['rewrite.bar.com', '/something/new/deeper?q=1&r', 'api', '/new/deeper?q=1&r'],
    ['rewrite.bar.com', '/SomeThing/Mixed', 'api', '/Mixed'],
    ['rewrite.bar.com', '/something/a%2Fb%20c', 'api', '/a/b%20c'],
    ['rewrite.bar.com', '/somethingelse', 404],
    ['rewrite.bar.com', '/something/..%2Fsecret', 404],
    ['rewrite.bar.com', '/something/..%2F..%2Fsecret', 400],
    ['older.test', '/something', 'api', '/'],
    ['older.test', '/something/new', 'api', '/new'],
    // One host, a regex Ingress and a plain one: the plain one keeps Kubernetes matching.
    ['shop.test', '/api/users?id=7', 'api', '/users?id=7'],
    ['shop.test', '/API/users', 'api', '/users'],
    ['shop.test', '/apix', 'web', '/apix'],
    ['shop.test', '/', 'web', '/'],
    ['shop.test', '/status', 'web', '/status'],
    // The Kubernetes documentation's example: `/$1` without groups sends `/`.
    ['hello-world.info', '/v2/anything', 'api', '/'],
    ['hello-world.info', '/other', 'web', '/'],
    ['unread.test', '/foo/bar/ABC', 404],
  ];
  it.each(cases)('%s%s -> %s %s', async (host, path, backend, url) => {
    const r = await gw.get(host, path);
    if (backend === 400 || backend === 404) {
      expect(r.status).toBe(backend);
      return;
    }
    expect(r.status).toBe(200);
    expect(echoOf(r)).toMatchObject({ backend, url });
  });

  it('takes an Ingress whose regex it does not read out of service, naming the path', async () => {
    expect(gw.output).toMatch(/default\/unread.*\/foo\/bar\/\[A-Z0-9\]\{3\}.*does not read/);
    expect(await gw.metrics()).toMatch(/netplane_ingress_problems\{namespace="default",ingress="unread",served="no"\} 1/);
  });
});
