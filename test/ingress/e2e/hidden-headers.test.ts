// The backend response headers nginx's proxy module does not pass to a client by default (proxy_hide_header's list:
// Date, Server, X-Pad, X-Accel-Expires, -Redirect, -Limit-Rate, -Buffering, -Charset) through `netplane ingress`,
// beside nginx 1.22 proxying to the same backend: over HTTP/1.1, over HTTP/2 and on a WebSocket handshake (101) the
// client gets neither the backend's Date and Server nor its X-Accel-* instructions; the Date it gets is the gateway's
// own, and every other header passes.
import { connect } from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EchoBackend, GatewayProcess, ingressClassYaml, ingressYaml, serviceYaml, upgradeHead } from './harness.ts';
import { headOf, nginxBeside, proxyServer } from './nginx-beside.ts';

const backendDate = 'Mon, 01 Jan 2001 00:00:00 GMT';
// What nginx acts on itself (X-Accel-Redirect redirects, -Limit-Rate throttles, -Charset recodes) is sent only on
// /accel, which nginx is not asked for.
const compared: Array<[string, string]> = [
  ['Date', backendDate],
  ['Server', 'backend/1'],
  ['X-Pad', 'avoid browser bug'],
  ['X-Accel-Expires', '10'],
  ['X-Accel-Buffering', 'no'],
  ['X-Accel-Other', 'passed'],
  ['X-Other', 'passed'],
];
const actedOn: Array<[string, string]> = [
  ['X-Accel-Redirect', '/internal/secret'],
  ['X-Accel-Limit-Rate', '5'],
  ['X-Accel-Charset', 'koi8-r'],
];
const hidden = ['date', 'server', 'x-pad', 'x-accel-expires', 'x-accel-redirect', 'x-accel-limit-rate', 'x-accel-buffering', 'x-accel-charset'];

const lines = (pairs: Array<[string, string]>) => pairs.map(([n, v]) => `${n}: ${v}\r\n`).join('');
const handshake = `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n${lines(compared)}\r\n`;

/** The header names of a response head (lower-case), and its Date. */
function namesOf(head: string): { names: string[]; date: string | undefined } {
  const fields = head.split('\r\n').slice(1).map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()] as const);
  return { names: fields.map(([n]) => n), date: fields.find(([n]) => n === 'date')?.[1] };
}

describe('backend response headers nginx hides by default', () => {
  const web = new EchoBackend('web');
  const gw = new GatewayProcess();
  const nginx = nginxBeside('hidden-headers');

  beforeAll(async () => {
    web.handler = (req, res) => {
      res.writeHead(200, [...compared, ...(req.url === '/accel' ? actedOn : [])].flat());
      res.end('ok');
      return true;
    };
    web.server.on('upgrade', (_req, socket) => socket.end(handshake));
    await web.start();
    await nginx.start((port) => proxyServer(port, web.port));
    gw.write('all.yaml', [ingressClassYaml, serviceYaml('web', [web]), ingressYaml({ name: 'web', host: 'web.test', paths: [['Prefix', '/', 'web']] })].join('---\n'));
    await gw.start([], { host: 'web.test' });
  }, 30_000);

  afterAll(async () => {
    await gw.stop();
    await web.stop();
  });

  const through = async (port: number, path: string) => (await headOf(port, 'web.test', path)).headers;
  const passed = (headers: Record<string, unknown>) => Object.keys(headers).filter((n) => n.startsWith('x-')).sort();

  it('passes over HTTP/1.1 the headers nginx passes, and none it hides; the Date is the gateway’s own', async () => {
    const ours = await through(gw.http, '/');
    expect(passed(ours)).toEqual(passed(await through(nginx.port, '/')));
    expect(passed(ours)).toEqual(['x-accel-other', 'x-other']);
    expect(ours.server).toBeUndefined();
    expect(ours.date).not.toBe(backendDate);
    expect(Math.abs(Date.parse(ours.date as string) - Date.now())).toBeLessThan(5_000);
    const accel = await through(gw.http, '/accel');
    for (const name of hidden.filter((n) => n !== 'date')) expect(accel[name], name).toBeUndefined();
    expect(accel.date).not.toBe(backendDate);
  });

  it('hides them over HTTP/2 as well', async () => {
    const session = connect(`https://127.0.0.1:${gw.https}`, { rejectUnauthorized: false, servername: 'web.test' });
    try {
      const headers = await new Promise<Record<string, unknown>>((resolve, reject) => {
        const req = session.request({ ':path': '/accel', ':authority': 'web.test' });
        req.on('response', (h) => {
          req.resume();
          req.on('end', () => resolve(h));
        });
        req.on('error', reject);
      });
      expect(headers[':status']).toBe(200);
      for (const name of hidden.filter((n) => n !== 'date')) expect(headers[name], name).toBeUndefined();
      expect(headers.date).not.toBe(backendDate);
      expect(passed(headers)).toEqual(['x-accel-other', 'x-other']);
    } finally {
      session.close();
    }
  });

  it('hides them on a WebSocket handshake (101) as nginx does, with the gateway’s own Date', async () => {
    const ours = namesOf(await upgradeHead(gw.http, 'web.test'));
    const theirs = namesOf(await upgradeHead(nginx.port, 'web.test'));
    const xs = (names: string[]) => names.filter((n) => n.startsWith('x-')).sort();
    expect(xs(ours.names)).toEqual(xs(theirs.names));
    expect(xs(ours.names)).toEqual(['x-accel-other', 'x-other']);
    expect(ours.names).not.toContain('server');
    expect(ours.names.filter((n) => n === 'date')).toHaveLength(1);
    expect(ours.date).not.toBe(backendDate);
    expect(theirs.date).not.toBe(backendDate);
  });
});
