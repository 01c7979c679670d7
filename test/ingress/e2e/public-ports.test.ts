// The ports clients use, when a Service or load balancer in front maps them onto the gateway's listeners (deploy/'s
// 80 -> 8080 and 443 -> 8443): --public-http-port and --public-https-port name them, so an HTTPS redirect sends the
// client to https://host/ (no port when 443, as ingress-nginx behind its own 443) rather than to the listener's
// unreachable 8443, and backends get X-Forwarded-Port 80 or 443 (ingress-nginx's $pass_port). Real processes, curl.
import { spawn } from 'node:child_process';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../helpers/wait.ts';
import { makeCert } from '../tls/pki.ts';
import { EchoBackend, GatewayProcess, ingressClassYaml, ingressYaml, serviceYaml, tlsSecretYaml, upgradeHead, type Echo } from './harness.ts';

const run = promisify(execFile);
const bin = fileURLToPath(new URL('../../../bin/netplane.ts', import.meta.url));
const ngx = 'nginx.ingress.kubernetes.io/';
// This file's ports (64400-64499): two gateways and the backend.
const port = { http: 64400, https: 64401, admin: 64402, backend: 64403, offHttp: 64404, offAdmin: 64405 };

/** The gateway on fixed ports: `http`/`https` a port or off, the rest of the command line as given. */
class FixedGateway extends GatewayProcess {
  async startOn(listen: { http: number; https: number | 'off'; admin: number }, extra: string[], probeHost: string): Promise<void> {
    this.http = listen.http;
    this.https = listen.https === 'off' ? 0 : listen.https;
    this.admin = listen.admin;
    const https = listen.https === 'off' ? 'off' : `127.0.0.1:${listen.https}`;
    const child = spawn(process.execPath, [bin, 'ingress', '--manifests', this.dir, '--http', `127.0.0.1:${listen.http}`, '--https', https, '--admin', `127.0.0.1:${listen.admin}`, '--node-name', 'test', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    child.stdout!.on('data', (d) => (this.output += d));
    child.stderr!.on('data', (d) => (this.output += d));
    this.exited = new Promise((r) => child.on('exit', (code) => r(code)));
    const died = this.exited.then((code) => Promise.reject(new Error(`the gateway exited (${code}) before it was ready:\n${this.output}`)));
    await Promise.race([waitFor('the gateway to be ready', async () => (await fetch(`http://127.0.0.1:${listen.admin}/readyz`)).status === 200, 15_000, 50), died]);
    await waitFor(`a route for ${probeHost}`, async () => (await this.get(probeHost, '/')).status !== 404, 10_000, 50);
  }
}

/** Status, Location and body of one curl request, no redirect followed (`-k`: the test certificate). */
async function curl(url: string, resolve?: string): Promise<{ status: number; location: string; body: string }> {
  const argv = ['-sk', '-m', '10', '-o', '-', '-w', '\n%{http_code} %header{location}', ...(resolve ? ['--resolve', resolve] : [])];
  const { stdout } = await run('curl', [...argv, url]);
  const cut = stdout.lastIndexOf('\n');
  const [status, location = ''] = stdout.slice(cut + 1).split(' ');
  return { status: Number(status), location, body: stdout.slice(0, cut) };
}

const echoed = (r: { body: string }) => (JSON.parse(r.body) as Echo).headers;

describe('netplane ingress --public-http-port / --public-https-port', () => {
  const web = new EchoBackend('web');
  const gw = new FixedGateway();
  const offload = new FixedGateway();

  beforeAll(async () => {
    await new Promise<void>((r) => web.server.listen(port.backend, '127.0.0.1', r));
    web.port = port.backend;
    // A WebSocket handshake's answer says the X-Forwarded-Port it came with.
    web.server.on('upgrade', (req, socket) => socket.end(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Seen-Port: ${String(req.headers['x-forwarded-port'])}\r\n\r\n`));
    const cert = await makeCert('shop.test', ['shop.test', 'open.test']);
    const manifests = [
      ingressClassYaml,
      serviceYaml('web', [web]),
      tlsSecretYaml('shop', cert),
      ingressYaml({ name: 'shop', host: 'shop.test', paths: [['Prefix', '/', 'web']], tlsSecret: 'shop' }),
      ingressYaml({ name: 'force', host: 'force.test', paths: [['Prefix', '/', 'web']], annotations: { [`${ngx}force-ssl-redirect`]: 'true' } }),
      ingressYaml({ name: 'open', host: 'open.test', paths: [['Prefix', '/', 'web']], tlsSecret: 'shop', annotations: { [`${ngx}ssl-redirect`]: 'false' } }),
    ].join('---\n');
    gw.write('all.yaml', manifests);
    offload.write('all.yaml', manifests);
    await gw.startOn({ http: port.http, https: port.https, admin: port.admin }, ['--public-http-port', '80', '--public-https-port', '443', '--access-log', 'off'], 'open.test');
    // TLS ends at a load balancer in front: no HTTPS listener, but clients reach HTTPS on 443 there.
    await offload.startOn({ http: port.offHttp, https: 'off', admin: port.offAdmin }, ['--public-https-port', '443', '--access-log', 'off'], 'open.test');
  }, 40_000);

  afterAll(async () => {
    await gw.stop();
    await offload.stop();
    await web.stop();
  });

  it.each([
    ['ssl-redirect (a TLS host)', 'shop.test', '/cart?x=1', 'https://shop.test/cart?x=1'],
    ['force-ssl-redirect', 'force.test', '/p/q', 'https://force.test/p/q'],
  ])('%s sends the client to the public HTTPS port: no port for 443', async (_, host, target, location) => {
    expect(await curl(`http://${host}:${port.http}${target}`, `${host}:${port.http}:127.0.0.1`)).toMatchObject({ status: 308, location });
  });

  it('backends get the public port as X-Forwarded-Port, over HTTP and over HTTPS (HTTP/2 and HTTP/1.1)', async () => {
    const plain = await curl(`http://open.test:${port.http}/`, `open.test:${port.http}:127.0.0.1`);
    expect(echoed(plain)).toMatchObject({ 'x-forwarded-port': '80', 'x-forwarded-proto': 'http' });
    for (const version of ['--http2', '--http1.1']) {
      const { stdout } = await run('curl', ['-sk', '-m', '10', version, '--resolve', `open.test:${port.https}:127.0.0.1`, `https://open.test:${port.https}/`]);
      expect(echoed({ body: stdout })).toMatchObject({ 'x-forwarded-port': '443', 'x-forwarded-proto': 'https' });
    }
  });

  it('a WebSocket handshake goes upstream with the public port too', async () => {
    const head = await upgradeHead(port.http, 'open.test');
    expect(head).toMatch(/^HTTP\/1\.1 101 /);
    expect(head).toMatch(/\r\nx-seen-port: 80(\r\n|$)/i);
  });

  it('with --https off, --public-https-port turns the HTTPS redirects on for TLS ended in front', async () => {
    expect(await curl(`http://shop.test:${port.offHttp}/cart`, `shop.test:${port.offHttp}:127.0.0.1`)).toMatchObject({ status: 308, location: 'https://shop.test/cart' });
    expect(await curl(`http://force.test:${port.offHttp}/p`, `force.test:${port.offHttp}:127.0.0.1`)).toMatchObject({ status: 308, location: 'https://force.test/p' });
    const plain = await curl(`http://open.test:${port.offHttp}/`, `open.test:${port.offHttp}:127.0.0.1`);
    expect(echoed(plain)).toMatchObject({ 'x-forwarded-port': String(port.offHttp) });
  });

  it.each([
    [['--public-https-port', '0'], /^netplane ingress: --public-https-port "0": must be a whole number from 1 to 65535\n$/],
    [['--public-http-port', '80x'], /^netplane ingress: --public-http-port "80x": must be a whole number from 1 to 65535\n$/],
    [['--http', 'off', '--https', '127.0.0.1:64407', '--public-http-port', '80'], /^netplane ingress: --public-http-port is given but --http is off[^\n]*\n$/],
  ])('%j is refused in one sentence, exit 2', async (args, message) => {
    const r = await run(process.execPath, [bin, 'ingress', '--manifests', gw.dir, '--admin', '127.0.0.1:64406', ...args]).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
  });
});
