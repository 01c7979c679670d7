// from-to-www-redirect through `netplane ingress`, asked with curl: a request for the other name of an Ingress's host
// (www. or not) gets a 308 to the host, its scheme, port, path and query kept; a name another Ingress routes is that
// Ingress's; HTTPS requests for the other name are answered under the host's certificate when it names both.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCert } from '../tls/pki.ts';
import { EchoBackend, GatewayProcess, ingressClassYaml, ingressYaml, peerCert, serviceYaml, tlsSecretYaml } from './harness.ts';

const run = promisify(execFile);
const ngx = 'nginx.ingress.kubernetes.io/';
const www = { [`${ngx}from-to-www-redirect`]: 'true' };

describe('netplane ingress from-to-www-redirect', () => {
  const web = new EchoBackend('web');
  const blog = new EchoBackend('blog');
  const gw = new GatewayProcess();

  /** Status, Location and body of a curl request (no redirect followed); `url` is made from `scheme://host:PORT`. */
  async function curl(scheme: 'http' | 'https', host: string, target: string, hostHeader?: string): Promise<[number, string, string]> {
    const port = scheme === 'http' ? gw.http : gw.https;
    const argv = ['-sk', '-o', '-', '-w', '\n%{http_code} %header{location}', '--resolve', `${host}:${port}:127.0.0.1`];
    if (hostHeader !== undefined) argv.push('-H', `Host: ${hostHeader}`);
    const { stdout } = await run('curl', [...argv, `${scheme}://${host}:${port}${target}`]);
    const cut = stdout.lastIndexOf('\n');
    const [status, location = ''] = stdout.slice(cut + 1).split(' ');
    return [Number(status), location, stdout.slice(0, cut)];
  }

  beforeAll(async () => {
    await web.start();
    await blog.start();
    const cert = await makeCert('example.test', ['example.test', 'www.example.test']);
    gw.write(
      'all.yaml',
      [
        ingressClassYaml,
        serviceYaml('web', [web]),
        serviceYaml('blog', [blog]),
        tlsSecretYaml('site', cert),
        ingressYaml({ name: 'site', host: 'example.test', paths: [['Prefix', '/', 'web']], annotations: www, tlsSecret: 'site' }),
        ingressYaml({ name: 'shop', host: 'www.shop.test', paths: [['Prefix', '/', 'web']], annotations: www }),
        // blog.test asks for the redirect, but www.blog.test has an Ingress of its own.
        ingressYaml({ name: 'blog', host: 'blog.test', paths: [['Prefix', '/', 'web']], annotations: www }),
        ingressYaml({ name: 'www-blog', host: 'www.blog.test', paths: [['Prefix', '/', 'blog']] }),
        ingressYaml({ name: 'plain', host: 'plain.test', paths: [['Prefix', '/', 'web']] }),
        // A catch-all, which the redirects come before.
        ingressYaml({ name: 'any', paths: [['Prefix', '/', 'blog']] }),
      ].join('---\n'),
    );
    await gw.start([], { host: 'example.test' });
  }, 30_000);
  afterAll(async () => {
    await gw.stop();
    await web.stop();
    await blog.stop();
  });

  // [what, scheme, host, target, Host header (default: the host and port), status, Location (PORT: the listener's)]
  const cases: [string, 'http' | 'https', string, string, string | undefined, number, string][] = [
    ['www to the bare host, path and query kept', 'http', 'www.example.test', '/a/b/?x=1&y=%2F', undefined, 308, 'http://example.test:PORT/a/b/?x=1&y=%2F'],
    ['the root', 'http', 'www.example.test', '/', undefined, 308, 'http://example.test:PORT/'],
    ['without a port in Host, none in Location', 'http', 'www.example.test', '/p?q', 'www.example.test', 308, 'http://example.test/p?q'],
    ['over HTTPS, the scheme kept', 'https', 'www.example.test', '/secure?k=v', undefined, 308, 'https://example.test:PORT/secure?k=v'],
    ['the bare name to the www host', 'http', 'shop.test', '/cart?id=7', undefined, 308, 'http://www.shop.test:PORT/cart?id=7'],
    ['the host itself: its own HTTPS redirect', 'http', 'example.test', '/x?y=1', undefined, 308, 'https://example.test:HTTPS/x?y=1'],
  ];

  it.each(cases)('%s', async (_what, scheme, host, target, hostHeader, status, location) => {
    const port = scheme === 'http' ? gw.http : gw.https;
    const [gotStatus, gotLocation] = await curl(scheme, host, target, hostHeader);
    expect([gotStatus, gotLocation]).toEqual([status, location.replace('PORT', String(port)).replace('HTTPS', String(gw.https))]);
  });

  it.each([
    ['the host itself', 'https', 'example.test', 'web'],
    ['a www name with its own Ingress', 'http', 'www.blog.test', 'blog'],
    ['the bare name with the annotation', 'http', 'blog.test', 'web'],
    ['the www name of an Ingress without the annotation: the catch-all', 'http', 'www.plain.test', 'blog'],
  ] as const)('serves %s (%s %s) from its route, not a redirect', async (_what, scheme, host, backend) => {
    const [status, location, body] = await curl(scheme, host, '/x?y=1');
    expect([status, location, (JSON.parse(body) as { backend: string }).backend]).toEqual([200, '', backend]);
  });

  it('answers HTTPS for the www name under the host’s certificate, which names both', async () => {
    expect((await peerCert(gw.https, 'www.example.test')).subjectaltname).toContain('DNS:www.example.test');
  });
});
