// `netplane ingress --enable-ssl-passthrough` with curl --resolve: the TLS connections of an Ingress with
// ssl-passthrough reach a real TLS backend untouched (its certificate, its ALPN, HTTP/2 included), while another
// host on the same listener is still terminated by netplane; names without the Ingress's `/` rule, without SNI, or
// unknown are terminated too. Then with --proxy-protocol as well: the PROXY header is read first, from curl
// --haproxy-protocol and from HAProxy's send-proxy-v2.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createSecureServer, type Http2SecureServer } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../helpers/ports.ts';
import { waitFor } from '../../helpers/wait.ts';
import { makeCert, type Pems } from '../tls/pki.ts';
import { EchoBackend, GatewayProcess, ingressClassYaml, ingressYaml, serviceYaml, tlsSecretYaml } from './harness.ts';

const run = promisify(execFile);
const pass = { 'nginx.ingress.kubernetes.io/ssl-passthrough': 'true' };

/** A TLS backend (HTTP/2 and HTTP/1.1) that says who answered, over which protocol, and for which name. */
class TlsBackend {
  readonly server: Http2SecureServer;
  port = 0;
  constructor(pems: Pems) {
    this.server = createSecureServer({ cert: pems.cert, key: pems.key, allowHTTP1: true }, (req, res) => {
      const socket = req.socket as TLSSocket;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ backend: 'tls', http: req.httpVersion, alpn: socket.alpnProtocol, servername: socket.servername }));
    });
  }
  async start(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }
  async stop(): Promise<void> {
    await new Promise((r) => this.server.close(r));
  }
}

/** A Service whose one endpoint is 127.0.0.1:`port`. */
const serviceAt = (name: string, port: number) => serviceYaml(name, [{ port } as EchoBackend]);

describe('netplane ingress --enable-ssl-passthrough', () => {
  const web = new EchoBackend('web');
  const gw = new GatewayProcess();
  const both = new GatewayProcess();
  const files = mkdtempSync(join(tmpdir(), 'netplane-passthrough-'));
  let backend: TlsBackend;
  let haproxy: ChildProcess | undefined;
  let haproxyExited: Promise<unknown> | undefined;
  let haproxyPort = 0;
  let closedPort = 0;

  /** curl through `port` for `host` (trusting `ca`), as the user runs it; the status, HTTP version and body. */
  async function curl(host: string, port: number, ca: string, extra: string[] = []): Promise<{ status: number; version: string; body: string }> {
    const { stdout } = await run('curl', ['-s', '-m', '10', '--cacert', join(files, `${ca}.pem`), '--resolve', `${host}:${port}:127.0.0.1`, '-w', '\n%{http_code} %{http_version}', ...extra, `https://${host}:${port}/who`]);
    const cut = stdout.lastIndexOf('\n');
    const [status = '0', version = ''] = stdout.slice(cut + 1).split(' ');
    return { status: Number(status), version, body: stdout.slice(0, cut) };
  }
  const json = (body: string) => JSON.parse(body) as Record<string, unknown>;

  beforeAll(async () => {
    await web.start();
    const backendCa = await makeCert('backend CA', ['backend-ca.invalid'], { isCa: true });
    const gatewayCa = await makeCert('gateway CA', ['gateway-ca.invalid'], { isCa: true });
    writeFileSync(join(files, 'backend.pem'), backendCa.cert);
    writeFileSync(join(files, 'gateway.pem'), gatewayCa.cert);
    backend = await new TlsBackend(await makeCert('pass.test', ['pass.test', 'wild.pass.test', 'partial.test'], { ca: backendCa })).start();
    const termCert = await makeCert('term.test', ['term.test', 'partial.test'], { ca: gatewayCa });
    closedPort = await freePort();
    const manifests = [
      ingressClassYaml,
      serviceYaml('web', [web]),
      serviceAt('tlsweb', backend.port),
      serviceAt('gone', closedPort),
      tlsSecretYaml('term-tls', termCert),
      ingressYaml({ name: 'pass', host: 'pass.test', paths: [['Prefix', '/', 'tlsweb']], annotations: pass }),
      ingressYaml({ name: 'wild', host: '*.pass.test', paths: [['Prefix', '/', 'tlsweb']], annotations: pass }),
      // Its rule is not for `/`: as in ingress-nginx, nothing to pass through, so netplane terminates.
      ingressYaml({ name: 'partial', host: 'partial.test', paths: [['Prefix', '/api', 'tlsweb']], annotations: pass, tlsSecret: 'term-tls' }),
      ingressYaml({ name: 'term', host: 'term.test', paths: [['Prefix', '/', 'web']], tlsSecret: 'term-tls' }),
      ingressYaml({ name: 'down', host: 'down.test', paths: [['Prefix', '/', 'gone']], annotations: pass }),
    ].join('---\n');
    gw.write('all.yaml', manifests);
    both.write('all.yaml', manifests);
    await gw.start(['--enable-ssl-passthrough'], { host: 'term.test' });
    await both.start(['--enable-ssl-passthrough', '--proxy-protocol', '--proxy-protocol-from', '127.0.0.1/32']);
    await waitFor('routes in the second gateway', async () => (await curl('pass.test', both.https, 'backend', ['--haproxy-protocol'])).status === 200, 10_000, 50);

    await run('sh', ['-c', 'command -v haproxy']).catch(() => {
      throw new Error('these tests need haproxy: apt-get install -y --no-install-recommends haproxy');
    });
    haproxyPort = await freePort();
    const cfg = join(files, 'haproxy.cfg');
    writeFileSync(cfg, `defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\nlisten tls\n  bind 127.0.0.1:${haproxyPort}\n  server gw 127.0.0.1:${both.https} send-proxy-v2\n`);
    haproxy = spawn('haproxy', ['-db', '-f', cfg], { stdio: 'ignore' });
    haproxyExited = new Promise((r) => haproxy!.once('exit', r));
    await waitFor('haproxy to listen', async () => (await curl('term.test', haproxyPort, 'gateway')).status === 200, 10_000, 100);
  }, 40_000);

  afterAll(async () => {
    if (haproxy && haproxy.exitCode === null) haproxy.kill('SIGTERM');
    await haproxyExited;
    await gw.stop();
    await both.stop();
    await backend.stop();
    await web.stop();
    rmSync(files, { recursive: true, force: true });
  });

  // [what, host, the CA that must verify the certificate shown, curl options, who answers, HTTP version]
  const cases: Array<[string, string, 'backend' | 'gateway', string[], 'tls' | 'web', string]> = [
    ['a passthrough host reaches the TLS backend (HTTP/1.1)', 'pass.test', 'backend', ['--http1.1'], 'tls', '1.1'],
    ['a passthrough host reaches the TLS backend (HTTP/2 by the backend\'s ALPN)', 'pass.test', 'backend', ['--http2'], 'tls', '2'],
    ['a name under a wildcard passthrough host', 'wild.pass.test', 'backend', ['--http2'], 'tls', '2'],
    ['another host on the same listener is terminated by netplane (HTTP/2)', 'term.test', 'gateway', ['--http2'], 'web', '2'],
    ['another host on the same listener is terminated by netplane (HTTP/1.1)', 'term.test', 'gateway', ['--http1.1'], 'web', '1.1'],
  ];
  for (const [name, host, ca, extra, who, version] of cases) {
    it(name, async () => {
      const r = await curl(host, gw.https, ca, extra);
      expect(r).toMatchObject({ status: 200, version });
      if (who === 'tls') expect(json(r.body)).toMatchObject({ backend: 'tls', servername: host, alpn: version === '2' ? 'h2' : 'http/1.1' });
      else expect(json(r.body)).toMatchObject({ backend: 'web', headers: { 'x-forwarded-proto': 'https' } });
    });
  }

  it('an Ingress whose passthrough rule is not for `/` is terminated (the gateway\'s certificate, its 404 for `/`)', async () => {
    const r = await curl('partial.test', gw.https, 'gateway');
    expect(r.status).toBe(404);
  });

  it('a client without SNI, and a name no Ingress has, are terminated', async () => {
    const { stdout } = await run('curl', ['-sk', '-m', '10', '-o', '/dev/null', '-w', '%{http_code}', `https://127.0.0.1:${gw.https}/`]);
    expect(stdout).toBe('404');
    // Its certificate is the gateway's default (self-signed): -k.
    const named = await run('curl', ['-sk', '-m', '10', '-o', '/dev/null', '-w', '%{http_code}', '--resolve', `nobody.test:${gw.https}:127.0.0.1`, `https://nobody.test:${gw.https}/`]);
    expect(named.stdout).toBe('404');
  });

  it('a passthrough host whose endpoint refuses: the connection is closed, the reason logged, other hosts unaffected', async () => {
    await expect(curl('down.test', gw.https, 'backend')).rejects.toMatchObject({ code: 35 });
    await waitFor('the log line', async () => gw.output.includes('TLS passthrough for down.test found no endpoint'), 5000, 50);
    expect((await curl('term.test', gw.https, 'gateway')).status).toBe(200);
  });

  it('each passed-through connection is one access-log line', async () => {
    await curl('pass.test', gw.https, 'backend');
    await waitFor('the access log line', async () => /"sni":"pass\.test","passthrough":true,"ingress":"default\/pass","backend":"default\/tlsweb:80","endpoint":"127\.0\.0\.1:\d+"/.test(gw.output), 5000, 50);
  });

  describe('with --proxy-protocol: the header first, then the ClientHello', () => {
    it.each([['HTTP/2', '--http2', '2'], ['HTTP/1.1', '--http1.1', '1.1']])('curl --haproxy-protocol, passthrough host, %s', async (_name, flag, version) => {
      const r = await curl('pass.test', both.https, 'backend', ['--haproxy-protocol', flag]);
      expect(r).toMatchObject({ status: 200, version });
      expect(json(r.body)).toMatchObject({ backend: 'tls' });
    });

    it('curl --haproxy-protocol, terminated host: the header\'s client reaches the backend', async () => {
      const r = await curl('term.test', both.https, 'gateway', ['--haproxy-protocol', '--http2']);
      expect(r).toMatchObject({ status: 200, version: '2' });
      expect(json(r.body)).toMatchObject({ backend: 'web', headers: { 'x-forwarded-for': '127.0.0.1' } });
    });

    it.each([['pass.test', 'backend', 'tls'], ['term.test', 'gateway', 'web']] as const)('HAProxy send-proxy-v2 in front: %s', async (host, ca, who) => {
      const r = await curl(host, haproxyPort, ca, ['--http2', '--interface', '127.0.0.7']);
      expect(r).toMatchObject({ status: 200, version: '2' });
      expect(json(r.body)).toMatchObject({ backend: who });
      if (who === 'web') expect(json(r.body)).toMatchObject({ headers: { 'x-forwarded-for': '127.0.0.7' } });
      else await waitFor('the access log line', async () => both.output.includes('"remote":"127.0.0.7","sni":"pass.test","passthrough":true'), 5000, 50);
    });

    it('a ClientHello without the PROXY header first is refused', async () => {
      await expect(curl('pass.test', both.https, 'backend')).rejects.toMatchObject({ code: 35 });
    });
  });

  it.each([
    [['--enable-ssl-passthrough', '--https', 'off'], '--enable-ssl-passthrough needs the HTTPS listener'],
    [['--proxy-protocol'], '--proxy-protocol needs --proxy-protocol-from'],
    [['--proxy-protocol-from', '10.0.0.0/8'], '--proxy-protocol-from is given without --proxy-protocol'],
    [['--proxy-protocol', '--proxy-protocol-from', '10.0.0.0/33'], '10.0.0.0/33'],
    [['--proxy-protocol', '--proxy-protocol-from', '10.0.0.0/8', '--proxy-protocol-timeout', '100ms'], 'proxy-protocol-timeout'],
  ])('a bad flag exits 2 with one sentence: %j', async (args, words) => {
    const r = await run(process.execPath, [join(import.meta.dirname, '../../../bin/netplane.ts'), 'ingress', '--manifests', files, ...args]).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => e,
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(words);
  });
});
