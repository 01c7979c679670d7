// The auth service's Set-Cookie (auth-url) through `netplane ingress`, beside nginx with what ingress-nginx writes
// for it (`auth_request_set $auth_cookie $upstream_http_set_cookie; add_header Set-Cookie $auth_cookie;`, with
// `always` under auth-always-set-cookie "true", and the sign-in location's own add_header): the same responses carry
// it, after the backend's own cookies. Without `always`, nginx adds it only to 200, 201, 204, 206, 301, 302, 303, 304,
// 307 and 308; with it, to every status — the backend's errors, the gateway's 502, the auth service's 401 and 403.
// Where they differ: an auth service that sets several cookies has them all passed, one header each, where nginx 1.22
// passes only the first.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../helpers/ports.ts';
import { startNginx, type TestNginx } from '../../helpers/nginx.ts';
import { EchoBackend, GatewayProcess, ingressClassYaml, ingressYaml, serviceYaml } from './harness.ts';

const ngx = 'nginx.ingress.kubernetes.io/';

/** The Set-Cookie headers of a response, each whole. */
const cookiesOf = (h: Record<string, string | string[] | undefined>) => [h['set-cookie'] ?? []].flat();

describe("the auth service's Set-Cookie, as ingress-nginx's nginx passes it", () => {
  const web = new EchoBackend('web');
  const auth = new EchoBackend('auth');
  // custom-http-errors' default-backend: answers the X-Code status, no cookie of its own.
  const errors = new EchoBackend('errors');
  const gw = new GatewayProcess();
  const dir = mkdtempSync(join(tmpdir(), 'netplane-auth-cookie-'));
  let nginx: TestNginx | undefined;
  let nginxPort = 0;
  let deadPort = 0;

  /** A GET through `port` (the gateway's or nginx's); the client says what the auth service answers. */
  async function get(port: number, host: string, path: string, verdict: number, cookies = 1): Promise<{ status: number; cookies: string[] }> {
    const r = await request(`http://127.0.0.1:${port}${path}`, { headers: { host, 'x-verdict': String(verdict), 'x-cookies': String(cookies) } });
    await r.body.dump();
    return { status: r.statusCode, cookies: cookiesOf(r.headers) };
  }

  beforeAll(async () => {
    // The auth service answers the status the client asks for, with x-cookies cookies (auth1=a, auth2=b ...).
    auth.handler = (req, res) => {
      const n = Number(req.headers['x-cookies'] ?? 1);
      const cookies = Array.from({ length: n }, (_, i) => `auth${i + 1}=${'abcdef'[i]}; Path=/; HttpOnly`);
      res.writeHead(Number(req.headers['x-verdict'] ?? 200), [['set-cookie', cookies[0]!], ...cookies.slice(1).map((c) => ['set-cookie', c]), ['www-authenticate', 'Basic realm="x"']].flat());
      res.end('auth\n');
      return true;
    };
    // /status/NNN answers NNN and sets a cookie of its own.
    web.handler = (req, res) => {
      const m = /^\/status\/(\d{3})/.exec(req.url ?? '');
      const status = m ? Number(m[1]) : 200;
      res.writeHead(status, { 'set-cookie': 'up=u; Path=/', ...(status === 302 ? { location: '/elsewhere' } : {}) });
      res.end(status === 204 || status === 304 ? undefined : 'web\n');
      return true;
    };
    errors.handler = (req, res) => {
      res.writeHead(Number(req.headers['x-code'] ?? 500), { 'content-type': 'text/plain' }).end('custom page\n');
      return true;
    };
    await web.start();
    await auth.start();
    await errors.start();
    deadPort = await freePort();
    nginxPort = await freePort();
    const d = dir;
    const location = (always: boolean, signin: boolean, backend = web.port, intercept = false) => `
    location / {
      auth_request /_auth;
      auth_request_set $auth_cookie $upstream_http_set_cookie;
      add_header Set-Cookie $auth_cookie${always ? ' always' : ''};
      ${signin ? 'error_page 401 = @signin;' : ''}
      ${intercept ? 'proxy_intercept_errors on; error_page 404 = @custom404;' : ''}
      proxy_pass http://127.0.0.1:${backend};
    }
    location @custom404 {
      proxy_set_header X-Code 404;
      proxy_pass http://127.0.0.1:${errors.port};
    }
    location @signin {
      add_header Set-Cookie $auth_cookie;
      return 302 https://login.example.com/start;
    }
    location = /_auth {
      internal;
      proxy_pass http://127.0.0.1:${auth.port}/auth;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
    }`;
    const server = (name: string, body: string) => `  server {\n    listen 127.0.0.1:${nginxPort};\n    server_name ${name};${body}\n  }\n`;
    nginx = await startNginx(d, `${server('plain.test', location(false, false))}${server('always.test', location(true, false))}${server('signin.test', location(false, true))}${server('dead.test', location(false, false, deadPort))}${server('dead-always.test', location(true, false, deadPort))}${server('errors-always.test', location(true, false, web.port, true))}`, async () => (await request(`http://127.0.0.1:${nginxPort}/`).then((r) => r.body.text().then(() => true)).catch(() => false)));

    const authUrl = { [`${ngx}auth-url`]: `http://127.0.0.1:${auth.port}/auth` };
    const always = { [`${ngx}auth-always-set-cookie`]: 'true' };
    const ing = (name: string, service: string, annotations: Record<string, string>) => ingressYaml({ name, host: `${name}.test`, paths: [['Prefix', '/', service]], annotations: { ...authUrl, ...annotations } });
    gw.write(
      'all.yaml',
      [
        ingressClassYaml,
        serviceYaml('web', [web]),
        serviceYaml('errors', [errors]),
        serviceYaml('dead', [Object.assign(new EchoBackend('dead'), { port: deadPort })]),
        ing('plain', 'web', {}),
        ing('always', 'web', always),
        ing('signin', 'web', { [`${ngx}auth-signin`]: 'https://login.example.com/start' }),
        ing('dead', 'dead', {}),
        ing('dead-always', 'dead', always),
        ing('errors-always', 'web', { ...always, [`${ngx}custom-http-errors`]: '404', [`${ngx}default-backend`]: 'errors' }),
      ].join('---\n'),
    );
    await gw.start([], { host: 'plain.test' });
  }, 30_000);

  afterAll(async () => {
    nginx?.stop();
    await gw.stop();
    await web.stop();
    await auth.stop();
    await errors.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  // [host, path, what the auth service answers]
  const cases: [string, string, number][] = [
    ...['plain.test', 'always.test'].flatMap((host) =>
      [['/', 200], ['/status/201', 200], ['/status/204', 200], ['/status/302', 200], ['/status/304', 200], ['/status/202', 200], ['/status/404', 200], ['/status/500', 200], ['/', 401], ['/', 403], ['/', 500]].map(
        ([path, verdict]) => [host, path, verdict] as [string, string, number],
      ),
    ),
    ['signin.test', '/', 401],
    ['signin.test', '/', 200],
    ['dead.test', '/', 200],
    ['dead-always.test', '/', 200],
    // The custom-http-errors page comes from another location (error_page), where the route's add_header is not.
    ['errors-always.test', '/status/404', 200],
    ['errors-always.test', '/status/500', 200],
  ];

  it.each(cases)('%s%s, the auth service answering %i: the same status and Set-Cookie headers as nginx', async (host, path, verdict) => {
    const ours = await get(gw.http, host, path, verdict);
    const theirs = await get(nginxPort, host, path, verdict);
    expect(ours).toEqual(theirs);
  });

  it('passes the auth cookie on a 200 without the annotation, and on refusals and errors only with it', async () => {
    expect((await get(gw.http, 'plain.test', '/', 200)).cookies).toEqual(['up=u; Path=/', 'auth1=a; Path=/; HttpOnly']);
    expect((await get(gw.http, 'plain.test', '/status/404', 200)).cookies).toEqual(['up=u; Path=/']);
    expect((await get(gw.http, 'always.test', '/status/404', 200)).cookies).toEqual(['up=u; Path=/', 'auth1=a; Path=/; HttpOnly']);
    expect(await get(gw.http, 'plain.test', '/', 401)).toEqual({ status: 401, cookies: [] });
    expect(await get(gw.http, 'always.test', '/', 401)).toEqual({ status: 401, cookies: ['auth1=a; Path=/; HttpOnly'] });
    expect(await get(gw.http, 'dead-always.test', '/', 200)).toEqual({ status: 502, cookies: ['auth1=a; Path=/; HttpOnly'] });
    expect(await get(gw.http, 'errors-always.test', '/status/404', 200)).toEqual({ status: 404, cookies: [] });
  });

  it('passes every cookie the auth service sets, one header each (nginx 1.22 passes the first only)', async () => {
    const three = ['auth1=a; Path=/; HttpOnly', 'auth2=b; Path=/; HttpOnly', 'auth3=c; Path=/; HttpOnly'];
    expect((await get(gw.http, 'plain.test', '/', 200, 3)).cookies).toEqual(['up=u; Path=/', ...three]);
    expect((await get(gw.http, 'always.test', '/', 403, 3)).cookies).toEqual(three);
    expect((await get(gw.http, 'signin.test', '/', 401, 3)).cookies).toEqual(three);
    // nginx puts one header of $upstream_http_set_cookie: the first cookie (1.22), or all of them joined with ", "
    // (1.23 and later), which clients read as one cookie.
    const theirs = (await get(nginxPort, 'plain.test', '/', 200, 3)).cookies;
    expect(theirs).toHaveLength(2);
    expect(theirs[1]).toMatch(/^auth1=a; Path=\/; HttpOnly/);
  });
});
