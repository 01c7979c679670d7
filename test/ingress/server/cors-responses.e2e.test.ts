// enable-cors on every response of the route, through `netplane ingress` with curl as the browser. ingress-nginx
// writes the CORS headers with more_set_headers in the location, so they go on nginx's own answers too: an audit ran
// nginx 1.22 with headers-more and ingress-nginx's CORS block, and an allowed origin got Access-Control-Allow-Origin
// on auth_request's 401, limit_req's 429 and a refused upstream's 502, and the backend's `Vary: Accept-Encoding`
// passed untouched. netplane adds `Vary: Origin` (README), which must join the backend's Vary, not replace it: a
// cache that lost `Accept-Encoding` would hand gzipped bytes to a client that cannot read them.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import bcrypt from 'bcryptjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EchoBackend, ingressClassYaml, ingressYaml, serviceYaml } from '../e2e/harness.ts';
import { FixedPortGateway } from './fixed-ports.ts';

const run = promisify(execFile);
const ngx = 'nginx.ingress.kubernetes.io/';
const allowed = 'https://app.example.com';

describe('CORS headers on every response of the route', () => {
  const web = new EchoBackend('web');
  const gw = new FixedPortGateway(64330);

  beforeAll(async () => {
    // /vary/<value> answers with that Vary; anything else is echoed.
    web.handler = (req, res) => {
      const m = /^\/vary\/(.*)$/.exec(req.url ?? '');
      if (!m) return false;
      res.writeHead(200, { 'content-type': 'text/plain', vary: decodeURIComponent(m[1]!) }).end('ok\n');
      return true;
    };
    await new Promise<void>((r) => web.server.listen(64333, '127.0.0.1', r));
    web.port = 64333;
    const dead = new EchoBackend('dead');
    dead.port = 64334; // nothing listens there: the gateway answers 502 itself
    const cors = { [`${ngx}enable-cors`]: 'true', [`${ngx}cors-allow-origin`]: `${allowed}, https://*.example.org` };
    const ing = (name: string, annotations: Record<string, string>, svc = 'web') => ingressYaml({ name, host: `${name}.test`, paths: [['Prefix', '/', svc]], annotations });
    gw.write(
      'all.yaml',
      [
        ingressClassYaml,
        serviceYaml('web', [web]),
        serviceYaml('dead', [dead]),
        ing('listed', cors),
        ing('anyone', { [`${ngx}enable-cors`]: 'true' }),
        ing('guarded', { ...cors, [`${ngx}auth-type`]: 'basic', [`${ngx}auth-secret`]: 'users' }),
        ing('limited', { ...cors, [`${ngx}limit-rpm`]: '1', [`${ngx}limit-burst-multiplier`]: '1' }),
        ing('down', cors, 'dead'),
        `apiVersion: v1\nkind: Secret\nmetadata: { name: users, namespace: default }\ntype: Opaque\ndata: { auth: ${Buffer.from(`alice:${bcrypt.hashSync('wonderland', 4)}\n`).toString('base64')} }\n`,
      ].join('\n---\n'),
    );
    await gw.start([], { host: 'listed.test' });
  }, 30_000);

  afterAll(async () => {
    await gw.stop();
    await web.stop();
  });

  /** curl through the gateway's HTTP listener (or HTTPS with HTTP/2); the status and the headers (lower-case names, lines joined). */
  async function curl(host: string, path: string, args: string[] = [], h2 = false): Promise<{ status: number; headers: Record<string, string> }> {
    const target = h2 ? ['-k', '--http2', '--resolve', `${host}:${gw.https}:127.0.0.1`, `https://${host}:${gw.https}${path}`] : ['-H', `Host: ${host}`, `http://127.0.0.1:${gw.http}${path}`];
    const { stdout } = await run('curl', ['-s', '-o', '/dev/null', '-D', '-', ...args, ...target]);
    const lines = stdout.split('\r\n');
    const headers: Record<string, string> = {};
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':');
      if (i > 0) {
        const name = l.slice(0, i).toLowerCase();
        headers[name] = headers[name] === undefined ? l.slice(i + 1).trim() : `${headers[name]}, ${l.slice(i + 1).trim()}`;
      }
    }
    return { status: Number(lines[0]!.split(' ')[1]), headers };
  }
  const from = (origin: string) => ['-H', `Origin: ${origin}`];

  it.each([
    // [host, path, origin, Vary the client gets]
    ['listed.test', '/vary/Accept-Encoding', allowed, 'Accept-Encoding, Origin'],
    ['listed.test', '/vary/Accept-Encoding', 'https://evil.example.com', 'Accept-Encoding, Origin'],
    ['listed.test', '/vary/Accept-Encoding', undefined, 'Accept-Encoding, Origin'],
    ['listed.test', '/vary/origin%2C%20Accept', allowed, 'origin, Accept'],
    ['listed.test', '/vary/*', allowed, '*'],
    ['listed.test', '/echo', allowed, 'Origin'],
    ['listed.test', '/echo', undefined, 'Origin'],
    ['anyone.test', '/vary/Accept-Encoding', allowed, 'Accept-Encoding'],
    ['anyone.test', '/echo', allowed, undefined],
  ])('%s%s from %s: Vary %j', async (host, path, origin, vary) => {
    const r = await curl(host, path, origin === undefined ? [] : from(origin));
    expect([r.status, r.headers.vary]).toEqual([200, vary]);
  });

  it('merges the Vary of an HTTP/2 response too', async () => {
    const r = await curl('listed.test', '/vary/Accept-Encoding', from(allowed), true);
    expect([r.status, r.headers.vary, r.headers['access-control-allow-origin']]).toEqual([200, 'Accept-Encoding, Origin', allowed]);
  });

  it.each([
    // [what, host, extra curl arguments, status]
    ['auth refused', 'guarded.test', [], 401],
    ['auth passed', 'guarded.test', ['-u', 'alice:wonderland'], 200],
    ['no upstream connection', 'down.test', [], 502],
  ])('%s: %s %j answers %i with the CORS headers of an allowed origin', async (_what, host, args, status) => {
    const r = await curl(host, '/x', [...args, ...from('https://shop.example.org')]);
    expect([r.status, r.headers['access-control-allow-origin'], r.headers['access-control-allow-credentials'], r.headers.vary]).toEqual([status, 'https://shop.example.org', 'true', 'Origin']);
    const other = await curl(host, '/x', [...args, ...from('https://evil.example.com')]);
    expect([other.status, other.headers['access-control-allow-origin'], other.headers.vary]).toEqual([status, undefined, 'Origin']);
  });

  it('a rate limit refusal (429) carries them', async () => {
    // One a minute with a burst of one: the third request at the latest is refused.
    let r = await curl('limited.test', '/x', from(allowed));
    for (let i = 0; i < 3 && r.status === 200; i++) r = await curl('limited.test', '/x', from(allowed));
    expect([r.status, r.headers['access-control-allow-origin']]).toEqual([429, allowed]);
  });

  it('a preflight is still answered 204 with the preflight headers and one Vary', async () => {
    const r = await curl('listed.test', '/x', ['-X', 'OPTIONS', ...from(allowed), '-H', 'Access-Control-Request-Method: PUT']);
    expect([r.status, r.headers['access-control-allow-origin'], r.headers['access-control-max-age'], r.headers.vary]).toEqual([204, allowed, '1728000', 'Origin']);
  });
});
