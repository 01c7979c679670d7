import { describe, expect, it } from 'vitest';
import { describeUpstream, parseServername, parseUpstream } from '../../../dns/forward/address.ts';

describe('parseUpstream', () => {
  // [written, host, port, servername (null: plain DNS)]
  const good: Array<[string, string, number, string | undefined | null]> = [
    ['1.1.1.1:53', '1.1.1.1', 53, null],
    ['[2606:4700::1111]:53', '2606:4700::1111', 53, null],
    ['tls://1.1.1.1', '1.1.1.1', 853, undefined],
    ['tls://1.1.1.1:8853', '1.1.1.1', 8853, undefined],
    ['tls://1.1.1.1#cloudflare-dns.com', '1.1.1.1', 853, 'cloudflare-dns.com'],
    ['tls://1.1.1.1:853#Cloudflare-DNS.com.', '1.1.1.1', 853, 'cloudflare-dns.com'],
    ['tls://2606:4700:4700::1111', '2606:4700:4700::1111', 853, undefined],
    ['tls://[2606:4700:4700::1111]', '2606:4700:4700::1111', 853, undefined],
    ['tls://[2606:4700:4700::1111]:8853#one.one.one.one', '2606:4700:4700::1111', 8853, 'one.one.one.one'],
  ];
  for (const [raw, host, port, servername] of good) {
    it(raw, () => {
      const u = parseUpstream(raw);
      expect({ host: u.host, port: u.port, text: u.text }).toEqual({ host, port, text: raw });
      expect(u.tcp).toBeUndefined();
      if (servername === null) expect(u.tls).toBeUndefined();
      else expect(u.tls).toEqual({ servername });
    });
  }

  // TCP only: [written, host, port]
  const tcp: Array<[string, string, number]> = [
    ['tcp://10.96.0.10', '10.96.0.10', 53],
    ['tcp://10.96.0.10:5353', '10.96.0.10', 5353],
    ['tcp://fd00::a', 'fd00::a', 53],
    ['tcp://[fd00::a]:5353', 'fd00::a', 5353],
  ];
  for (const [raw, host, port] of tcp) {
    it(raw, () => {
      const u = parseUpstream(raw);
      expect(u).toEqual({ host, port, text: raw, tcp: true });
    });
  }

  // [written, what the message says]
  const bad: Array<[string, RegExp]> = [
    ['tls://', /^ADDR must be an IP address/],
    ['tls://dns.google', /^ADDR must be an IP address/],
    ['tls://[1.1.1.1]', /^ADDR must be an IP address/],
    ['tls://1.1.1.1:', /^PORT must be from 1 to 65535/],
    ['tls://1.1.1.1:0', /^PORT must be from 1 to 65535/],
    ['tls://1.1.1.1:65536', /^PORT must be from 1 to 65535/],
    ['tls://1.1.1.1#', /^NAME must be a host name such as/],
    ['tls://1.1.1.1#10.0.0.1', /^NAME must be a host name, not an IP address/],
    ['tls://1.1.1.1#a..b', /^NAME must be a host name such as/],
    ['TLS://1.1.1.1', /no other scheme/],
    ['https://1.1.1.1', /no other scheme/],
    ['1.1.1.1:53#dns.example', /^#NAME is for DNS over TLS only/],
    ['tcp://10.96.0.10#dns.example', /^#NAME is for DNS over TLS only: .* or tcp:\/\/ADDR\[:PORT\] without a name/],
    ['tcp://kube-dns', /^ADDR must be an IP address .* in tcp:\/\/ADDR\[:PORT\]/],
    ['tcp://10.96.0.10:0', /^PORT must be from 1 to 65535 in tcp:\/\/ADDR\[:PORT\] \(53 when left out\)/],
    ['TCP://10.96.0.10', /no other scheme/],
    ['1.1.1.1', /^must be ADDR:PORT/],
  ];
  for (const [raw, message] of bad) it(`refuses ${raw}`, () => expect(() => parseUpstream(raw)).toThrow(message));
});

describe('parseServername', () => {
  it('lower-cases and drops a trailing dot', () => expect(parseServername('DNS.Google.')).toBe('dns.google'));
  it('refuses a label longer than 63', () => expect(() => parseServername(`${'a'.repeat(64)}.example`)).toThrow(/host name/));
});

describe('describeUpstream', () => {
  const cases: Array<[string, string]> = [
    ['1.1.1.1:53', '1.1.1.1:53'],
    ['tls://1.1.1.1#cloudflare-dns.com', 'tls://1.1.1.1:853'],
    ['tls://2606:4700:4700::1111', 'tls://[2606:4700:4700::1111]:853'],
    ['tcp://10.96.0.10', 'tcp://10.96.0.10:53'],
    ['tcp://fd00::a', 'tcp://[fd00::a]:53'],
  ];
  for (const [raw, shown] of cases) it(raw, () => expect(describeUpstream(parseUpstream(raw))).toBe(shown));
});
