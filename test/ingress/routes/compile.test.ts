// compileRoutes as a whole: which Ingresses are served (class), what a bad Ingress costs (problems, last good
// versions), conflicts between Ingresses, canaries, and the Secrets, backends and sizes of the table.
import { describe, expect, it } from 'vitest';
import type { Ingress } from '../../../cluster/model/ingress.ts';
import { backend, compile, ingress, ingressClass, rule, show } from './fixtures.ts';

const web = (name: string, o: Parameters<typeof ingress>[1] = {}) => ingress(name, { rules: [rule(`${name}.com`, `Prefix / ${name}:80`)], ...o });

describe('class selection', () => {
  // [spec.ingressClassName, kubernetes.io/ingress.class annotation, classes present, served]
  const cases: [string, string | null, string | undefined, 'default' | 'not default' | 'none', boolean][] = [
    ['ingressClassName netplane', 'netplane', undefined, 'none', true],
    ['ingressClassName nginx', 'nginx', undefined, 'default', false],
    ['ingressClassName wins over the annotation', 'nginx', 'netplane', 'default', false],
    ['annotation netplane', null, 'netplane', 'none', true],
    ['annotation nginx', null, 'nginx', 'default', false],
    ['no class, netplane is the default class', null, undefined, 'default', true],
    ['no class, netplane is a class but not the default', null, undefined, 'not default', false],
    ['no class, no IngressClass', null, undefined, 'none', false],
  ];
  it.each(cases)('%s', (_name, className, annotation, classes, served) => {
    const i = web('a', { className, annotations: annotation === undefined ? {} : { 'kubernetes.io/ingress.class': annotation } });
    const present = classes === 'none' ? [ingressClass('nginx', true)] : [ingressClass('netplane', classes === 'default'), ingressClass('nginx', false)];
    const { table, served: s } = compile([i], { classes: present });
    expect([s.has('default/a'), table.size, table.problems]).toEqual([served, served ? 1 : 0, []]);
  });

  it('serves another class name when told (--ingress-class)', () => {
    const { served } = compile([web('a', { className: 'edge' }), web('b')], { className: 'edge' });
    expect([...served.keys()]).toEqual(['default/a']);
  });

  it('serves Ingresses without a class when told to whatever the default class (--watch-ingress-without-class), still not those of another class', () => {
    const ingresses = [web('a', { className: null }), web('b', { className: null, annotations: { 'kubernetes.io/ingress.class': 'nginx' } }), web('c', { className: 'nginx' })];
    const { served } = compile(ingresses, { classes: [ingressClass('nginx', true), ingressClass('netplane', false)], withoutClass: true });
    expect([...served.keys()]).toEqual(['default/a']);
  });

  it('serves the IngressClasses of a controller (--controller-class), and class-less Ingresses when one of them is the default', () => {
    const nginxClass = (name: string, isDefault: boolean) => ({ ...ingressClass(name, isDefault), spec: { controller: 'k8s.io/ingress-nginx' } });
    const ingresses = [web('a', { className: 'nginx' }), web('b', { className: 'nginx-internal' }), web('c', { className: 'traefik' }), web('d', { className: null }), web('e', { className: 'netplane' })];
    const classes = [nginxClass('nginx', true), nginxClass('nginx-internal', false), { ...ingressClass('traefik', false), spec: { controller: 'traefik.io/ingress-controller' } }];
    expect([...compile(ingresses, { classes, controllerClass: 'k8s.io/ingress-nginx' }).served.keys()].sort()).toEqual(['default/a', 'default/b', 'default/d', 'default/e']);
    expect([...compile(ingresses, { classes }).served.keys()]).toEqual(['default/e']);
  });

  it('ignores a default class of another name', () => {
    const { served } = compile([web('a', { className: null })], { classes: [ingressClass('nginx', true)] });
    expect(served.size).toBe(0);
  });
});

describe('spec problems', () => {
  // [what, Ingress options, a word the reason names]
  const cases: [string, Parameters<typeof ingress>[1], string][] = [
    ['bad host', { rules: [rule('bad_host.com', 'Prefix / a:80')] }, '"bad_host.com"'],
    ['IP address host', { rules: [rule('10.0.0.1', 'Prefix / a:80')] }, '"10.0.0.1"'],
    ['wildcard not leading', { rules: [rule('a.*.com', 'Prefix / a:80')] }, '"a.*.com"'],
    ['bare wildcard', { rules: [rule('*', 'Prefix / a:80')] }, '"*"'],
    ['host with port', { rules: [rule('a.com:80', 'Prefix / a:80')] }, '"a.com:80"'],
    ['relative path', { rules: [rule('a.com', 'Prefix api a:80')] }, '"api"'],
    ['regex path', { rules: [rule('a.com', 'ImplementationSpecific /api(/|$)(.*) a:80')] }, '"/api(/|$)(.*)"'],
    ['path with //', { rules: [rule('a.com', 'Prefix /a//b a:80')] }, '"/a//b"'],
    ['path with /../', { rules: [rule('a.com', 'Exact /a/../b a:80')] }, '"/a/../b"'],
    ['path with %2F', { rules: [rule('a.com', 'Prefix /a%2Fb a:80')] }, '"/a%2Fb"'],
    ['bad TLS host', { tls: [{ hosts: ['Bad Host'], secretName: 's' }] }, '"Bad Host"'],
    ['bad TLS secret name', { tls: [{ hosts: ['a.com'], secretName: 'Bad_Name' }] }, '"Bad_Name"'],
    ['bad service name', { rules: [rule('a.com', 'Prefix / Web.Svc:80')] }, '"Web.Svc"'],
    ['resource backend', { rules: [{ host: 'a.com', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { resource: { kind: 'StorageBucket', name: 'assets' } } }] } }] }, 'StorageBucket'],
    ['resource default backend', { defaultBackend: { resource: { apiGroup: 'k8s.example.com', kind: 'StorageBucket', name: 'b' } } }, 'defaultBackend'],
  ];
  it.each(cases)('%s: the Ingress is not served, the others are', (_name, o, named) => {
    const { table, served } = compile([ingress('bad', o), web('good')]);
    expect(table.problems).toHaveLength(1);
    expect(table.problems[0]).toMatchObject({ ingress: 'default/bad', keptLastGood: false });
    expect(table.problems[0]!.reason).toContain(named);
    expect([...served.keys()]).toEqual(['default/good']);
    expect(show(table.match('good.com', '/'))).toBe('good.com / Prefix -> default/good:80');
    expect(table.ingresses.has('default/bad')).toBe(false);
  });
});

describe('last good versions', () => {
  const good = web('a', { annotations: { 'netplane.io/limit-rps': '10' } });
  const bad = web('a', { annotations: { 'netplane.io/limit-rps': 'ten' } });

  it('serves the last good version when the current one cannot be honoured', () => {
    const { table, served } = compile([bad, web('b')], { lastGood: new Map([['default/a', good]]) });
    expect(table.problems).toEqual([{ ingress: 'default/a', reason: expect.stringContaining('"ten"'), keptLastGood: true }]);
    expect(served.get('default/a')).toBe(good);
    expect(table.ingresses.get('default/a')?.rateLimit?.rps).toBe(10);
    expect(show(table.match('a.com', '/'))).toBe('a.com / Prefix -> default/a:80');
  });

  it('drops the Ingress when the last good version does not compile either, or there is none', () => {
    for (const lastGood of [new Map<string, Ingress>(), new Map([['default/a', bad]]), new Map([['default/a', web('a', { annotations: { 'netplane.io/nope': '1' } })]])]) {
      const { table, served } = compile([bad], { lastGood });
      expect([table.problems.map((p) => p.keptLastGood), served.size, table.size]).toEqual([[false], 0, 0]);
    }
  });

  it('serves the current version when it compiles, whatever lastGood holds; served is the next lastGood', () => {
    const current = web('a', { annotations: { 'netplane.io/limit-rps': '20' } });
    const first = compile([current, web('b')], { lastGood: new Map([['default/a', good]]) });
    expect([first.served.get('default/a'), first.table.problems]).toEqual([current, []]);
    const second = compile([bad, web('b')], { lastGood: first.served });
    expect(second.table.ingresses.get('default/a')?.rateLimit?.rps).toBe(20);
    expect(second.served.get('default/a')).toBe(current);
  });

  it('does not serve a last good version of an Ingress that is gone or left the class', () => {
    const lastGood = new Map([['default/a', good]]);
    expect(compile([], { lastGood }).served.size).toBe(0);
    expect(compile([web('a', { className: 'nginx' })], { lastGood }).served.size).toBe(0);
  });
});

describe('conflicting rules', () => {
  it('keeps the oldest Ingress, whatever the names; the later one loses only that rule and is partly served', () => {
    const { table, served } = compile([
      ingress('a-new', { namespace: 'a', created: '2024-01-01T00:00:00Z', rules: [rule('a.com', 'Prefix /api later:80', 'Prefix /other later:81')] }),
      ingress('z-old', { namespace: 'z', created: '2020-01-01T00:00:00Z', rules: [rule('a.com', 'Prefix /api first:80')] }),
    ]);
    expect(show(table.match('a.com', '/api/x'))).toBe('a.com /api Prefix -> z/first:80');
    expect(show(table.match('a.com', '/other'))).toBe('a.com /other Prefix -> a/later:81');
    expect(table.problems).toEqual([{ ingress: 'a/a-new', reason: expect.stringContaining('Ingress z/z-old, which is older (created 2020-01-01T00:00:00Z; this one 2024-01-01T00:00:00Z)'), keptLastGood: false, partly: true, conflict: 'z/z-old' }]);
    expect(table.problems[0]!.reason).toContain('"/api"');
    expect([...served.keys()]).toEqual(['z/z-old', 'a/a-new']);
    expect(table.size).toBe(2);
    expect(table.backends.has('a/later:80')).toBe(false);
  });

  // As ingress-nginx's sortIngressSlice: at equal creationTimestamps (or none, as in manifests) the greater
  // namespace/name comes first.
  it.each([
    ['equal timestamps', '2024-01-01T00:00:00Z', 'both were created at 2024-01-01T00:00:00Z'],
    ['no timestamps', undefined, 'neither has a creationTimestamp'],
  ])('at %s keeps the greater namespace/name, and says why', (_what, created, why) => {
    const at = created === undefined ? {} : { created };
    const { table } = compile([ingress('a', { ...at, rules: [rule('h.com', 'Prefix /x one:80')] }), ingress('b', { ...at, rules: [rule('h.com', 'Prefix /x two:80')] })]);
    expect(show(table.match('h.com', '/x'))).toBe('h.com /x Prefix -> default/two:80');
    expect(table.problems.map((p) => [p.ingress, p.partly])).toEqual([['default/a', undefined]]);
    expect(table.problems[0]!.reason).toContain(`Ingress default/b, which comes first: ${why}`);
  });

  it('reports an Ingress that lost its only rule as not served, not partly', () => {
    const { table } = compile([ingress('new', { created: '2024-01-01T00:00:00Z', rules: [rule('h.com', 'Prefix /x one:80')] }), ingress('old', { created: '2020-01-01T00:00:00Z', rules: [rule('h.com', 'Prefix /x two:80')] })]);
    expect(table.problems).toEqual([{ ingress: 'default/new', reason: expect.stringContaining('which is older'), keptLastGood: false, conflict: 'default/old' }]);
  });

  // [first, second, conflict?]
  const cases: [string, string, string, boolean][] = [
    ['same host, path and type', 'Prefix /x', 'Prefix /x', true],
    ['ImplementationSpecific is Prefix', 'Prefix /x', 'ImplementationSpecific /x', true],
    ['trailing slash of a Prefix', 'Prefix /x', 'Prefix /x/', true],
    ['Exact and Prefix of one path', 'Prefix /x', 'Exact /x', false],
    ['Exact with and without slash', 'Exact /x', 'Exact /x/', false],
  ];
  it.each(cases)('%s', (_name, a, b, conflict) => {
    const { table } = compile([ingress('a', { rules: [rule('h.com', `${a} one:80`)] }), ingress('b', { rules: [rule('h.com', `${b} two:80`)] })]);
    expect([table.problems.length, table.size]).toEqual(conflict ? [1, 1] : [0, 2]);
  });

  it('reports a duplicate rule within one Ingress', () => {
    const { table } = compile([ingress('a', { rules: [rule('h.com', 'Prefix /x one:80'), rule('H.com', 'Prefix /x two:80')] })]);
    expect([table.size, table.problems.length, show(table.match('h.com', '/x'))]).toEqual([1, 1, 'h.com /x Prefix -> default/one:80']);
  });

  it('keeps the TLS choice of the oldest Ingress of a host; the same Secret twice is no conflict', () => {
    const tls = (secretName?: string) => [{ hosts: ['h.com'], ...(secretName === undefined ? {} : { secretName }) }];
    const at = (year: number) => `${year}-01-01T00:00:00Z`;
    const { table } = compile([ingress('a', { created: at(2024), tls: tls('two') }), ingress('b', { created: at(2021), tls: tls('one') }), ingress('c', { created: at(2020), tls: tls('one') }), ingress('d', { created: at(2022), tls: tls() })]);
    expect(table.tls('h.com')).toEqual({ secret: { namespace: 'default', name: 'one' }, ingress: 'default/c' });
    expect(table.problems.map((p) => p.ingress)).toEqual(['default/d', 'default/a']);
    expect(table.problems[0]!.reason).toContain('Ingress default/c, which is older (created 2020-01-01T00:00:00Z; this one 2022-01-01T00:00:00Z)');
    expect([...table.secrets]).toEqual(['default/one']);
  });
});

describe('canaries', () => {
  const primary = ingress('main', { rules: [rule('a.com', 'Prefix /api main:80', 'Exact /login main:81')], annotations: { 'netplane.io/limit-rps': '5' } });
  const canary = (name: string, annotations: Record<string, string>, ...paths: string[]) =>
    ingress(name, { rules: [rule('a.com', ...paths)], annotations: { 'nginx.ingress.kubernetes.io/canary': 'true', ...annotations } });

  it('attaches to the route with the same host, path and type, and makes no route of its own', () => {
    const { table, served } = compile([
      canary('a-canary', { 'nginx.ingress.kubernetes.io/canary-weight': '20', 'nginx.ingress.kubernetes.io/canary-by-header': 'X-Canary', 'nginx.ingress.kubernetes.io/canary-by-header-value': 'yes' }, 'Prefix /api/ next:80'),
      primary,
    ]);
    const route = table.match('a.com', '/api/x');
    expect(route?.backend.key).toBe('default/main:80');
    expect(route?.canary).toEqual({
      ingress: 'default/a-canary',
      backend: { namespace: 'default', service: 'next', port: 80, key: 'default/next:80', upstream: { protocol: 'HTTP', viaService: false } },
      header: 'X-Canary',
      headerValue: 'yes',
      weight: 20,
      weightTotal: 100,
      policy: { ...table.ingresses.get('default/main'), loadBalance: 'round_robin' },
    });
    expect(table.match('a.com', '/login')?.canary).toBeUndefined();
    expect([table.size, table.problems, [...served.keys()].sort()]).toEqual([2, [], ['default/a-canary', 'default/main']]);
    expect([...table.backends.keys()].sort()).toEqual(['default/main:80', 'default/main:81', 'default/next:80']);
  });

  // [what, canary rule, annotations, problem expected]
  const cases: [string, string, Record<string, string>, boolean][] = [
    ['weight total', 'Prefix /api next:80', { 'netplane.io/canary-weight': '3', 'netplane.io/canary-weight-total': '10' }, false],
    ['no primary for the path', 'Prefix /nope next:80', {}, true],
    ['same path, other type', 'Exact /api next:80', {}, true],
    ['weight above the total', 'Prefix /api next:80', { 'netplane.io/canary-weight': '101' }, true],
    ['bad header name', 'Prefix /api next:80', { 'netplane.io/canary-by-header': 'X Canary' }, true],
  ];
  it.each(cases)('%s', (_name, path, annotations, problem) => {
    const { table } = compile([primary, canary('c', annotations, path)]);
    expect(table.problems.length).toBe(problem ? 1 : 0);
    expect(table.match('a.com', '/api')?.canary !== undefined).toBe(!problem);
    if (!problem) expect(table.match('a.com', '/api')?.canary).toMatchObject({ weight: 3, weightTotal: 10 });
  });

  it('takes one canary per route: the oldest', () => {
    const aged = (c: Ingress, created: string): Ingress => ({ ...c, metadata: { ...c.metadata, creationTimestamp: created } });
    const { table } = compile([primary, aged(canary('c2', {}, 'Prefix /api two:80'), '2024-01-01T00:00:00Z'), aged(canary('c1', {}, 'Prefix /api one:80'), '2020-01-01T00:00:00Z')]);
    expect([table.match('a.com', '/api')?.canary?.ingress, table.problems.map((p) => p.ingress)]).toEqual(['default/c1', ['default/c2']]);
    expect(table.ingresses.has('default/c2')).toBe(false);
  });

  it('does not attach to another canary, and does not serve its tls or default backend', () => {
    const c = ingress('c', {
      rules: [rule('a.com', 'Prefix /api next:80')],
      tls: [{ hosts: ['a.com'], secretName: 'canary-tls' }],
      defaultBackend: backend('canary-default:80'),
      annotations: { 'netplane.io/canary': 'true' },
    });
    const { table } = compile([c, canary('d', {}, 'Prefix /api again:80')]);
    expect([table.size, table.tls('a.com'), table.match('a.com', '/x'), table.problems.map((p) => p.ingress)]).toEqual([0, undefined, undefined, ['default/d', 'default/c']]);
  });

  it("sends canary requests with the primary's settings, but for the canary's load balancing and service-upstream", () => {
    const ngx = 'nginx.ingress.kubernetes.io/';
    const main = ingress('main', {
      rules: [rule('a.com', 'Prefix /api main:80')],
      annotations: {
        [`${ngx}upstream-vhost`]: 'internal.svc', [`${ngx}x-forwarded-prefix`]: '/pre', [`${ngx}proxy-read-timeout`]: '2', [`${ngx}proxy-connect-timeout`]: '1',
        [`${ngx}proxy-body-size`]: '50m', [`${ngx}backend-protocol`]: 'HTTPS', [`${ngx}custom-http-errors`]: '503', [`${ngx}default-backend`]: 'errors',
        [`${ngx}proxy-next-upstream-tries`]: '1', [`${ngx}affinity`]: 'cookie', [`${ngx}rewrite-target`]: '/v2',
      },
    });
    const c = canary('c', {
      [`${ngx}canary-by-header`]: 'X-Canary', [`${ngx}upstream-vhost`]: 'canary.svc', [`${ngx}proxy-read-timeout`]: '30', [`${ngx}load-balance`]: 'ewma', [`${ngx}service-upstream`]: 'true',
      [`${ngx}auth-type`]: 'basic', [`${ngx}auth-secret`]: 'canary-users',
    }, 'Prefix /api next:80');
    const { table } = compile([main, c]);
    expect(table.problems).toEqual([]);
    const primary = table.ingresses.get('default/main')!;
    expect(table.match('a.com', '/api')!.canary!.policy).toEqual({ ...primary, loadBalance: 'least_request', serviceUpstream: true });
    // Spoken to as the primary's location says; reached at its cluster IP as its own Ingress says.
    expect([table.match('a.com', '/api')!.canary!.backend.upstream, table.match('a.com', '/api')!.backend.upstream]).toEqual([
      { protocol: 'HTTPS', viaService: true },
      { protocol: 'HTTPS', viaService: false },
    ]);
    expect([...table.backends.keys()].sort()).toEqual(['default/errors:80', 'default/main:80 HTTPS', 'default/next:80 HTTPS service-upstream']);
    // The canary's auth is not used (the primary's route runs the primary's), so its Secret is not read.
    expect(table.secrets.has('default/canary-users')).toBe(false);
  });

  it('a canary that is "false" is an ordinary Ingress', () => {
    const { table } = compile([canary('c', { 'nginx.ingress.kubernetes.io/canary': 'false' }, 'Prefix /other x:80'), primary]);
    expect([table.size, table.problems]).toEqual([3, []]);
  });
});

describe('table contents', () => {
  const { table, served } = compile([
    ingress('a', {
      namespace: 'shop',
      annotations: { 'nginx.ingress.kubernetes.io/auth-type': 'basic', 'nginx.ingress.kubernetes.io/auth-secret': 'htpasswd' },
      tls: [{ hosts: ['a.com'], secretName: 'a-tls' }, { hosts: ['b.com'] }],
      rules: [rule('a.com', 'Prefix / web:http', 'Prefix /api api:8080'), rule('', 'Exact /health web:http')],
    }),
    ingress('b', { namespace: 'shop', annotations: { 'netplane.io/auth-type': 'jwt', 'netplane.io/auth-jwt-secret': 'shop/jwks' }, rules: [rule('b.com', 'Prefix / b:80')] }),
    ingress('c', { namespace: 'shop', className: 'nginx', tls: [{ hosts: ['c.com'], secretName: 'c-tls' }], annotations: { 'nginx.ingress.kubernetes.io/auth-type': 'basic', 'nginx.ingress.kubernetes.io/auth-secret': 'c-auth' } }),
    ingress('d', { namespace: 'shop', tls: [{ hosts: ['d.com'], secretName: 'd-tls' }], annotations: { 'netplane.io/ssl-redirect': 'maybe' } }),
  ]);

  it('lists the Secrets of served Ingresses only: TLS and auth', () => {
    expect([...table.secrets].sort()).toEqual(['shop/a-tls', 'shop/htpasswd', 'shop/jwks']);
  });

  it('lists backends by key, with named ports', () => {
    expect([...table.backends.values()].sort((x, y) => (x.key < y.key ? -1 : 1))).toEqual([
      { namespace: 'shop', service: 'api', port: 8080, key: 'shop/api:8080', upstream: { protocol: 'HTTP', viaService: false } },
      { namespace: 'shop', service: 'b', port: 80, key: 'shop/b:80', upstream: { protocol: 'HTTP', viaService: false } },
      { namespace: 'shop', service: 'web', port: 'http', key: 'shop/web:http', upstream: { protocol: 'HTTP', viaService: false } },
    ]);
  });

  it('gives each backend the backend-protocol of the Ingress that routes to it', () => {
    const { table: t } = compile([
      ingress('plain', { rules: [rule('a.com', 'Prefix / web:80')] }),
      ingress('secure', { annotations: { 'nginx.ingress.kubernetes.io/backend-protocol': 'HTTPS' }, rules: [rule('b.com', 'Prefix /api tls:443')], defaultBackend: backend('fallback:8443') }),
    ]);
    expect(Object.fromEntries([...t.backends].map(([k, b]) => [k, b.upstream?.protocol]))).toEqual({ 'default/web:80': 'HTTP', 'default/tls:443 HTTPS': 'HTTPS', 'default/fallback:8443 HTTPS': 'HTTPS' });
  });

  it("scopes an Ingress's defaultBackend to its own hosts, as ingress-nginx does; one without rules answers only hosts no rule names", () => {
    const { table: t } = compile([
      ingress('a-shop', { rules: [rule('shop.com', 'Prefix /cart cart:80')], defaultBackend: backend('shop-home:80') }),
      ingress('b-blog', { rules: [rule('blog.com', 'Prefix /posts posts:80')] }),
      ingress('c-site', { rules: [rule('site.com', 'Prefix /docs docs:80')], defaultBackend: backend('site-home:80') }),
      ingress('d-site-root', { rules: [rule('site.com', 'Prefix / site-root:80')] }),
      ingress('z-catch-all', { defaultBackend: backend('catch-all:80') }),
    ]);
    expect(['shop.com /cart/1', 'shop.com /about', 'blog.com /about', 'site.com /about', 'other.com /'].map((q) => t.match(q.split(' ')[0]!, q.split(' ')[1]!)?.backend.key)).toEqual([
      'default/cart:80',
      'default/shop-home:80',
      // blog.com has its own server in ingress-nginx: a miss there is the default backend's 404, not the catch-all's.
      undefined,
      // An explicit `/` rule, even of a later Ingress, comes before a defaultBackend.
      'default/site-root:80',
      'default/catch-all:80',
    ]);
    expect(t.backends.has('default/site-home:80')).toBe(false);
  });

  describe('the controller default backend (--default-backend-service): the last thing matched, as ingress-nginx\'s upstream-default-backend', () => {
    const defaultService = { namespace: 'ingress-nginx', service: 'defaultbackend', port: 8080 };
    const ingresses = [
      ingress('a-shop', { rules: [rule('shop.com', 'Prefix /cart cart:80')], defaultBackend: backend('shop-home:80') }),
      ingress('b-blog', { rules: [rule('blog.com', 'Prefix /posts posts:80'), rule('', 'Exact /status status:80')] }),
    ];
    const catchAll = ingress('z-catch-all', { defaultBackend: backend('catch-all:80') });
    // [request, without a catch-all Ingress, with one]
    it.each([
      ['shop.com /cart/1', 'default/cart:80', 'default/cart:80'],
      // An Ingress's own defaultBackend answers its hosts' misses first.
      ['shop.com /about', 'default/shop-home:80', 'default/shop-home:80'],
      // A host with rules and no defaultBackend: ingress-nginx's server root location is upstream-default-backend.
      ['blog.com /about', 'ingress-nginx/defaultbackend:8080', 'ingress-nginx/defaultbackend:8080'],
      ['any.com /status', 'default/status:80', 'default/status:80'],
      // Hosts no rule names, and what the rules without a host miss: the catch-all Ingress, else the default backend.
      ['any.com /other', 'ingress-nginx/defaultbackend:8080', 'default/catch-all:80'],
      ['other.com /', 'ingress-nginx/defaultbackend:8080', 'default/catch-all:80'],
    ])('%s: %s, with a catch-all Ingress %s', (q, without, withCatchAll) => {
      const [host, path] = q.split(' ') as [string, string];
      expect(compile(ingresses, { defaultService }).table.match(host, path)?.backend.key).toBe(without);
      expect(compile([...ingresses, catchAll], { defaultService }).table.match(host, path)?.backend.key).toBe(withCatchAll);
    });

    it('is a route of no Ingress, in plain HTTP, with the defaults but custom-http-errors; its backend is the table\'s defaultBackend and no Ingress\'s', () => {
      const defaults = { connectTimeoutMs: 1000, readTimeoutMs: 2000, annotations: { 'nginx.ingress.kubernetes.io/custom-http-errors': '404,503', 'nginx.ingress.kubernetes.io/proxy-body-size': '8m' } };
      const { table: t } = compile(ingresses, { defaultService, defaults });
      const r = t.match('nowhere.com', '/x')!;
      expect([r.ingress, r.namespace, r.controllerDefault, show(r), r.backend.upstream]).toEqual(['', '', true, '* / Prefix -> ingress-nginx/defaultbackend:8080', { protocol: 'HTTP', viaService: false }]);
      expect([r.policy.customErrors, r.policy.maxBodyBytes, r.policy.readTimeoutMs]).toEqual([undefined, 8 * 1024 * 1024, 2000]);
      // The Ingresses' routes keep the ConfigMap's custom-http-errors.
      expect(t.match('shop.com', '/cart')?.policy.customErrors).toEqual([404, 503]);
      expect([t.defaultBackend, t.backends.get('ingress-nginx/defaultbackend:8080'), t.backendUsers?.has('ingress-nginx/defaultbackend:8080'), t.problems]).toEqual([r.backend, r.backend, false, []]);
    });

    it('shares the upstream of a route to the same port, and leaves 404 to the table without the flag', () => {
      const same = compile([ingress('d', { rules: [rule('d.com', 'Prefix /d defaultbackend:8080')], namespace: 'ingress-nginx' })], { defaultService });
      expect(same.table.match('x.com', '/')?.backend).toBe(same.table.match('d.com', '/d')?.backend);
      expect([compile(ingresses).table.match('blog.com', '/about'), compile(ingresses).table.defaultBackend]).toEqual([undefined, undefined]);
    });
  });

  it('reports the Ingress whose catch-all defaultBackend another, older one holds: not served, with the reason', () => {
    const { table: t } = compile([
      ingress('z-old', { defaultBackend: backend('old:80'), created: '2024-01-01T00:00:00Z' }),
      ingress('a-new', { defaultBackend: backend('new:80'), created: '2024-06-01T00:00:00Z' }),
    ]);
    expect(t.match('other.com', '/')?.backend.key).toBe('default/old:80');
    expect(t.problems).toEqual([{ ingress: 'default/a-new', reason: expect.stringMatching(/^its defaultBackend is not the catch-all: Ingress default\/z-old, which is older .* already answers the hosts no rule names$/), keptLastGood: false }]);
  });

  it('counts rules and lists served Ingresses with their policies', () => {
    expect([table.size, [...table.ingresses.keys()], [...served.keys()]]).toEqual([4, ['shop/b', 'shop/a'], ['shop/b', 'shop/a']]);
    expect(table.ingresses.get('shop/a')?.auth).toEqual({ type: 'basic', secret: { namespace: 'shop', name: 'htpasswd' }, realm: 'Authentication Required' });
    expect(table.problems.map((p) => p.ingress)).toEqual(['shop/d']);
  });

  it('is immutable', () => {
    const route = table.match('a.com', '/api')!;
    expect(Object.isFrozen(route) && Object.isFrozen(route.policy) && Object.isFrozen(route.backend) && Object.isFrozen(route.policy.auth)).toBe(true);
    expect(Object.isFrozen(table.problems)).toBe(true);
    expect(() => {
      (route as { path: string }).path = '/';
    }).toThrow(TypeError);
  });

  it('routes by the rules, including a rule without host', () => {
    expect(['a.com /api/v1', 'a.com /health', 'z.com /health', 'z.com /healthz'].map((q) => show(table.match(q.split(' ')[0]!, q.split(' ')[1]!)))).toEqual([
      'a.com /api Prefix -> shop/api:8080',
      'a.com / Prefix -> shop/web:http',
      '* /health Exact -> shop/web:http',
      'none',
    ]);
  });
});
