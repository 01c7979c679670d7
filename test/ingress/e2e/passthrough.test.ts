// `netplane ingress --enable-ssl-passthrough` with curl --resolve: the TLS connections of an Ingress with
// ssl-passthrough reach a real TLS backend untouched (its certificate, its ALPN, HTTP/2 included), while another
// host on the same listener is still terminated by netplane; names without the Ingress's `/` rule, without SNI, or
// unknown, and its www. and server-alias names, are terminated too. The Ingress's source range and
// limit-connections apply per connection; auth beside it is refused; the served version decides, never a refused
// edit. Clients that reset at every stage never bring the gateway down; connections count toward
// --max-connections-per-ip while their ClientHello is read; a ClientHello in one-byte records costs little CPU.
// Then with --proxy-protocol as well: the PROXY header is read first, from curl --haproxy-protocol and from
// HAProxy's send-proxy-v2.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createSecureServer, type Http2SecureServer } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../helpers/ports.ts';
import { waitFor } from '../../helpers/wait.ts';
import { makeCert, type Pems } from '../tls/pki.ts';
import { captureHello, closedOf, cpuSeconds, dripHello, proxyV1, rude, seeded, type Leaving, type Stage } from './edge-clients.ts';
import { b64, EchoBackend, GatewayProcess, ingressClassYaml, ingressYaml, serviceYaml, tlsSecretYaml, listenLoopback } from './harness.ts';

const run = promisify(execFile);
const ngx = 'nginx.ingress.kubernetes.io/';
const pass = { [`${ngx}ssl-passthrough`]: 'true' };
const basic = { [`${ngx}auth-type`]: 'basic', [`${ngx}auth-secret`]: 'users' };
const usersYaml = `---\napiVersion: v1\nkind: Secret\nmetadata: { name: users, namespace: default }\ntype: Opaque\ndata: { auth: ${b64('u:$apr1$netplane$7lzL61udsnXs2tfbjup3y/\n')} }\n`;

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
    this.port = await listenLoopback(this.server);
    return this;
  }
  async stop(): Promise<void> {
    await new Promise((r) => this.server.close(r));
  }
}

/** A TLS connection to `servername` through the gateway, verified against `caFile`, once its handshake is done. */
function tlsOpen(port: number, servername: string, caFile: string): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, servername, ca: readFileSync(caFile) }, () => resolve(s));
    s.once('error', reject);
  });
}

/** Whether a TLS handshake for `servername` through the gateway succeeds (the connection is closed at once). */
const handshakeOK = (port: number, servername: string, caFile: string) =>
  tlsOpen(port, servername, caFile).then(
    (s) => (s.destroy(), true),
    () => false,
  );

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
    backend = await new TlsBackend(await makeCert('pass.test', ['pass.test', 'wild.pass.test', 'partial.test', 'ranged.test', 'limited.test', 'pass2.test', 'back.test', 'pt.test'], { ca: backendCa })).start();
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
      ingressYaml({ name: 'ranged', host: 'ranged.test', paths: [['Prefix', '/', 'tlsweb']], annotations: { ...pass, [`${ngx}allowlist-source-range`]: '127.0.0.7/32, 198.51.100.0/24', [`${ngx}denylist-source-range`]: '198.51.100.66' } }),
      ingressYaml({ name: 'limited', host: 'limited.test', paths: [['Prefix', '/', 'tlsweb']], annotations: { ...pass, [`${ngx}limit-connections`]: '1' } }),
      usersYaml,
      ingressYaml({ name: 'authpass', host: 'authpass.test', paths: [['Prefix', '/', 'tlsweb']], annotations: { ...pass, ...basic } }),
      ingressYaml({ name: 'pass2', host: 'pass2.test', paths: [['Prefix', '/', 'tlsweb']], annotations: { ...pass, [`${ngx}from-to-www-redirect`]: 'true', [`${ngx}server-alias`]: 'alias2.test' } }),
    ].join('---\n');
    gw.write('all.yaml', manifests);
    both.write('all.yaml', manifests);
    // Rewritten by the tests of refused edits.
    gw.write('pt.yaml', ingressYaml({ name: 'pt', host: 'pt.test', paths: [['Prefix', '/', 'tlsweb']], annotations: basic }));
    gw.write('back.yaml', ingressYaml({ name: 'back', host: 'back.test', paths: [['Prefix', '/', 'tlsweb']], annotations: pass }));
    await gw.start(['--enable-ssl-passthrough', '--max-connections-per-ip', '4'], { host: 'term.test' });
    await both.start(['--enable-ssl-passthrough', '--proxy-protocol', '--proxy-protocol-from', '127.0.0.0/8', '--max-connections-per-ip', '4']);
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

  /** The issuer of the certificate a TLS client gets for `name` (the backend's CA when passed through); closed after. */
  const issuer = (port: number, name: string) =>
    new Promise<string>((resolve, reject) => {
      const s = tlsConnect({ host: '127.0.0.1', port, servername: name, rejectUnauthorized: false }, () => {
        const cn = String(s.getPeerCertificate().issuer.CN);
        s.once('close', () => resolve(cn)).destroy();
      });
      s.once('error', reject);
    });
  /** curl -k for `host`: the status (0: the connection failed). */
  const status = async (host: string, port: number, extra: string[] = []) => {
    const r = await run('curl', ['-sk', '-m', '10', '-o', '/dev/null', '-w', '%{http_code}', '--resolve', `${host}:${port}:127.0.0.1`, ...extra, `https://${host}:${port}/`]).catch((e: { stdout: string }) => e);
    return Number(r.stdout);
  };

  it('the www. name and the server-alias of a passthrough Ingress are terminated: only its own host is passed through', async () => {
    expect(await issuer(gw.https, 'pass2.test')).toBe('backend CA');
    expect(await issuer(gw.https, 'www.pass2.test')).not.toBe('backend CA');
    expect(await issuer(gw.https, 'alias2.test')).not.toBe('backend CA');
    expect(await status('www.pass2.test', gw.https)).toBe(308);
  });

  it.each([['127.0.0.7', 200], ['127.0.0.8', 0]] as const)('a passthrough Ingress\'s source range is checked per connection: from %s, %i', async (from, want) => {
    const r = await curl('ranged.test', gw.https, 'backend', ['--interface', from]).catch(() => ({ status: 0 }));
    expect(r.status).toBe(want);
    if (want === 0) {
      await waitFor('the access log line', async () => gw.output.includes(`"remote":"${from}","sni":"ranged.test","passthrough":true,"ingress":"default/ranged","backend":"default/tlsweb:80","refused":"source-range"`), 5000, 50);
      expect(await gw.metrics()).toMatch(/netplane_ingress_rejected_total\{reason="source-range"\} [1-9]/);
    }
  });

  it('limit-connections: a second passed-through connection from one client is closed while the first is open', async () => {
    const ca = join(files, 'backend.pem');
    const open = () => handshakeOK(gw.https, 'limited.test', ca);
    const first = await tlsOpen(gw.https, 'limited.test', ca);
    try {
      expect(await open()).toBe(false);
    } finally {
      first.destroy();
    }
    await waitFor('the first connection counted out', open, 5000, 50);
  });

  it('a passthrough Ingress with basic auth is refused (logged, counted), never passed through', async () => {
    await waitFor('the problem', async () => /Ingress default\/authpass: annotation nginx\.ingress\.kubernetes\.io\/ssl-passthrough is \\?"true\\?" while nginx\.ingress\.kubernetes\.io\/auth-type is/.test(gw.output), 5000, 50);
    expect(await gw.metrics()).toMatch(/netplane_ingress_problems\{namespace="default",ingress="authpass",served="no"\} 1/);
    expect(await issuer(gw.https, 'authpass.test')).not.toBe('backend CA');
    expect(await status('authpass.test', gw.https)).toBe(404);
  });

  it('a refused edit that adds ssl-passthrough changes nothing: the last good version, with its basic auth, is served', async () => {
    expect(await status('pt.test', gw.https)).toBe(401);
    gw.write('pt.yaml', ingressYaml({ name: 'pt', host: 'pt.test', paths: [['Prefix', '/', 'tlsweb']], annotations: { ...basic, ...pass, [`${ngx}limit-rps`]: 'lots' } }));
    await waitFor('the refused edit', async () => gw.output.includes('Ingress default/pt: annotation nginx.ingress.kubernetes.io/limit-rps is'), 10_000, 50);
    expect(await issuer(gw.https, 'pt.test')).not.toBe('backend CA');
    expect(await status('pt.test', gw.https)).toBe(401);
  });

  it('a refused edit that drops ssl-passthrough changes nothing: the last good version is still passed through', async () => {
    expect((await curl('back.test', gw.https, 'backend')).status).toBe(200);
    gw.write('back.yaml', ingressYaml({ name: 'back', host: 'back.test', paths: [['Prefix', '/', 'tlsweb']], annotations: { [`${ngx}limit-rps`]: 'lots' } }));
    await waitFor('the refused edit', async () => gw.output.includes('Ingress default/back: annotation nginx.ingress.kubernetes.io/limit-rps is'), 10_000, 50);
    expect(await curl('back.test', gw.https, 'backend')).toMatchObject({ status: 200 });
  });

  it('connections count toward --max-connections-per-ip while their ClientHello is read (cap 4)', async () => {
    expect(await closedOf(gw.https, 8, { localAddress: '127.0.0.20', ms: 500 })).toBe(4);
    expect(await closedOf(gw.https, 8, { localAddress: '127.0.0.21', send: Buffer.from([0x16, 0x03, 0x01]), ms: 500 })).toBe(4);
    expect((await curl('pass.test', gw.https, 'backend')).status).toBe(200);
  });

  it('a ClientHello in one-byte records, the last 2,300 of its 16,384 arriving one by one, costs the gateway little CPU', async () => {
    // Each arrival re-read every record so far (some 14,000, 84 KB), seconds of CPU in all; read once, almost none.
    const before = cpuSeconds(gw.child!.pid!);
    await dripHello(gw.https, { front: 14_000, drip: 2300 });
    const used = cpuSeconds(gw.child!.pid!) - before;
    expect(used).toBeLessThan(0.5);
  }, 30_000);

  describe('clients that go away at any moment never bring the gateway down', () => {
    const hellos: Record<string, Buffer> = {};
    beforeAll(async () => {
      for (const name of ['pass.test', 'down.test', 'term.test', 'nobody.test']) hellos[name] = await captureHello(name);
    });

    it('a reset right after the ClientHello of a passthrough host (while the backend is connected), 30 times', async () => {
      for (let i = 0; i < 30; i++) {
        await rude(gw.https, { hello: hellos['pass.test']!, stage: 'backend-connect', leaving: 'reset', localAddress: '127.0.0.30', random: seeded(i) });
      }
      expect(gw.child!.exitCode).toBeNull();
      expect((await curl('pass.test', gw.https, 'backend')).status).toBe(200);
    });

    /** Every stage × way of leaving × name, `rounds` times, `parallel` at once, from rotating local addresses. */
    async function fuzz(target: GatewayProcess, withHeader: boolean, seed: number): Promise<number> {
      const random = seeded(seed);
      const stages: Stage[] = [...(withHeader ? (['proxy-header'] as const) : []), 'client-hello', 'backend-connect', 'splice'];
      const leavings: Leaving[] = ['reset', 'close', 'end'];
      const jobs: Array<() => Promise<void>> = [];
      for (let round = 0; round < 5; round++) {
        for (const stage of stages) {
          for (const leaving of leavings) {
            for (const name of Object.keys(hellos)) {
              const n = jobs.length;
              const header = withHeader ? proxyV1(`198.51.100.${1 + (n % 200)}`) : undefined;
              jobs.push(() => rude(target.https, { ...(header ? { header } : {}), hello: hellos[name]!, stage, leaving, localAddress: `127.0.1.${1 + (n % 250)}`, random }));
            }
          }
        }
      }
      for (let i = 0; i < jobs.length; i += 12) await Promise.all(jobs.slice(i, i + 12).map((job) => job()));
      return jobs.length;
    }

    it.each([['no PROXY header', false], ['after a PROXY header', true]] as const)('%s: resets and closes in the PROXY header, the ClientHello, the backend connect and the splice', async (_name, withHeader) => {
      const target = withHeader ? both : gw;
      const seed = withHeader ? 4242 : 2424;
      const n = await fuzz(target, withHeader, seed);
      expect(n).toBe(withHeader ? 240 : 180);
      await new Promise((r) => setTimeout(r, 200));
      expect(target.child!.exitCode, `seed ${seed}`).toBeNull();
      expect(target.output).not.toMatch(/Unhandled|uncaught|ECONNRESET\n/i);
      const extra = withHeader ? ['--haproxy-protocol'] : [];
      expect((await curl('pass.test', target.https, 'backend', extra)).status).toBe(200);
      expect((await curl('term.test', target.https, 'gateway', extra)).status).toBe(200);
    }, 60_000);
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

    it.each([['127.0.0.7', 200], ['127.0.0.8', 0]] as const)('the source range is checked against the header\'s client: %s, %i', async (from, want) => {
      const r = await curl('ranged.test', both.https, 'backend', ['--haproxy-protocol', '--interface', from]).catch(() => ({ status: 0 }));
      expect(r.status).toBe(want);
    });

    it('connections count toward --max-connections-per-ip from accept: under the balancer while the header is read, then under its client (cap 4)', async () => {
      // No header yet: counted under the peer.
      expect(await closedOf(both.https, 8, { localAddress: '127.0.0.40', ms: 500 })).toBe(4);
      // A header naming one client, then no ClientHello: counted under that client, whatever the peer.
      expect(await closedOf(both.https, 8, { localAddress: '127.0.0.41', send: proxyV1('198.51.100.5'), ms: 500 })).toBe(4);
      expect((await curl('pass.test', both.https, 'backend', ['--haproxy-protocol'])).status).toBe(200);
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
