// proxy-cookie-path, proxy-cookie-domain and proxy-redirect-from/-to through `netplane ingress`, beside nginx itself
// with the directives ingress-nginx writes for them (`proxy_cookie_path /two/ /one/; proxy_cookie_domain
// backend.local example.org;`, `proxy_redirect http://backend.local:8080/ https://$host/;`), both proxying to the
// same backend: the Set-Cookie, Location and Refresh headers a client gets are the same, on a plain response and (for
// cookies) on a WebSocket handshake (101); an Ingress without the annotations passes them on untouched; a regex value
// takes only its own Ingress out of service.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EchoBackend, GatewayProcess, ingressClassYaml, ingressYaml, serviceYaml, upgradeHead } from './harness.ts';
import { headOf, nginxBeside, proxyServer } from './nginx-beside.ts';

const ngx = 'nginx.ingress.kubernetes.io/';

/** What the backend sets: the cases nginx's parser treats differently (the cookie named path, spacing, case, a leading dot). */
const cookies = [
  's=1; Path=/two/x; Domain=.Backend.Local; HttpOnly',
  'path=/two; Max-Age=5;path=/two/y',
  't=2;  PATH  =  /two/z ;domain=backend.local;Secure',
  'u=3',
  'v=4;  path=/TWO/a;domain=other.local',
  'w=5; path=/twox; domain=',
  'x=6; domain=sub.backend.local; path=/two/',
];

const handshake = 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSet-Cookie: ws=1; Path=/two/ws; Domain=backend.local\r\n\r\n';

const setCookieLines = (head: string) => head.split('\r\n').filter((l) => /^set-cookie:/i.test(l)).map((l) => l.slice(l.indexOf(':') + 1).trim());

describe('proxy-cookie-path and proxy-cookie-domain, as nginx rewrites them', () => {
  const web = new EchoBackend('web');
  const gw = new GatewayProcess();
  const nginx = nginxBeside('cookie-nginx');

  beforeAll(async () => {
    web.handler = (req, res) => {
      if (req.url === '/r' || req.url === '/elsewhere' || req.url === '/rel') {
        const to = req.url === '/r' ? 'http://backend.local:8080/login?next=%2Fr' : req.url === '/rel' ? '/rel/x' : 'http://other.local/x';
        res.writeHead(302, { location: to, refresh: `3; url=${to}` });
        res.end();
        return true;
      }
      if (req.url !== '/c') return false;
      res.writeHead(200, [['set-cookie', cookies[0]!], ...cookies.slice(1).map((c) => ['set-cookie', c] as [string, string]), ['content-type', 'text/plain']].flat());
      res.end('ok');
      return true;
    };
    web.server.on('upgrade', (_req, socket) => socket.end(handshake));
    await web.start();
    await nginx.start(
      (port) => `${proxyServer(port, web.port, ['proxy_cookie_path /two/ /one/;', 'proxy_cookie_domain backend.local example.org;', 'proxy_redirect http://backend.local:8080/ https://$host/;'])}  server {
    listen 127.0.0.1:${port};
    server_name relative.test;
    port_in_redirect off;
    location / {
      proxy_pass http://127.0.0.1:${web.port};
      proxy_redirect / /app/;
    }
  }
  server {
    listen 127.0.0.1:${port};
    server_name dotted.test;
    location / {
      proxy_pass http://127.0.0.1:${web.port};
      proxy_cookie_domain .backend.local .example.org;
    }
  }
`,
    );

    const ing = (name: string, annotations: Record<string, string>) => ingressYaml({ name, host: `${name}.test`, paths: [['Prefix', '/', 'web']], annotations });
    gw.write(
      'all.yaml',
      [
        ingressClassYaml,
        serviceYaml('web', [web]),
        ing('cookie', { [`${ngx}proxy-cookie-path`]: '/two/ /one/', [`${ngx}proxy-cookie-domain`]: 'backend.local example.org' }),
        ing('plain', {}),
        ing('relative', { [`${ngx}proxy-redirect-from`]: '/', [`${ngx}proxy-redirect-to`]: '/app/' }),
        ing('dotted', { [`${ngx}proxy-cookie-domain`]: '.backend.local .example.org' }),
        ing('moved', { [`${ngx}proxy-redirect-from`]: 'http://backend.local:8080/', [`${ngx}proxy-redirect-to`]: 'https://$host/' }),
        ing('regex', { [`${ngx}proxy-cookie-path`]: '~^/two/(.*) /one/$1' }),
      ].join('---\n'),
    );
    await gw.start([], { host: 'cookie.test' });
  }, 30_000);

  afterAll(async () => {
    await gw.stop();
    await web.stop();
  });

  const through = async (port: number, host: string) => (await headOf(port, host, '/c')).headers['set-cookie'];

  it('sends the same Set-Cookie headers as nginx', async () => {
    const ours = await through(gw.http, 'cookie.test');
    expect(ours).toEqual(await through(nginx.port, 'cookie.test'));
    expect(ours).toEqual([
      's=1; Path=/one/x; Domain=.example.org; HttpOnly',
      'path=/two; Max-Age=5; path=/one/y',
      't=2; PATH=/one/z; domain=example.org; Secure',
      'u=3',
      'v=4;  path=/TWO/a;domain=other.local',
      'w=5; path=/twox; domain=',
      'x=6; domain=sub.backend.local; path=/one/',
    ]);
  });

  it('takes a domain written with a leading dot as nginx does (it drops the dot from both words)', async () => {
    const ours = await through(gw.http, 'dotted.test');
    expect(ours).toEqual(await through(nginx.port, 'dotted.test'));
    expect(ours).toContain('s=1; Path=/two/x; Domain=.example.org; HttpOnly');
  });

  it('rewrites the Set-Cookie of a WebSocket handshake as nginx does', async () => {
    const ours = setCookieLines(await upgradeHead(gw.http, 'cookie.test'));
    expect(ours).toEqual(setCookieLines(await upgradeHead(nginx.port, 'cookie.test')));
    expect(ours).toEqual(['ws=1; Path=/one/ws; Domain=example.org']);
  });

  const redirectOf = async (port: number, host: string, path: string) => {
    const r = await headOf(port, host, path);
    return [r.statusCode, r.headers.location, r.headers.refresh];
  };

  it('rewrites Location and Refresh as nginx does, the variable filled in from the request, other URLs untouched', async () => {
    for (const path of ['/r', '/elsewhere']) expect(await redirectOf(gw.http, 'moved.test', path)).toEqual(await redirectOf(nginx.port, 'moved.test', path));
    expect(await redirectOf(gw.http, 'moved.test', '/r')).toEqual([302, 'https://moved.test/login?next=%2Fr', '3; url=https://moved.test/login?next=%2Fr']);
    // A path rewritten is made absolute with the request's scheme and host (no port), as nginx's header filter does;
    // one not rewritten (plain.test) stays as it was.
    expect(await redirectOf(gw.http, 'relative.test:8080', '/rel')).toEqual(await redirectOf(nginx.port, 'relative.test:8080', '/rel'));
    expect((await redirectOf(gw.http, 'relative.test:8080', '/rel'))[1]).toBe('http://relative.test/app/rel/x');
    expect((await redirectOf(gw.http, 'plain.test', '/rel'))[1]).toBe('/rel/x');
    expect(await redirectOf(gw.http, 'plain.test', '/r')).toEqual([302, 'http://backend.local:8080/login?next=%2Fr', '3; url=http://backend.local:8080/login?next=%2Fr']);
  });

  it('passes the headers on untouched for an Ingress without the annotations', async () => {
    expect(await through(gw.http, 'plain.test')).toEqual(cookies);
    expect(setCookieLines(await upgradeHead(gw.http, 'plain.test'))).toEqual(['ws=1; Path=/two/ws; Domain=backend.local']);
  });

  it('takes an Ingress with a regex value out of service, naming the annotation, and serves the others', async () => {
    expect((await gw.get('regex.test', '/c')).status).toBe(404);
    const warning = gw.output
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((r) => r.ingress === 'default/regex' && r.level === 40);
    expect(warning?.reason).toContain(`annotation ${ngx}proxy-cookie-path is "~^/two/(.*) /one/$1"`);
    expect(await gw.metrics()).toMatch(/netplane_ingress_problems\{namespace="default",ingress="regex",served="no"\} 1/);
    expect((await gw.get('plain.test', '/c')).status).toBe(200);
  });
});
