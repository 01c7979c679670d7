import { request as httpRequest, createServer, type Server } from 'node:http';
import { SocketAddress, type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { clientIP, normalizeIP, TrustedProxies, TrustedProxiesError } from '../../../ingress/limits/client-ip.ts';

const none = TrustedProxies.parse([]);
const lb = TrustedProxies.parse(['10.0.0.0/8', 'fd00::/8', '192.0.2.10']);

describe('clientIP', () => {
  const cases: Array<[string, string | undefined, string | string[] | undefined, TrustedProxies, string]> = [
    ['socket address when nothing is trusted', '198.51.100.1', undefined, none, '198.51.100.1'],
    ['spoofed XFF from an untrusted socket is ignored', '198.51.100.1', '1.2.3.4', none, '198.51.100.1'],
    ['spoofed XFF from an untrusted socket, with proxies configured', '198.51.100.1', '10.0.0.1', lb, '198.51.100.1'],
    ['IPv4-mapped socket address', '::ffff:198.51.100.1', undefined, none, '198.51.100.1'],
    ['IPv4-mapped untrusted socket address, XFF ignored', '::ffff:198.51.100.1', '1.2.3.4', lb, '198.51.100.1'],
    ['IPv4-mapped trusted socket address', '::ffff:10.1.2.3', '203.0.113.5', lb, '203.0.113.5'],
    ['trusted socket: the hop it added', '10.0.0.1', '203.0.113.5', lb, '203.0.113.5'],
    ['client-supplied entries left of the real one are ignored', '10.0.0.1', '6.6.6.6, 203.0.113.5', lb, '203.0.113.5'],
    ['two trusted proxies', '10.0.0.1', '6.6.6.6, 203.0.113.5, 10.9.9.9', lb, '203.0.113.5'],
    ['single trusted address', '192.0.2.10', '203.0.113.5', lb, '203.0.113.5'],
    ['every hop trusted: the leftmost', '10.0.0.1', '10.0.0.3, 10.0.0.2', lb, '10.0.0.3'],
    ['an unparseable hop stops at the last good one', '10.0.0.1', 'garbage, 10.0.0.2', lb, '10.0.0.2'],
    ['an unparseable rightmost hop: the socket', '10.0.0.1', '203.0.113.5, garbage', lb, '10.0.0.1'],
    ['repeated headers are one list, in order', '10.0.0.1', ['6.6.6.6', '203.0.113.5, 10.0.0.7'], lb, '203.0.113.5'],
    ['empty entries are skipped', '10.0.0.1', '203.0.113.5, , ', lb, '203.0.113.5'],
    ['empty header: the socket', '10.0.0.1', '', lb, '10.0.0.1'],
    ['IPv6 proxy and client, lower-cased', 'fd00::1', '2001:DB8::7', lb, '2001:db8::7'],
    ['IPv4-mapped hop', '10.0.0.1', '::ffff:203.0.113.5', lb, '203.0.113.5'],
    ['hop with a port', '10.0.0.1', '203.0.113.5:41000', lb, '203.0.113.5'],
    ['bracketed IPv6 hop with a port', '10.0.0.1', '[2001:db8::7]:443', lb, '2001:db8::7'],
    ['an IPv6 hop written out in full is the client of its short form', '10.0.0.1', '2001:0db8:0:0:0:0:0:0007', lb, '2001:db8::7'],
    ['no socket address (closed)', undefined, '203.0.113.5', lb, ''],
  ];
  for (const [name, remote, xff, trusted, want] of cases) it(name, () => expect(clientIP(remote, xff, trusted)).toBe(want));
});

describe('normalizeIP', () => {
  const cases: Array<[string, string | undefined]> = [
    ['1.2.3.4', '1.2.3.4'],
    [' 1.2.3.4 ', '1.2.3.4'],
    ['::FFFF:1.2.3.4', '1.2.3.4'],
    ['0:0:0:0:0:ffff:1.2.3.4', '1.2.3.4'],
    ['::ffff:a01:203', '10.1.2.3'],
    ['::1.2.3.4', '::1.2.3.4'],
    ['64:ff9b::1.2.3.4', '64:ff9b::102:304'],
    ['2001:DB8::1', '2001:db8::1'],
    // One client, one key, however a proxy spells it: the form libuv gives socket addresses (RFC 5952).
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['2001:db8:0::1', '2001:db8::1'],
    ['2001:db8::0:1', '2001:db8::1'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['0::0', '::'],
    ['1:0:0:2:0:0:0:3', '1:0:0:2::3'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['fe80::1%eth0', 'fe80::1%eth0'],
    ['[::1]', '::1'],
    ['1.2.3', undefined],
    ['1.2.3.4.5', undefined],
    ['example.com', undefined],
    ['', undefined],
  ];
  for (const [input, want] of cases) it(JSON.stringify(input), () => expect(normalizeIP(input)).toBe(want));

  it('writes IPv6 as libuv writes socket addresses, for addresses with many zero runs', () => {
    // Groups of 0, 1 and random values, in every spelling: written out, and as libuv writes them.
    let seed = 7;
    const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
    for (let n = 0; n < 5000; n++) {
      const groups = Array.from({ length: 8 }, () => [0, 0, 1, next() % 65536][next() % 4]!);
      const full = groups.map((g) => g.toString(16).padStart(4, '0')).join(':');
      const libuv = SocketAddress.parse(`[${full}]:0`)!.address;
      if (libuv.startsWith('::ffff:')) continue;
      expect([normalizeIP(full), normalizeIP(libuv), normalizeIP(full.toUpperCase())], full).toEqual([libuv, libuv, libuv]);
    }
  });
});

describe('TrustedProxies', () => {
  const membership: Array<[string, boolean]> = [
    ['10.255.255.255', true],
    ['11.0.0.0', false],
    ['::ffff:10.0.0.1', true],
    ['fd12::1', true],
    ['fe80::1', false],
    ['192.0.2.10', true],
    ['192.0.2.11', false],
    ['not an ip', false],
  ];
  for (const [ip, want] of membership) it(`has(${ip}) is ${want}`, () => expect(lb.has(ip)).toBe(want));

  it('an empty list trusts nothing; 0.0.0.0/0 trusts all IPv4', () => {
    expect(none.has('127.0.0.1')).toBe(false);
    const all = TrustedProxies.parse(['0.0.0.0/0']);
    expect(all.has('203.0.113.9')).toBe(true);
    expect(all.has('::1')).toBe(false);
  });

  const bad = ['10.0.0.0/33', 'fd00::/129', '10.0.0.0/8/8', '10.0.0/8', 'example.com', '10.0.0.0/x', ''];
  for (const entry of bad) {
    it(`refuses ${JSON.stringify(entry)}`, () => {
      let error: unknown;
      try {
        TrustedProxies.parse(['10.0.0.0/8', entry]);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(TrustedProxiesError);
      expect((error as TrustedProxiesError).code).toBe('NETPLANE_INGRESS_TRUSTED_PROXIES');
      expect((error as Error).message).toContain(JSON.stringify(entry));
    });
  }
});

describe('clientIP on a real server', () => {
  let server: Server | undefined;
  afterEach(async () => {
    server?.closeAllConnections();
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    server = undefined;
  });

  async function ask(listenHost: string, connectHost: string, trusted: TrustedProxies, xff?: string): Promise<string> {
    server = createServer((req, res) => res.end(clientIP(req.socket.remoteAddress, req.headers['x-forwarded-for'], trusted)));
    await new Promise<void>((r) => server!.listen({ host: listenHost, port: 0, ipv6Only: false }, r));
    const port = (server.address() as AddressInfo).port;
    return new Promise((resolve, reject) => {
      const req = httpRequest({ host: connectHost, port, headers: xff ? { 'x-forwarded-for': xff } : {} }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve(body));
      });
      req.on('error', reject);
      req.end();
    });
  }

  const cases: Array<[string, string, string, TrustedProxies, string | undefined, string]> = [
    ['IPv4 client, spoofed XFF ignored', '127.0.0.1', '127.0.0.1', none, '6.6.6.6', '127.0.0.1'],
    ['IPv4 client on a dual-stack socket (mapped address) is normalised', '::', '127.0.0.1', none, undefined, '127.0.0.1'],
    ['trusted local proxy: XFF believed', '::', '127.0.0.1', TrustedProxies.parse(['127.0.0.0/8']), '6.6.6.6, 203.0.113.5', '203.0.113.5'],
    ['IPv6 client', '::1', '::1', none, '6.6.6.6', '::1'],
    ['trusted IPv6 proxy', '::1', '::1', TrustedProxies.parse(['::1']), '2001:db8::5', '2001:db8::5'],
  ];
  for (const [name, listen, connect, trusted, xff, want] of cases) it(name, async () => expect(await ask(listen, connect, trusted, xff)).toBe(want));
});
