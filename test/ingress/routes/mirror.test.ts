// mirror-target, mirror-host and mirror-request-body through the real route compiler: the MirrorPolicy good values
// give, the problem sentence of bad ones (the Ingress out of service, the others served), and the path a request is
// copied to.
import { describe, expect, it } from 'vitest';
import { mirrorPath, type MirrorPolicy, type MirrorVariable } from '../../../ingress/routes/mirror.ts';
import { compile, ingress, rule } from './fixtures.ts';

const ngx = 'nginx.ingress.kubernetes.io/';
const np = 'netplane.io/';
const web = (name: string, annotations: Record<string, string>) => ingress(name, { namespace: 'shop', annotations, rules: [rule(`${name}.com`, `Prefix / ${name}:80`)] });
const target = (v: string, more: Record<string, string> = {}) => ({ [`${ngx}mirror-target`]: v, ...more });
const v = (variable: MirrorVariable) => ({ variable });

describe('mirror annotations with good values', () => {
  // [what, annotations, the mirror policy]
  const cases: [string, Record<string, string>, MirrorPolicy | undefined][] = [
    ['none', {}, undefined],
    ['the documented form', target('https://test.env.com$request_uri'), { origin: 'https://test.env.com', path: [v('request_uri')], appendQuery: false, host: 'test.env.com', body: true }],
    ['a "/" before $request_uri is kept (nginx sends //path)', target('https://test.env.com/$request_uri'), { origin: 'https://test.env.com', path: ['/', v('request_uri')], appendQuery: false, host: 'test.env.com', body: true }],
    ['a port: Host is the name without it, as ingress-nginx sets it', target('http://mirror.test:8080$request_uri'), { origin: 'http://mirror.test:8080', path: [v('request_uri')], appendQuery: false, host: 'mirror.test', body: true }],
    ['the scheme in any case', target('HTTP://Mirror.test/x$is_args$args'), { origin: 'http://Mirror.test', path: ['/x', v('is_args'), v('args')], appendQuery: false, host: 'mirror.test', body: true }],
    ['$query_string is $args, ${name} too', target('http://m.test/copy?src=web&${query_string}'), { origin: 'http://m.test', path: ['/copy?src=web&', v('args')], appendQuery: false, host: 'm.test', body: true }],
    ['a literal path: the client query appended', target('http://10.0.0.9/mirror'), { origin: 'http://10.0.0.9', path: ['/mirror'], appendQuery: true, host: '10.0.0.9', body: true }],
    ['an IPv6 address', target('http://[fd00::9]:81$request_uri'), { origin: 'http://[fd00::9]:81', path: [v('request_uri')], appendQuery: false, host: '[fd00::9]', body: true }],
    ['mirror-host and mirror-request-body off', target('https://m.test$request_uri', { [`${ngx}mirror-host`]: 'shadow.example.com:8443', [`${ngx}mirror-request-body`]: 'off' }), { origin: 'https://m.test', path: [v('request_uri')], appendQuery: false, host: 'shadow.example.com:8443', body: false }],
    ['mirror-request-body on', target('https://m.test$request_uri', { [`${ngx}mirror-request-body`]: 'on' }), { origin: 'https://m.test', path: [v('request_uri')], appendQuery: false, host: 'm.test', body: true }],
    ['under netplane.io/', { [`${np}mirror-target`]: 'http://m.test$request_uri' }, { origin: 'http://m.test', path: [v('request_uri')], appendQuery: false, host: 'm.test', body: true }],
    ['an empty target asks for nothing', target(''), undefined],
    ['mirror-host and -request-body alone change nothing', { [`${ngx}mirror-host`]: 'm.test', [`${ngx}mirror-request-body`]: 'off' }, undefined],
  ];

  it.each(cases)('%s', (_what, annotations, mirror) => {
    const { table } = compile([web('a', annotations)]);
    expect(table.problems).toEqual([]);
    expect(table.match('a.com', '/')?.policy.mirror).toEqual(mirror);
  });
});

describe('mirror annotations with bad values: the Ingress is not served, the others are', () => {
  // [annotations, the annotation named, a part of the reason]
  const cases: [Record<string, string>, string, string][] = [
    [target('mirror.test$request_uri'), 'mirror-target', 'absolute http or https URL'],
    [target('ftp://mirror.test/x'), 'mirror-target', 'absolute http or https URL'],
    [target('https://mirror.test'), 'mirror-target', '/_mirror-<uid>'],
    [target('https://$host$request_uri'), 'mirror-target', 'choose where the copy goes'],
    [target('https://mirror.test$host/x'), 'mirror-target', '$host is not a variable netplane fills in'],
    [target('https://mirror.test$uri'), 'mirror-target', '$uri in ingress-nginx'],
    [target('https://mirror.test/$remote_addr'), 'mirror-target', '$remote_addr is not a variable'],
    [target('https://mirror.test/$'), 'mirror-target', 'must start a variable'],
    [target('https://mirror.test/a?b=1'), 'mirror-target', 'second "?"'],
    [target('https://mirror.test/a#b'), 'mirror-target', 'fragment'],
    [target('https://user@mirror.test/a'), 'mirror-target', 'must end with its port'],
    [target('https://mirror.test:99999/a'), 'mirror-target', 'absolute http or https URL'],
    [target('https://mirror.test/a b'), 'mirror-target', 'visible ASCII'],
    [target('https://mirror.test/ä'), 'mirror-target', 'visible ASCII'],
    [target('https://mirror.test/\x01x'), 'mirror-target', 'control characters'],
    [target('https://m.test$request_uri', { [`${ngx}mirror-request-body`]: 'false' }), 'mirror-request-body', 'allowed are on, off'],
    [target('https://m.test$request_uri', { [`${ngx}mirror-host`]: 'a b' }), 'mirror-host', 'host name or address'],
    [target('https://m.test$request_uri', { [`${ngx}mirror-host`]: '$host' }), 'mirror-host', 'host name or address'],
    [{ [`${ngx}mirror-host`]: 'x/y' }, 'mirror-host', 'host name or address'],
  ];

  it.each(cases)('%j', (annotations, name, why) => {
    const { table } = compile([web('a', annotations), web('b', {})]);
    expect(table.problems).toHaveLength(1);
    const [p] = table.problems;
    expect([p!.ingress, p!.keptLastGood]).toEqual(['shop/a', false]);
    expect(p!.reason).toContain(`annotation ${ngx}${name} is `);
    expect(p!.reason).toContain(why);
    expect(p!.reason).not.toMatch(/[\x00-\x1f\x7f]/);
    expect(table.match('a.com', '/')).toBeUndefined();
    expect(table.match('b.com', '/')?.ingress).toBe('shop/b');
  });
});

describe('the path a request is copied to', () => {
  const policy = (path: MirrorPolicy['path'], appendQuery = false): MirrorPolicy => ({ origin: 'http://m.test', path, appendQuery, host: 'm.test', body: true });
  // [target path, request path, request query, copied to]
  const cases: [MirrorPolicy, string, string, string][] = [
    [policy([v('request_uri')]), '/api/x', '?a=1&b=2', '/api/x?a=1&b=2'],
    [policy([v('request_uri')]), '/api/x', '', '/api/x'],
    [policy([v('request_uri')]), '/api/x', '?', '/api/x'],
    [policy(['/', v('request_uri')]), '/p', '?q', '//p?q'],
    [policy(['/x', v('is_args'), v('args')]), '/p', '?q=1', '/x?q=1'],
    [policy(['/x', v('is_args'), v('args')]), '/p', '', '/x'],
    [policy(['?from=', v('args')]), '/p', '?q', '/?from=q'],
    [policy(['/mirror'], true), '/p', '?q=1', '/mirror?q=1'],
    [policy(['/mirror'], true), '/p', '', '/mirror'],
    // Raw bytes of the request line (Node reads them one character per byte) go out percent-encoded.
    [policy([v('request_uri')]), '/caf\xc3\xa9', '?n=\xff', '/caf%C3%A9?n=%FF'],
  ];

  it.each(cases)('%j %s %s', (m, path, query, out) => {
    expect(mirrorPath(m, path, query)).toBe(out);
  });
});
