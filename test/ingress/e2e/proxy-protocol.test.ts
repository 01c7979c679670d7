// `netplane ingress --proxy-protocol` behind real senders: curl --haproxy-protocol (v1), HAProxy with send-proxy and
// send-proxy-v2 in front of both listeners (HTTP, HTTPS with HTTP/2), and raw sockets for version 2 edge cases and
// for what must be refused. The client the header names — not the socket's peer, always 127.0.0.1 here, nor what
// its X-Forwarded-For says — is what X-Forwarded-For, source ranges, rate limits, the connection cap and the access
// log see. Connections count toward the cap from accept, under the peer until the header is in.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../helpers/ports.ts';
import { waitFor } from '../../helpers/wait.ts';
import { makeCert } from '../tls/pki.ts';
import { EchoBackend, GatewayProcess, ingressClassYaml, ingressYaml, serviceYaml, tlsSecretYaml, type Echo } from './harness.ts';

const run = promisify(execFile);
const ngx = 'nginx.ingress.kubernetes.io/';

/** A version 2 header: PROXY (or LOCAL) for TCP over IPv4 or IPv6, then `tlvs`; `declared` overrides the length. */
function v2(o: { local?: boolean; source?: string; port?: number; tlvs?: number[]; declared?: number }): Buffer {
  const v6 = o.source?.includes(':') ?? false;
  const addr = (a: string) => (v6 ? [...Buffer.from(expand(a), 'hex')] : a.split('.').map(Number));
  const block = o.source === undefined ? [] : [...addr(o.source), ...addr(v6 ? '::1' : '127.0.0.1'), (o.port ?? 4000) >> 8, (o.port ?? 4000) & 255, 0, 80];
  const body = [...block, ...(o.tlvs ?? [])];
  const length = o.declared ?? body.length;
  return Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, o.local ? 0x20 : 0x21, o.source === undefined ? 0 : v6 ? 0x21 : 0x11, length >> 8, length & 255, ...body]);
}
/** An IPv6 address as 32 hex digits. */
function expand(a: string): string {
  const [head = '', tail = ''] = a.split('::');
  const groups = (s: string) => (s === '' ? [] : s.split(':'));
  const h = groups(head);
  const t = groups(tail);
  return [...h, ...new Array(8 - h.length - t.length).fill('0'), ...t].map((g) => g.padStart(4, '0')).join('');
}

/** What a raw connection got back: the response's status and echo, or `closed` when nothing came before the close. */
type RawReply = { status: number; echo?: Echo } | 'closed';

/** Sends `parts` (a gap between them) then a GET for `host` with Connection: close (and `headers`) on one TCP connection. */
async function raw(port: number, parts: Buffer[], host: string, o: { localAddress?: string; gapMs?: number; request?: boolean; headers?: string } = {}): Promise<RawReply> {
  const socket = connect({ host: '127.0.0.1', port, ...(o.localAddress ? { localAddress: o.localAddress } : {}) });
  const chunks: Buffer[] = [];
  socket.on('data', (d: Buffer) => chunks.push(d));
  const closed = new Promise<void>((r) => socket.on('close', () => r()));
  socket.on('error', () => {});
  await new Promise<void>((r) => socket.once('connect', () => r()));
  const request = Buffer.from(`GET /who HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n${o.headers ?? ''}\r\n`);
  for (const part of o.request === false ? parts : [...parts, request]) {
    if (socket.destroyed) break;
    socket.write(part);
    if (o.gapMs) await new Promise((r) => setTimeout(r, o.gapMs));
  }
  await closed;
  return parseReply(Buffer.concat(chunks).toString('latin1'));
}

function parseReply(text: string): RawReply {
  if (text === '') return 'closed';
  const status = Number(text.slice(9, 12));
  const split = text.indexOf('\r\n\r\n');
  let body = text.slice(split + 4);
  if (/\r\ntransfer-encoding: chunked/i.test(text.slice(0, split))) {
    let out = '';
    for (let at = 0; ; ) {
      const eol = body.indexOf('\r\n', at);
      const size = parseInt(body.slice(at, eol), 16);
      if (!size) break;
      out += body.slice(eol + 2, eol + 2 + size);
      at = eol + 4 + size;
    }
    body = out;
  }
  return { status, ...(status === 200 ? { echo: JSON.parse(body) as Echo } : {}) };
}

const forwardedFor = (r: RawReply) => (r === 'closed' ? 'closed' : r.echo?.headers['x-forwarded-for']);

/** Resolves when `socket` is closed by the other side, with the milliseconds it took. */
function closedAfter(socket: Socket): Promise<number> {
  const t0 = Date.now();
  return new Promise((r) => socket.on('close', () => r(Date.now() - t0)));
}

describe('netplane ingress --proxy-protocol', () => {
  const web = new EchoBackend('web');
  const gw = new GatewayProcess();
  const dir = mkdtempSync(join(tmpdir(), 'netplane-haproxy-'));
  let haproxy: ChildProcess | undefined;
  let haproxyExited: Promise<unknown> | undefined;
  const hp = { v1: 0, v2: 0, tls: 0 };

  async function curl(args: string[]): Promise<{ status: number; version: string; echo?: Echo }> {
    const { stdout } = await run('curl', ['-sk', '-m', '10', '-o', '-', '-w', '\n%{http_code} %{http_version}', ...args]);
    const cut = stdout.lastIndexOf('\n');
    const [status = '0', version = ''] = stdout.slice(cut + 1).split(' ');
    return { status: Number(status), version, ...(status === '200' ? { echo: JSON.parse(stdout.slice(0, cut)) as Echo } : {}) };
  }

  beforeAll(async () => {
    await web.start();
    const cert = await makeCert('open.test');
    const ing = (name: string, annotations: Record<string, string> = {}, tls = false) =>
      ingressYaml({ name, host: `${name}.test`, paths: [['Prefix', '/', 'web']], annotations, ...(tls ? { tlsSecret: `${name}-tls` } : {}) });
    gw.write('all.yaml', [ingressClassYaml, serviceYaml('web', [web]), tlsSecretYaml('open-tls', cert), ing('open', { [`${ngx}ssl-redirect`]: 'false' }, true),
      ing('ranged', { [`${ngx}allowlist-source-range`]: '198.51.100.0/24, 127.0.0.7/32, 2001:db8::/64' }),
      ing('limited', { [`${ngx}limit-rpm`]: '1', [`${ngx}limit-burst-multiplier`]: '1' })].join('---\n'));
    await gw.start(['--proxy-protocol', '--proxy-protocol-from', '127.0.0.1/32', '--proxy-protocol-timeout', '1s', '--max-connections-per-ip', '2', '--trusted-proxies', '10.0.0.0/8']);
    await waitFor('a route for open.test', async () => (await raw(gw.http, [Buffer.from('PROXY UNKNOWN\r\n')], 'open.test')) !== 'closed', 10_000, 50);

    // HAProxy in TCP mode in front of both listeners: it connects from 127.0.0.1 and names its own client.
    [hp.v1, hp.v2, hp.tls] = [await freePort(), await freePort(), await freePort()];
    const cfg = join(dir, 'haproxy.cfg');
    writeFileSync(cfg, `global
  maxconn 100
defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
listen v1
  bind 127.0.0.1:${hp.v1}
  server gw 127.0.0.1:${gw.http} send-proxy
listen v2
  bind 127.0.0.1:${hp.v2}
  server gw 127.0.0.1:${gw.http} send-proxy-v2
listen tls
  bind 127.0.0.1:${hp.tls}
  server gw 127.0.0.1:${gw.https} send-proxy-v2
`);
    await run('sh', ['-c', 'command -v haproxy']).catch(() => {
      throw new Error('these tests need haproxy: apt-get install -y --no-install-recommends haproxy');
    });
    haproxy = spawn('haproxy', ['-db', '-f', cfg], { stdio: 'ignore' });
    haproxyExited = new Promise((r) => haproxy!.once('exit', r));
    await waitFor('haproxy to listen', async () => (await curl(['-H', 'Host: open.test', `http://127.0.0.1:${hp.v1}/`])).status === 200, 10_000, 100);
  }, 30_000);

  afterAll(async () => {
    if (haproxy && haproxy.exitCode === null) haproxy.kill('SIGTERM');
    await haproxyExited;
    rmSync(dir, { recursive: true, force: true });
    await gw.stop();
    await web.stop();
  });

  describe('behind HAProxy (send-proxy, send-proxy-v2)', () => {
    it.each([['v1', 'send-proxy'], ['v2', 'send-proxy-v2']] as const)('%s: the backend sees the client HAProxy names in X-Forwarded-For (%s)', async (which, _sender) => {
      const r = await curl(['--interface', '127.0.0.7', '-H', 'Host: open.test', `http://127.0.0.1:${hp[which]}/who`]);
      expect(r.status).toBe(200);
      expect(r.echo!.headers['x-forwarded-for']).toBe('127.0.0.7');
      expect(r.echo!.headers['x-real-ip']).toBe('127.0.0.7');
    });

    it('HTTPS with HTTP/2 through send-proxy-v2: TLS after the header, the client named', async () => {
      const r = await curl(['--http2', '--interface', '127.0.0.7', '--resolve', `open.test:${hp.tls}:127.0.0.1`, `https://open.test:${hp.tls}/who`]);
      expect(r).toMatchObject({ status: 200, version: '2' });
      expect(r.echo!.headers['x-forwarded-for']).toBe('127.0.0.7');
      expect(r.echo!.headers['x-forwarded-proto']).toBe('https');
    });

    it.each([['127.0.0.7', 200], ['127.0.0.8', 403]] as const)('a source range is checked against the named client (%s: %i)', async (from, status) => {
      // HAProxy's own address, 127.0.0.1, is outside the range: only the header's client can be let in.
      expect((await curl(['--interface', from, '-H', 'Host: ranged.test', `http://127.0.0.1:${hp.v2}/`])).status).toBe(status);
      expect((await curl(['--http2', '--interface', from, '--resolve', `ranged.test:${hp.tls}:127.0.0.1`, `https://ranged.test:${hp.tls}/`])).status).toBe(status);
    });
  });

  describe('curl --haproxy-protocol (v1)', () => {
    it.each([['HTTP/1.1', 'http', ['--http1.1']], ['HTTPS, HTTP/1.1', 'https', ['--http1.1']], ['HTTPS, HTTP/2', 'https', ['--http2']]] as const)('%s', async (_name, scheme, extra) => {
      const port = scheme === 'http' ? gw.http : gw.https;
      const r = await curl(['--haproxy-protocol', ...extra, '--resolve', `open.test:${port}:127.0.0.1`, `${scheme}://open.test:${port}/who`]);
      expect(r).toMatchObject({ status: 200, version: extra[0] === '--http2' ? '2' : '1.1' });
      expect(r.echo!.headers['x-forwarded-for']).toBe('127.0.0.1');
    });

    it('a client that sends no header gets nothing: the connection is closed, and counted', async () => {
      await expect(run('curl', ['-s', '-m', '5', '-H', 'Host: open.test', `http://127.0.0.1:${gw.http}/`])).rejects.toMatchObject({ code: 52 }); // empty reply
      await expect(run('curl', ['-sk', '-m', '5', '--resolve', `open.test:${gw.https}:127.0.0.1`, `https://open.test:${gw.https}/`])).rejects.toMatchObject({ code: 35 }); // TLS failed
      expect(await gw.metrics()).toMatch(/netplane_ingress_rejected_total\{reason="proxy-protocol-header"\} [2-9]/);
    });
  });

  describe('raw connections', () => {
    const cases: Array<[string, Buffer[], string, string | undefined, { gapMs?: number }?]> = [
      ['v1 TCP4', [Buffer.from('PROXY TCP4 198.51.100.9 127.0.0.1 4000 80\r\n')], 'open.test', '198.51.100.9'],
      ['v1 TCP6 with a mapped IPv4 client', [Buffer.from('PROXY TCP6 ::ffff:198.51.100.4 ::1 4000 80\r\n')], 'open.test', '198.51.100.4'],
      ['v1 UNKNOWN: the socket is the client', [Buffer.from('PROXY UNKNOWN\r\n')], 'open.test', '127.0.0.1'],
      ['v2 TCP over IPv4', [v2({ source: '198.51.100.10' })], 'open.test', '198.51.100.10'],
      ['v2 TCP over IPv6', [v2({ source: '2001:db8::7' })], 'open.test', '2001:db8::7'],
      ['v2 with TLVs (ALPN, authority, NOOP, custom)', [v2({ source: '198.51.100.11', tlvs: [0x01, 0, 2, 0x68, 0x32, 0x02, 0, 1, 0x61, 0x04, 0, 0, 0xea, 0, 3, 1, 2, 3] })], 'open.test', '198.51.100.11'],
      ['v2 LOCAL (a health check): the socket is the client', [v2({ local: true })], 'open.test', '127.0.0.1'],
      ['v2 header in one-byte pieces, then the request', [...v2({ source: '198.51.100.12' })].map((b) => Buffer.from([b])), 'open.test', '198.51.100.12', { gapMs: 2 }],
      ['v2 and the request in one write', [Buffer.concat([v2({ source: '198.51.100.13' }), Buffer.from('GET /who HTTP/1.1\r\nHost: open.test\r\n\r\n')])], 'open.test', '198.51.100.13'],
      ['a source range takes the v2 client (IPv6 in range)', [v2({ source: '2001:db8::9' })], 'ranged.test', '2001:db8::9'],
      ['v2 oversized length: closed', [v2({ source: '198.51.100.14', declared: 4097 })], 'open.test', 'closed'],
      ['v2 TLV running past the header: closed', [v2({ source: '198.51.100.15', tlvs: [0x02, 0, 9, 0x61] })], 'open.test', 'closed'],
      ['v2 command 2: closed', [Buffer.from([...v2({ source: '198.51.100.16' })].map((b, i) => (i === 12 ? 0x22 : b)))], 'open.test', 'closed'],
      ['v1 with LF alone: closed', [Buffer.from('PROXY TCP4 198.51.100.17 127.0.0.1 4000 80\n')], 'open.test', 'closed'],
      ['v1 with a leading zero: closed', [Buffer.from('PROXY TCP4 198.51.100.018 127.0.0.1 4000 80\r\n')], 'open.test', 'closed'],
      ['v1 over 107 bytes: closed', [Buffer.from(`PROXY UNKNOWN ${'f'.repeat(120)}\r\n`)], 'open.test', 'closed'],
      ['no header, plain HTTP: closed', [], 'open.test', 'closed'],
    ];
    for (const [name, parts, host, want, o] of cases) it(name, async () => expect(forwardedFor(await raw(gw.http, parts, host, o))).toBe(want));

    it('a source range refuses a v2 client outside it, though the socket is the same', async () => {
      expect(await raw(gw.http, [v2({ source: '203.0.113.9' })], 'ranged.test')).toMatchObject({ status: 403 });
      expect(await raw(gw.http, [v2({ source: '198.51.100.77' })], 'ranged.test')).toMatchObject({ status: 200 });
    });

    // As ingress-nginx with use-proxy-protocol ($the_real_ip is $proxy_protocol_addr, real_ip_header proxy_protocol):
    // the header's address is the client even when it is in --trusted-proxies (10.0.0.0/8 here); what it says in
    // X-Forwarded-For is passed on, extended with that address, never believed.
    // [PROXY client, X-Forwarded-For sent, host, status, X-Forwarded-For and X-Real-IP upstream]
    const forwarded: Array<[string, string | undefined, string, number, [string, string]?]> = [
      ['10.1.1.1', '127.0.0.7', 'ranged.test', 403],
      ['10.1.1.1', '203.0.113.5, 127.0.0.7', 'ranged.test', 403],
      ['10.1.1.1', undefined, 'ranged.test', 403],
      ['198.51.100.9', '203.0.113.5', 'ranged.test', 200, ['198.51.100.9', '198.51.100.9']],
      ['10.1.1.1', '203.0.113.5', 'open.test', 200, ['203.0.113.5, 10.1.1.1', '10.1.1.1']],
    ];
    for (const [client, xff, host, status, upstream] of forwarded) {
      it(`PROXY client ${client}, X-Forwarded-For ${xff ?? 'none'}: ${host} answers ${status}${upstream ? `, upstream X-Forwarded-For ${upstream[0]}` : ''}`, async () => {
        const r = await raw(gw.http, [Buffer.from(`PROXY TCP4 ${client} 127.0.0.1 4000 80\r\n`)], host, xff === undefined ? {} : { headers: `X-Forwarded-For: ${xff}\r\n` });
        expect(r === 'closed' ? 'closed' : r.status).toBe(status);
        if (upstream && r !== 'closed') expect([r.echo?.headers['x-forwarded-for'], r.echo?.headers['x-real-ip']]).toEqual(upstream);
      });
    }

    it('the access log names the PROXY client, not what its X-Forwarded-For says', async () => {
      await raw(gw.http, [Buffer.from('PROXY TCP4 10.2.2.2 127.0.0.1 4000 80\r\n')], 'open.test', { headers: 'X-Forwarded-For: 203.0.113.99\r\n' });
      await waitFor('the access log line', async () => gw.output.includes('"remote":"10.2.2.2"'), 5000, 50);
      expect(gw.output).not.toContain('"remote":"203.0.113.99"');
    });

    it('the rate limit counts each named client on its own', async () => {
      const from = (ip: string) => raw(gw.http, [Buffer.from(`PROXY TCP4 ${ip} 127.0.0.1 4000 80\r\n`)], 'limited.test');
      // rpm 1 with burst multiplier 1: two at once, then 429 — for that client only.
      const a = [await from('198.51.100.21'), await from('198.51.100.21'), await from('198.51.100.21')];
      expect(a.map((r) => (r === 'closed' ? 0 : r.status))).toEqual([200, 200, 429]);
      expect(await from('198.51.100.22')).toMatchObject({ status: 200 });
    });

    it('the access log names the header\'s client', async () => {
      await raw(gw.http, [v2({ source: '198.51.100.31' })], 'open.test');
      await waitFor('the access log line', async () => gw.output.includes('"remote":"198.51.100.31"'), 5000, 50);
    });

    it('the connection cap counts per named client, not per load balancer', async () => {
      const hold = (ip: string) => {
        const s = connect({ host: '127.0.0.1', port: gw.http });
        s.on('error', () => {});
        s.write(`PROXY TCP4 ${ip} 127.0.0.1 4000 80\r\n`);
        return s;
      };
      const held = [hold('198.51.100.41'), hold('198.51.100.41')];
      try {
        // Nothing else is open now: the gauge says when the gateway has handed both on (and counted them).
        await waitFor('both held connections', async () => /nginx_ingress_controller_nginx_process_connections\{state="active"\} 2/.test(await gw.metrics()), 5000, 20);
        const third = hold('198.51.100.41');
        expect(await closedAfter(third)).toBeLessThan(2000);
        expect(forwardedFor(await raw(gw.http, [Buffer.from('PROXY TCP4 198.51.100.43 127.0.0.1 4000 80\r\n')], 'open.test'))).toBe('198.51.100.43');
        expect(await gw.metrics()).toMatch(/netplane_ingress_rejected_total\{reason="connection-cap"\} [1-9]/);
      } finally {
        for (const s of held) s.destroy();
      }
    });

    it('a peer outside --proxy-protocol-from is closed before its header is read', async () => {
      for (const port of [gw.http, gw.https]) {
        expect(await raw(port, [Buffer.from('PROXY TCP4 198.51.100.51 127.0.0.1 4000 80\r\n')], 'open.test', { localAddress: '127.0.0.9' })).toBe('closed');
      }
      expect(await gw.metrics()).toMatch(/netplane_ingress_rejected_total\{reason="proxy-protocol-peer"\} 2/);
    });

    it('connections whose header is still to come count toward the cap, under the peer (cap 2)', async () => {
      const held = [connect({ host: '127.0.0.1', port: gw.http }), connect({ host: '127.0.0.1', port: gw.http })];
      for (const s of held) s.on('error', () => {});
      try {
        await waitFor('both held connections counted', async () => /nginx_ingress_controller_nginx_process_connections\{state="active"\} 2/.test(await gw.metrics()), 5000, 20);
        const third = connect({ host: '127.0.0.1', port: gw.http });
        third.on('error', () => {});
        expect(await closedAfter(third)).toBeLessThan(500);
      } finally {
        for (const s of held) s.destroy();
      }
      // Counted out again: a whole header is served.
      await waitFor('the held ones counted out', async () => forwardedFor(await raw(gw.http, [Buffer.from('PROXY TCP4 198.51.100.44 127.0.0.1 4000 80\r\n')], 'open.test')) === '198.51.100.44', 5000, 50);
    });

    it('a header not whole within --proxy-protocol-timeout is closed', async () => {
      const s = connect({ host: '127.0.0.1', port: gw.http });
      s.on('error', () => {});
      s.write('PROXY TCP4 198.51.100.61');
      const ms = await closedAfter(s);
      expect(ms).toBeGreaterThan(800);
      expect(ms).toBeLessThan(3000);
      expect(await gw.metrics()).toMatch(/netplane_ingress_rejected_total\{reason="proxy-protocol-timeout"\} 1/);
    });

    it('a TCP health check (connect, close) is not counted as refused', async () => {
      const before = /reason="proxy-protocol-header"\} (\d+)/.exec(await gw.metrics())?.[1];
      const s = connect({ host: '127.0.0.1', port: gw.http });
      await new Promise<void>((r) => s.once('connect', () => r()));
      s.end();
      await closedAfter(s);
      await new Promise((r) => setTimeout(r, 100));
      expect(/reason="proxy-protocol-header"\} (\d+)/.exec(await gw.metrics())?.[1]).toBe(before);
    });
  });
});
