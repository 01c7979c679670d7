// from-to-www-redirect in the route compiler: the other name of each host of the Ingress (www. or not) gets a route
// whose policy redirects to the host, unless an Ingress routes that name itself or by a wildcard; rules without a
// host do not stop it (ingress-nginx's redirect server takes the name before its catch-all).
import { describe, expect, it } from 'vitest';
import { compile, ingress, rule } from './fixtures.ts';

const ngx = 'nginx.ingress.kubernetes.io/';
const www = { [`${ngx}from-to-www-redirect`]: 'true' };

/** What a request for `host` gets: `-> host` for a redirect, the Ingress for a route, `none` for 404. */
function answer(table: ReturnType<typeof compile>['table'], host: string, path = '/x'): string {
  const r = table.match(host, path);
  if (r === undefined) return 'none';
  return r.policy.redirectToHost !== undefined ? `-> ${r.policy.redirectToHost} (${r.ingress})` : r.ingress;
}

describe('from-to-www-redirect', () => {
  // [what, Ingresses, host asked, answer]
  const cases: [string, ReturnType<typeof ingress>[], string, string][] = [
    ['bare host: www. redirected to it', [ingress('a', { annotations: www, rules: [rule('example.com', 'Prefix / web:80')] })], 'www.example.com', '-> example.com (default/a)'],
    ['bare host itself is served', [ingress('a', { annotations: www, rules: [rule('example.com', 'Prefix / web:80')] })], 'example.com', 'default/a'],
    ['www host: the bare name redirected to it', [ingress('a', { annotations: www, rules: [rule('www.shop.com', 'Prefix /api web:80')] })], 'shop.com', '-> www.shop.com (default/a)'],
    ['every path of the name, not only the rule paths', [ingress('a', { annotations: www, rules: [rule('www.shop.com', 'Exact /api web:80')] })], 'shop.com', '-> www.shop.com (default/a)'],
    ['not without the annotation', [ingress('a', { rules: [rule('example.com', 'Prefix / web:80')] })], 'www.example.com', 'none'],
    ['not with it "false"', [ingress('a', { annotations: { [`${ngx}from-to-www-redirect`]: 'false' }, rules: [rule('example.com', 'Prefix / web:80')] })], 'www.example.com', 'none'],
    ['netplane.io spelling', [ingress('a', { annotations: { 'netplane.io/from-to-www-redirect': 'true' }, rules: [rule('example.com', 'Prefix / web:80')] })], 'www.example.com', '-> example.com (default/a)'],
    [
      'not over a host another Ingress routes',
      [ingress('a', { annotations: www, rules: [rule('example.com', 'Prefix / web:80')] }), ingress('b', { rules: [rule('www.example.com', 'Prefix /blog blog:80')] })],
      'www.example.com',
      'none',
    ],
    [
      'not over a host another Ingress routes, on its paths',
      [ingress('a', { annotations: www, rules: [rule('example.com', 'Prefix / web:80')] }), ingress('z', { rules: [rule('www.example.com', 'Prefix /blog blog:80')] })],
      'www.example.com/blog',
      'default/z',
    ],
    [
      'not over a name a wildcard Ingress routes',
      [ingress('a', { annotations: www, rules: [rule('example.com', 'Prefix / web:80')] }), ingress('b', { rules: [rule('*.example.com', 'Prefix / sub:80')] })],
      'www.example.com',
      'default/b',
    ],
    [
      'not over a server-alias of another Ingress',
      [ingress('a', { annotations: www, rules: [rule('example.com', 'Prefix / web:80')] }), ingress('b', { annotations: { [`${ngx}server-alias`]: 'www.example.com' }, rules: [rule('other.com', 'Prefix / o:80')] })],
      'www.example.com',
      'default/b',
    ],
    [
      'before the rules without a host',
      [ingress('a', { annotations: www, rules: [rule('example.com', 'Prefix / web:80')] }), ingress('any', { rules: [rule('', 'Prefix / any:80')] })],
      'www.example.com',
      '-> example.com (default/a)',
    ],
    [
      'both names with their own Ingress and the annotation: each serves its own',
      [ingress('a', { annotations: www, rules: [rule('example.com', 'Prefix / web:80')] }), ingress('b', { annotations: www, rules: [rule('www.example.com', 'Prefix / w:80')] })],
      'www.example.com',
      'default/b',
    ],
    [
      'two Ingresses of one host: the oldest redirects',
      [ingress('b', { annotations: www, created: '2024-01-01T00:00:00Z', rules: [rule('example.com', 'Prefix /b web:80')] }), ingress('a', { annotations: www, created: '2020-01-01T00:00:00Z', rules: [rule('example.com', 'Prefix /a web:80')] })],
      'www.example.com',
      '-> example.com (default/a)',
    ],
    ['not for a wildcard host', [ingress('a', { annotations: www, rules: [rule('*.example.com', 'Prefix / web:80')] })], 'www.sub.example.com', 'none'],
    ['not from www.com to com', [ingress('a', { annotations: www, rules: [rule('www.com', 'Prefix / web:80')] })], 'com', 'none'],
    ['not for its server-alias names', [ingress('a', { annotations: { ...www, [`${ngx}server-alias`]: 'alias.com' }, rules: [rule('example.com', 'Prefix / web:80')] })], 'www.alias.com', 'none'],
    ['for each of its hosts', [ingress('a', { annotations: www, rules: [rule('one.com', 'Prefix / web:80'), rule('two.com', 'Prefix / web:80')] })], 'www.two.com', '-> two.com (default/a)'],
    [
      'not from a canary Ingress',
      [ingress('a', { rules: [rule('example.com', 'Prefix / web:80')] }), ingress('c', { annotations: { ...www, [`${ngx}canary`]: 'true' }, rules: [rule('example.com', 'Prefix / next:80')] })],
      'www.example.com',
      'none',
    ],
  ];

  it.each(cases)('%s', (_what, ingresses, asked, want) => {
    const { table } = compile(ingresses);
    expect(table.problems).toEqual([]);
    const [host, path] = asked.includes('/') ? [asked.slice(0, asked.indexOf('/')), asked.slice(asked.indexOf('/'))] : [asked, '/x'];
    expect(answer(table, host, path)).toBe(want);
  });

  it('redirects with a policy of its own: no HTTPS redirect first, none of the Ingress’s limits, auth or source ranges', () => {
    const a = ingress('a', {
      annotations: { ...www, [`${ngx}limit-rps`]: '1', [`${ngx}auth-type`]: 'basic', [`${ngx}auth-secret`]: 'users', [`${ngx}allowlist-source-range`]: '10.0.0.0/8' },
      rules: [rule('example.com', 'Prefix / web:80')],
      tls: [{ hosts: ['example.com'], secretName: 'site' }],
    });
    const { table } = compile([a]);
    expect(table.match('www.example.com', '/')?.policy).toEqual({
      sslRedirect: false, forceSslRedirect: false, backendProtocol: 'HTTP', maxBodyBytes: 1024 * 1024, connectTimeoutMs: 5000, readTimeoutMs: 60_000, sendTimeoutMs: 60_000, loadBalance: 'round_robin', redirectToHost: 'example.com',
    });
  });

  it("gives the redirected name the host's certificate when no TLS entry covers it", () => {
    const site = (annotations: Record<string, string>, tls: object[]) => ingress('a', { annotations, rules: [rule('example.com', 'Prefix / web:80')], tls });
    const own = ingress('b', { rules: [], tls: [{ hosts: ['www.example.com'], secretName: 'www-own' }] });
    const wild = ingress('b', { rules: [], tls: [{ hosts: ['*.example.com'], secretName: 'wild' }] });
    // [Ingresses, the certificate www.example.com gets]
    const cases: [ReturnType<typeof ingress>[], string | undefined][] = [
      [[site(www, [{ hosts: ['example.com'], secretName: 'site' }])], 'site'],
      [[site(www, [])], undefined],
      [[site({}, [{ hosts: ['example.com'], secretName: 'site' }])], undefined],
      [[site(www, [{ hosts: ['example.com'], secretName: 'site' }]), own], 'www-own'],
      [[site(www, [{ hosts: ['example.com'], secretName: 'site' }]), wild], 'wild'],
    ];
    for (const [ingresses, want] of cases) expect(compile(ingresses).table.tls('www.example.com')?.secret?.name).toBe(want);
  });
});
