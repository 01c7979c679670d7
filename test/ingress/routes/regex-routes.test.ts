// Regex rules in the routing table: which Ingresses' paths are read as regexes, the order a host's rules are tried
// in (ingress-nginx's location order), canaries and default backends of regex Ingresses, and the refusals.
import { describe, expect, it } from 'vitest';
import { backend, compile, ingress, rule } from './fixtures.ts';

const ngx = 'nginx.ingress.kubernetes.io/';
const regex = { [`${ngx}use-regex`]: 'true' };

/** The backend service a request for a.com goes to, or 'none'. */
function router(...ingresses: Parameters<typeof ingress>[]) {
  const { table } = compile(ingresses.map(([name, o]) => ingress(name, o)));
  expect(table.problems).toEqual([]);
  return (path: string) => table.match('a.com', path)?.backend.service ?? 'none';
}

describe('the rules of a host, in order', () => {
  // [what, Ingresses, request → service]
  const cases: [string, Parameters<typeof ingress>[], Record<string, string>][] = [
    [
      'one Ingress: the longer written path first, whatever the rule order',
      [['r', { annotations: regex, rules: [rule('a.com', 'ImplementationSpecific /(.*) web:80', 'ImplementationSpecific /api/(.*) api:80')] }]],
      { '/api/x': 'api', '/API/x': 'api', '/apix': 'web', '/': 'web', '/api': 'web' },
    ],
    [
      "ingress-nginx's path-priority example: /foo/bar/(.+) before /foo/bar/",
      [['r', { annotations: regex, rules: [rule('a.com', 'Prefix /foo/bar/ two:80', 'Prefix /foo/bar/(.+) three:80', 'Prefix /foo/bar one:80')] }]],
      { '/foo/bar/1': 'three', '/foo/bar/': 'two', '/foo/bar': 'one', '/foo/barx': 'one' },
    ],
    [
      'at equal length, the greater string first',
      [['r', { annotations: regex, rules: [rule('a.com', 'Prefix /a.(.*) dot:80', 'Prefix /ab(.*) ab:80')] }]],
      { '/abx': 'ab', '/acx': 'dot', '/a/x': 'dot' },
    ],
    [
      'a regex Ingress and a plain one: the plain one keeps its own matching',
      [
        ['api', { annotations: { [`${ngx}rewrite-target`]: '/$2' }, rules: [rule('a.com', 'Prefix /api(/|$)(.*) api:80')] }],
        ['web', { rules: [rule('a.com', 'Prefix / web:80', 'Exact /status status:80')] }],
      ],
      { '/api': 'api', '/api/x': 'api', '/Api/x': 'api', '/apix': 'web', '/status': 'status', '/status/x': 'web', '/STATUS': 'web' },
    ],
    [
      'a plain rule stands where ingress-nginx writes it: Prefix /app/admin as /app/admin/, before /app/(.*)',
      [
        ['app', { annotations: regex, rules: [rule('a.com', 'Prefix /app/(.*) app:80')] }],
        ['admin', { rules: [rule('a.com', 'Prefix /app/admin admin:80')] }],
      ],
      { '/app/admin/x': 'admin', '/app/admin': 'admin', '/app/x': 'app', '/app/adminx': 'app' },
    ],
    [
      'a longer regex stands before a shorter plain rule, as in ingress-nginx',
      [
        ['api', { annotations: regex, rules: [rule('a.com', 'Prefix /api(/|$)(.*) api:80')] }],
        ['v2', { rules: [rule('a.com', 'Prefix /api/v2 v2:80')] }],
      ],
      { '/api/v2/x': 'api', '/api/v3': 'api' },
    ],
    [
      'at a tie, the plain rule',
      [
        ['re', { annotations: regex, rules: [rule('a.com', 'Prefix /api re:80')] }],
        ['plain', { rules: [rule('a.com', 'Exact /api plain:80')] }],
      ],
      { '/api': 'plain', '/api/x': 're', '/apix': 're' },
    ],
    [
      'use-regex on one Ingress leaves the paths of another of the host as Kubernetes reads them',
      [
        ['re', { annotations: regex, rules: [rule('a.com', 'Prefix /x(/|$)(.*) re:80')] }],
        ['plain', { rules: [rule('a.com', 'Exact /exact exact:80', 'Prefix /pre pre:80')] }],
      ],
      { '/exact': 'exact', '/exact/x': 'none', '/pre/x': 'pre', '/prefix': 'none', '/PRE': 'none' },
    ],
    [
      'the default backend of a regex Ingress answers what its rules do not',
      [['r', { annotations: regex, rules: [rule('a.com', 'Prefix /api/(.*) api:80')], defaultBackend: backend('fallback:80') }]],
      { '/api/x': 'api', '/api': 'fallback', '/x': 'fallback' },
    ],
  ];
  it.each(cases)('%s', (_what, ingresses, want) => {
    const route = router(...ingresses);
    for (const [path, service] of Object.entries(want)) expect([path, route(path)]).toEqual([path, service]);
  });
});

describe('which paths are regexes', () => {
  it('reads the paths of an Ingress with use-regex, or a rewrite-target other than a path, as regexes; not otherwise', () => {
    const path = (annotations: Record<string, string>, p: string) => compile([ingress('r', { annotations, rules: [rule('a.com', `Prefix ${p} web:80`)] })]).table.match('a.com', '/app/x');
    expect(path(regex, '/app')?.regex).toMatchObject({ source: '/app', prefix: '/app', after: 'any' });
    expect(path({ [`${ngx}rewrite-target`]: '/' }, '/app')?.regex).toMatchObject({ source: '/app', rewrite: ['/'] });
    expect(path({ [`${ngx}rewrite-target`]: '/app' }, '/app')?.regex).toBeUndefined();
    expect(path({ [`${ngx}use-regex`]: 'false' }, '/app')?.regex).toBeUndefined();
    expect(path({}, '/app')?.regex).toBeUndefined();
  });

  it('gives each rule its own rewrite: none where the target is its path', () => {
    const { table } = compile([ingress('r', { annotations: { [`${ngx}rewrite-target`]: '/' }, rules: [rule('a.com', 'Prefix / web:80', 'Prefix /app app:80')] })]);
    expect([table.match('a.com', '/x')?.regex?.rewrite, table.match('a.com', '/app/x')?.regex?.rewrite]).toEqual([undefined, ['/']]);
  });

  it('attaches a canary to a regex route by the path as written', () => {
    const { table } = compile([
      ingress('main', { annotations: { [`${ngx}rewrite-target`]: '/$2' }, rules: [rule('a.com', 'Prefix /api(/|$)(.*) main:80')] }),
      // ingress-nginx ignores a canary's other annotations; its paths are read as written.
      ingress('next', { annotations: { [`${ngx}canary`]: 'true', [`${ngx}canary-weight`]: '100' }, rules: [rule('a.com', 'Prefix /api(/|$)(.*) next:80')] }),
    ]);
    expect(table.problems).toEqual([]);
    expect(table.match('a.com', '/api/x')?.canary).toMatchObject({ ingress: 'default/next', backend: { service: 'next' }, weight: 100 });
  });

  it('drops a second regex rule with the same host and path, naming the Ingress that has it', () => {
    const { table } = compile([
      ingress('a', { annotations: regex, created: '2020-01-01T00:00:00Z', rules: [rule('a.com', 'Prefix /api/(.*) a:80')] }),
      ingress('b', { annotations: regex, created: '2021-01-01T00:00:00Z', rules: [rule('a.com', 'Exact /api/(.*) b:80', 'Prefix /other/(.*) b:80')] }),
    ]);
    expect(table.problems).toEqual([{ ingress: 'default/b', reason: expect.stringMatching(/path "\/api\/\(\.\*\)" \(regex\) is dropped: Ingress default\/a, which is older/), keptLastGood: false, partly: true, conflict: 'default/a' }]);
    expect([table.match('a.com', '/api/x')?.backend.service, table.match('a.com', '/other/x')?.backend.service]).toEqual(['a', 'b']);
  });
});

describe('regex paths that take the Ingress out of service', () => {
  // [what, annotations, path, a word the reason names]
  const cases: [string, Record<string, string>, string, string][] = [
    ['a class and a repetition', regex, '/foo/bar/[A-Z0-9]{3}', 'does not read'],
    ['alternatives', regex, '/(api|v1)/(.*)', 'does not read'],
    ['a group without use-regex or a rewrite-target', {}, '/api/(.*)', 'neither use-regex nor a rewrite-target'],
    ['.* without use-regex', {}, '/api/.*', 'neither use-regex nor a rewrite-target'],
    ['(/|$) without use-regex', {}, '/api(/|$)(.*)', 'use-regex'],
    ['a rewrite that could send no path', { [`${ngx}rewrite-target`]: '$1' }, '/user(.*)', 'does not start with "/"'],
    ['a rewrite with the wrong group', { [`${ngx}rewrite-target`]: '$2' }, '/admin(/|$)(.*)', 'does not start with "/"'],
  ];
  it.each(cases)('%s', (_what, annotations, path, named) => {
    const { table, served } = compile([
      ingress('bad', { annotations, rules: [rule('a.com', `ImplementationSpecific ${path} web:80`)] }),
      ingress('good', { rules: [rule('b.com', 'Prefix / web:80')] }),
    ]);
    expect(table.problems).toHaveLength(1);
    expect(table.problems[0]).toMatchObject({ ingress: 'default/bad', keptLastGood: false });
    expect(table.problems[0]!.reason).toContain(JSON.stringify(path));
    expect(table.problems[0]!.reason).toContain(named);
    expect([...served.keys()]).toEqual(['default/good']);
  });

  it('refuses a rewrite-target with an nginx variable', () => {
    const { table } = compile([ingress('bad', { annotations: { [`${ngx}rewrite-target`]: '/$request_uri' }, rules: [rule('a.com', 'Prefix /a web:80')] })]);
    expect(table.problems[0]?.reason).toMatch(/rewrite-target.*"\/\$request_uri".*capture reference \$1 to \$9/);
  });
});
