// Request body limits (ingress-nginx `proxy-body-size`, default 1m) through `netplane ingress` with curl: a declared
// length over the limit gets 413 before anything is sent upstream, a chunked body is counted as it streams, an
// Ingress may raise the limit or lift it (0), and a request within the limit reaches the backend whole. Then the
// redirect annotations: permanent-redirect, temporal-redirect with its code, app-root. Then CORS with curl as the
// browser: preflights answered before auth, headers only for allowed origins, `*` never with credentials.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import bcrypt from 'bcryptjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EchoBackend, GatewayProcess, ingressClassYaml, ingressYaml, serviceYaml, type Echo } from './harness.ts';

const run = promisify(execFile);
const ngx = 'nginx.ingress.kubernetes.io/';

describe('netplane ingress request body limits', () => {
  const web = new EchoBackend('web');
  const errors = new EchoBackend('errors');
  const vip = new EchoBackend('vip');
  const gw = new GatewayProcess();
  const files = mkdtempSync(join(tmpdir(), 'netplane-body-'));
  const twoMiB = join(files, 'two-mib');
  let seen = 0;

  /** POSTs the 2 MiB file to `host` with curl; `chunked` sends it without Content-Length. */
  async function post(host: string, chunked = false): Promise<{ status: number; echo?: Echo }> {
    const argv = ['-s', '-o', '-', '-w', '\n%{http_code}', '--data-binary', `@${twoMiB}`, '-H', `Host: ${host}`, '-H', 'Content-Type: application/octet-stream'];
    if (chunked) argv.push('-H', 'Transfer-Encoding: chunked');
    const { stdout } = await run('curl', [...argv, `http://127.0.0.1:${gw.http}/upload`], { maxBuffer: 16 << 20 });
    const cut = stdout.lastIndexOf('\n');
    const status = Number(stdout.slice(cut + 1));
    return { status, ...(status === 200 ? { echo: JSON.parse(stdout.slice(0, cut)) as Echo } : {}) };
  }

  beforeAll(async () => {
    writeFileSync(twoMiB, Buffer.alloc(2 * 1024 * 1024, 'x'));
    await web.start();
    await errors.start();
    await vip.start();
    // /status/NNN answers NNN with a body of its own; the error backend answers the X-Code it is given.
    web.handler = (req, res) => {
      const m = /^\/status\/(\d{3})/.exec(req.url ?? '');
      if (!m) return false;
      res.writeHead(Number(m[1]), { 'content-type': 'text/plain' }).end(`upstream says ${m[1]}\n`);
      return true;
    };
    errors.handler = (req, res) => {
      res.writeHead(Number(req.headers['x-code'] ?? 500), { 'content-type': 'application/json' });
      res.end(JSON.stringify({ custom: true, method: req.method, headers: req.headers }));
      return true;
    };
    web.server.on('request', () => seen++);
    const ing = (name: string, annotations: Record<string, string> = {}) => ingressYaml({ name, host: `${name}.test`, paths: [['Prefix', '/', 'web']], annotations });
    gw.write('all.yaml', [ingressClassYaml, serviceYaml('web', [web]), ing('small'), ing('large', { [`${ngx}proxy-body-size`]: '4m' }), ing('open', { [`${ngx}proxy-body-size`]: '0' }),
      ing('moved', { [`${ngx}permanent-redirect`]: 'https://new.example.com/shop' }),
      ing('down', { [`${ngx}temporal-redirect`]: 'https://status.example.com/', [`${ngx}temporal-redirect-code`]: '307' }),
      ing('rooted', { [`${ngx}app-root`]: '/app1' }),
      ing('api', { [`${ngx}enable-cors`]: 'true', [`${ngx}cors-allow-origin`]: 'https://app.example.com, https://*.example.org', [`${ngx}cors-expose-headers`]: 'X-Total', [`${ngx}auth-type`]: 'basic', [`${ngx}auth-secret`]: 'users' }),
      ing('public', { [`${ngx}enable-cors`]: 'true' }),
      ing('vhost', { [`${ngx}upstream-vhost`]: 'api.internal', [`${ngx}x-forwarded-prefix`]: '/shop' }),
      ing('custom', { [`${ngx}custom-http-errors`]: '404, 503', [`${ngx}default-backend`]: 'errors' }),
      ing('pageonly', { [`${ngx}custom-http-errors`]: '503' }),
      serviceYaml('errors', [errors]),
      // Services whose "cluster IP" is this host, on the port of the backend `vip`; their endpoint is `web`.
      ...['meshed', 'unmeshed'].map(
        (svc) =>
          `---\napiVersion: v1\nkind: Service\nmetadata: { name: ${svc}, namespace: default }\nspec: { clusterIP: 127.0.0.1, ports: [{ name: http, port: ${vip.port}, targetPort: http, protocol: TCP }] }\n` +
          `---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: { name: ${svc}-0, namespace: default, labels: { kubernetes.io/service-name: ${svc} } }\naddressType: IPv4\nports: [{ name: http, port: ${web.port}, protocol: TCP }]\nendpoints: [{ addresses: ["127.0.0.1"], conditions: { ready: true } }]\n`,
      ),
      ...[['direct', 'false', 'unmeshed'], ['mesh', 'true', 'meshed']].map(([name, via, svc]) =>
        `---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: { name: ${name}, namespace: default, annotations: { nginx.ingress.kubernetes.io/service-upstream: "${via}" } }\nspec: { ingressClassName: netplane, rules: [{ host: ${name}.test, http: { paths: [{ path: /, pathType: Prefix, backend: { service: { name: ${svc}, port: { number: ${vip.port} } } } }] } }] }\n`),
      `---\napiVersion: v1\nkind: Secret\nmetadata: { name: users, namespace: default }\ntype: Opaque\ndata: { auth: ${Buffer.from(`alice:${bcrypt.hashSync('wonderland', 4)}\n`).toString('base64')} }\n`].join('---\n'));
    await gw.start([], { host: 'small.test' });
  }, 30_000);
  afterAll(async () => {
    await gw.stop();
    await web.stop();
    await errors.stop();
    await vip.stop();
    rmSync(files, { recursive: true, force: true });
  });

  it.each([false, true])('refuses 2 MiB over the default 1m limit with 413 (chunked: %s)', async (chunked) => {
    const before = seen;
    expect((await post('small.test', chunked)).status).toBe(413);
    // A declared length is refused before anything goes upstream; a chunked body is cut on its way there.
    if (!chunked) expect(seen).toBe(before);
    // A small body still passes.
    const ok = await gw.get('small.test', '/upload', { method: 'POST', body: 'hello' });
    expect(ok.status).toBe(200);
  });

  it.each([
    ['an Ingress that raises the limit to 4m', 'large.test'],
    ['an Ingress that lifts it (0)', 'open.test'],
  ])('lets 2 MiB through %s, whole', async (_what, host) => {
    for (const chunked of [false, true]) {
      const r = await post(host, chunked);
      expect(r.status).toBe(200);
      expect(r.echo!.body.length).toBe(2 * 1024 * 1024);
    }
  });

  it.each([
    ['moved.test', '/any/path?q=1', 301, 'https://new.example.com/shop'],
    ['down.test', '/', 307, 'https://status.example.com/'],
    ['rooted.test', '/?lang=en', 302, '/app1?lang=en'],
  ])('redirects %s%s with %i to %s', async (host, path, status, location) => {
    const r = await gw.get(host, path);
    expect([r.status, r.headers.location]).toEqual([status, location]);
  });

  it('app-root leaves every other path to the backend', async () => {
    const r = await gw.get('rooted.test', '/app1/page');
    expect(r.status).toBe(200);
    expect((JSON.parse(r.text) as Echo).url).toBe('/app1/page');
  });

  /** A request with curl; the status and the response headers (lower-case names). */
  async function headersOf(host: string, args: string[]): Promise<{ status: number; headers: Record<string, string> }> {
    const { stdout } = await run('curl', ['-s', '-o', '/dev/null', '-D', '-', '-H', `Host: ${host}`, ...args, `http://127.0.0.1:${gw.http}/items`]);
    const lines = stdout.split('\r\n');
    const headers: Record<string, string> = {};
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':');
      if (i > 0) headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
    }
    return { status: Number(lines[0]!.split(' ')[1]), headers };
  }

  it('answers a CORS preflight itself, before auth, for an allowed origin', async () => {
    const r = await headersOf('api.test', ['-X', 'OPTIONS', '-H', 'Origin: https://shop.example.org', '-H', 'Access-Control-Request-Method: PUT']);
    expect(r.status).toBe(204);
    expect(r.headers).toMatchObject({
      'access-control-allow-origin': 'https://shop.example.org',
      'access-control-allow-credentials': 'true',
      'access-control-allow-methods': 'GET, PUT, POST, DELETE, PATCH, OPTIONS',
      'access-control-max-age': '1728000',
      vary: 'Origin',
    });
    const other = await headersOf('api.test', ['-X', 'OPTIONS', '-H', 'Origin: https://evil.example.com', '-H', 'Access-Control-Request-Method: PUT']);
    expect(other.status).toBe(204);
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('adds CORS headers to responses for allowed origins only, after auth', async () => {
    const user = ['-u', 'alice:wonderland'];
    const ok = await headersOf('api.test', [...user, '-H', 'Origin: https://app.example.com']);
    expect(ok.status).toBe(200);
    expect(ok.headers).toMatchObject({ 'access-control-allow-origin': 'https://app.example.com', 'access-control-allow-credentials': 'true', 'access-control-expose-headers': 'X-Total' });
    expect(ok.headers['access-control-allow-methods']).toBeUndefined();
    expect((await headersOf('api.test', [...user, '-H', 'Origin: https://evil.example.com'])).headers['access-control-allow-origin']).toBeUndefined();
    expect((await headersOf('api.test', ['-H', 'Origin: https://app.example.com'])).status).toBe(401);
    const any = await headersOf('public.test', ['-H', 'Origin: https://anyone.example.net']);
    expect(any.headers['access-control-allow-origin']).toBe('*');
    expect(any.headers['access-control-allow-credentials']).toBeUndefined();
  });

  it('sends the upstream-vhost as Host and the x-forwarded-prefix, whatever the client sent', async () => {
    const r = await gw.get('vhost.test', '/items', { headers: { 'x-forwarded-prefix': '/spoofed' } });
    const seenHeaders = (JSON.parse(r.text) as Echo).headers;
    expect([seenHeaders.host, seenHeaders['x-forwarded-prefix'], seenHeaders['x-forwarded-host']]).toEqual(['api.internal', '/shop', 'vhost.test']);
  });

  it('answers the listed upstream statuses from the default-backend, with ingress-nginx headers', async () => {
    const r = await gw.get('custom.test', '/status/503?x=1', { method: 'POST', body: 'payload', headers: { accept: 'application/json' } });
    expect(r.status).toBe(503);
    const body = JSON.parse(r.text) as { custom: boolean; method: string; headers: Record<string, string> };
    expect(body.custom).toBe(true);
    expect(body.method).toBe('GET');
    expect(body.headers).toMatchObject({ 'x-code': '503', 'x-format': 'application/json', 'x-original-uri': '/status/503?x=1', 'x-namespace': 'default', 'x-ingress-name': 'custom', 'x-service-name': 'web', 'x-service-port': '80' });
    expect(body.headers['content-length']).toBeUndefined();
    expect((await gw.get('custom.test', '/status/404')).status).toBe(404);
    // Statuses not listed are the upstream's own.
    const other = await gw.get('custom.test', '/status/500');
    expect([other.status, other.text]).toEqual([500, 'upstream says 500\n']);
  });

  it("answers a listed status with the gateway's own page when no default-backend is named", async () => {
    const r = await gw.get('pageonly.test', '/status/503');
    expect(r.status).toBe(503);
    expect(r.text).not.toContain('upstream says');
    expect(r.text).toContain('503');
  });

  it("service-upstream sends to the Service's cluster IP and port, not to its endpoints", async () => {
    expect((JSON.parse((await gw.get('direct.test', '/')).text) as Echo).backend).toBe('web');
    expect((JSON.parse((await gw.get('mesh.test', '/')).text) as Echo).backend).toBe('vip');
  });
});
