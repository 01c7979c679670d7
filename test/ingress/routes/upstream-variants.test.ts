// How each route reaches its Service port (backend-protocol, proxy-ssl-*, service-upstream) is its own Ingress's,
// whatever other Ingresses reach the same port: the route's backend carries its UpstreamSpec and the key of the
// upstream built for exactly that, and Ingresses that reach a port alike share one.
import { describe, expect, it } from 'vitest';
import { upstreamKey } from '../../../ingress/routes/compile.ts';
import type { BackendRef, RouteTable, UpstreamSpec } from '../../../ingress/routes/types.ts';
import { compile, ingress, rule } from './fixtures.ts';

const ngx = 'nginx.ingress.kubernetes.io/';
const https = { [`${ngx}backend-protocol`]: 'HTTPS' };
const verify = (more: Record<string, string> = {}) => ({ ...https, [`${ngx}proxy-ssl-verify`]: 'on', [`${ngx}proxy-ssl-secret`]: 'backend-ca', ...more });
/** An Ingress `name` routing `name.com` to the Service port api:443 with these annotations. */
const to443 = (name: string, annotations: Record<string, string>) => ingress(name, { annotations, rules: [rule(`${name}.com`, 'Prefix / api:443')] });
const backendOf = (t: RouteTable, host: string): BackendRef => t.match(host, '/')!.backend;

const plainSpec: UpstreamSpec = { protocol: 'HTTP', viaService: false };
const verifiedSpec: UpstreamSpec = { protocol: 'HTTPS', tls: { secret: { namespace: 'default', name: 'backend-ca' }, name: 'api.default.svc', sni: false }, viaService: false };

describe('the upstream of a route is its own Ingress\'s', () => {
  // [what, annotations of Ingress A, of Ingress B, A's spec, B's spec]
  const cases: [string, Record<string, string>, Record<string, string>, UpstreamSpec, UpstreamSpec][] = [
    ['HTTPS unverified, HTTPS verified', https, verify(), { protocol: 'HTTPS', viaService: false }, verifiedSpec],
    ['HTTP, HTTPS', {}, https, plainSpec, { protocol: 'HTTPS', viaService: false }],
    ['GRPC, GRPCS', { [`${ngx}backend-protocol`]: 'GRPC' }, { [`${ngx}backend-protocol`]: 'GRPCS' }, { protocol: 'GRPC', viaService: false }, { protocol: 'GRPCS', viaService: false }],
    ['HTTP, GRPC', {}, { [`${ngx}backend-protocol`]: 'GRPC' }, plainSpec, { protocol: 'GRPC', viaService: false }],
    ['endpoints, service-upstream', {}, { [`${ngx}service-upstream`]: 'true' }, plainSpec, { protocol: 'HTTP', viaService: true }],
    [
      'verified with other names and SNI',
      verify({ [`${ngx}proxy-ssl-name`]: 'one.internal' }),
      verify({ [`${ngx}proxy-ssl-name`]: 'two.internal', [`${ngx}proxy-ssl-server-name`]: 'on' }),
      { ...verifiedSpec, tls: { ...verifiedSpec.tls!, name: 'one.internal' } },
      { ...verifiedSpec, tls: { ...verifiedSpec.tls!, name: 'two.internal', sni: true } },
    ],
    ['verified with other Secrets', verify(), verify({ [`${ngx}proxy-ssl-secret`]: 'other-ca' }), verifiedSpec, { ...verifiedSpec, tls: { ...verifiedSpec.tls!, secret: { namespace: 'default', name: 'other-ca' } } }],
  ];
  // Both orders of names: whichever comes first by namespace/name, each route gets what its Ingress says.
  describe.each([['a', 'b'], ['b', 'a']])('Ingress A named %s, B named %s', (nameA, nameB) => {
    it.each(cases)('%s', (_what, annotationsA, annotationsB, specA, specB) => {
      const { table } = compile([to443(nameA, annotationsA), to443(nameB, annotationsB)]);
      expect(table.problems).toEqual([]);
      const [a, b] = [backendOf(table, `${nameA}.com`), backendOf(table, `${nameB}.com`)];
      expect([a.upstream, b.upstream]).toEqual([specA, specB]);
      expect(a.key).not.toBe(b.key);
      // Each is an upstream of the table, built from its own spec.
      expect([table.backends.get(a.key), table.backends.get(b.key)]).toEqual([a, b]);
      expect(table.backends.size).toBe(2);
    });
  });

  it('shares one upstream between Ingresses that reach the port alike (a default proxy-ssl-name written or not)', () => {
    const { table } = compile([
      to443('a', verify()),
      to443('b', verify({ [`${ngx}proxy-ssl-name`]: 'api.default.svc' })),
      to443('c', verify({ [`${ngx}proxy-ssl-verify`]: 'on' })),
      to443('d', https),
      to443('e', https),
    ]);
    const keys = ['a', 'b', 'c', 'd', 'e'].map((n) => backendOf(table, `${n}.com`).key);
    expect(keys).toEqual([...Array(3).fill('default/api:443 HTTPS verify=default/backend-ca name=api.default.svc'), 'default/api:443 HTTPS', 'default/api:443 HTTPS']);
    // One object per upstream, in the routes and in the table.
    expect(backendOf(table, 'a.com')).toBe(backendOf(table, 'c.com'));
    expect([...table.backends.keys()].sort()).toEqual(['default/api:443 HTTPS', 'default/api:443 HTTPS verify=default/backend-ca name=api.default.svc']);
  });

  it('reaches a default backend as its Ingress says, a custom error backend in plain HTTP', () => {
    const { table } = compile([
      ingress('a', { annotations: { ...verify(), [`${ngx}default-backend`]: 'api:443', [`${ngx}custom-http-errors`]: '503' }, rules: [rule('a.com', 'Prefix /app api:443')], defaultBackend: { service: { name: 'api', port: { number: 443 } } } }),
      ingress('z', { annotations: https, defaultBackend: { service: { name: 'api', port: { number: 443 } } } }),
    ]);
    const errorBackend = table.ingresses.get('default/a')!.errorBackend!;
    // Its own key is the plain-HTTP upstream's, which the table has.
    expect(table.backends.get(errorBackend.key)?.upstream).toEqual(plainSpec);
    expect(table.match('a.com', '/other')?.backend.upstream).toEqual(verifiedSpec);
    expect(table.match('other.com', '/')?.backend).toMatchObject({ key: 'default/api:443 HTTPS', upstream: { protocol: 'HTTPS', viaService: false } });
    expect([...table.backends.keys()].sort()).toEqual(['default/api:443', 'default/api:443 HTTPS', 'default/api:443 HTTPS verify=default/backend-ca name=api.default.svc']);
  });

  it("reaches a canary's port as the primary's location says, at its cluster IP as the canary says, apart from another Ingress's route to it", () => {
    const { table } = compile([
      ingress('main', { annotations: verify(), rules: [rule('a.com', 'Prefix / main:443')] }),
      ingress('main-canary', { annotations: { [`${ngx}canary`]: 'true', [`${ngx}canary-weight`]: '10', [`${ngx}service-upstream`]: 'true' }, rules: [rule('a.com', 'Prefix / api:443')] }),
      to443('other', {}),
    ]);
    const canary = table.match('a.com', '/')!.canary!.backend;
    expect(canary.upstream).toEqual({ ...verifiedSpec, viaService: true });
    expect(canary.key).toBe('default/api:443 HTTPS verify=default/backend-ca name=api.default.svc service-upstream');
    expect(backendOf(table, 'other.com')).toMatchObject({ key: 'default/api:443', upstream: plainSpec });
  });

  it("gives a www redirect route its Ingress's way, and makes no upstream for it", () => {
    const { table } = compile([ingress('a', { annotations: { ...https, [`${ngx}from-to-www-redirect`]: 'true' }, rules: [rule('a.com', 'Prefix / api:443')] })]);
    expect(backendOf(table, 'www.a.com')).toEqual(backendOf(table, 'a.com'));
    expect([...table.backends.keys()]).toEqual(['default/api:443 HTTPS']);
  });
});

describe('upstreamKey', () => {
  const port = { namespace: 'shop', service: 'api', port: 'https' };
  const tls = { secret: { namespace: 'shop', name: 'ca' }, name: 'api.internal', sni: false };
  // [spec, key]
  const cases: [UpstreamSpec, string][] = [
    [{ protocol: 'HTTP', viaService: false }, 'shop/api:https'],
    [{ protocol: 'HTTPS', viaService: false }, 'shop/api:https HTTPS'],
    [{ protocol: 'GRPC', viaService: false }, 'shop/api:https GRPC'],
    [{ protocol: 'GRPCS', tls, viaService: false }, 'shop/api:https GRPCS verify=shop/ca name=api.internal'],
    [{ protocol: 'HTTPS', tls: { ...tls, sni: true }, viaService: false }, 'shop/api:https HTTPS verify=shop/ca name=api.internal sni'],
    [{ protocol: 'HTTP', viaService: true }, 'shop/api:https service-upstream'],
    [{ protocol: 'HTTPS', tls, viaService: true }, 'shop/api:https HTTPS verify=shop/ca name=api.internal service-upstream'],
  ];
  it.each(cases)('%j is %s', (spec, key) => {
    expect(upstreamKey(port, spec)).toBe(key);
  });
});
