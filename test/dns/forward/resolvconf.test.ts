import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ResolvConfError, parseResolvConf, parseSearchDomains, readResolvConf, readSearchDomains } from '../../../dns/forward/resolvconf.ts';

describe('parseResolvConf', () => {
  const cases: Array<[string, string, string[]]> = [
    ['one server', 'nameserver 10.0.0.10\n', ['10.0.0.10:53']],
    ['in order, with search and options ignored', 'search default.svc.cluster.local svc.cluster.local\nnameserver 1.1.1.1\noptions ndots:5\nnameserver 8.8.8.8\n', ['1.1.1.1:53', '8.8.8.8:53']],
    ['systemd-resolved stub kept', 'nameserver 127.0.0.53\noptions edns0 trust-ad\n', ['127.0.0.53:53']],
    ['IPv6, with and without zone', 'nameserver 2001:4860:4860::8888\nnameserver fe80::1%eth0\n', ['[2001:4860:4860::8888]:53', '[fe80::1%eth0]:53']],
    ['comments and blank lines', '# generated\n; old style\n\n  nameserver   9.9.9.9   # quad9\n#nameserver 1.2.3.4\n', ['9.9.9.9:53']],
    ['tabs and CRLF', 'nameserver\t10.1.2.3\r\n', ['10.1.2.3:53']],
    ['not an address is skipped', 'nameserver dns.example.com\nnameserver 300.1.1.1\nnameserver 10.0.0.1\n', ['10.0.0.1:53']],
    ['keyword must be exact', 'nameservers 10.0.0.1\nNAMESERVER 10.0.0.2\ndomain nameserver\n', []],
    ['empty', '', []],
  ];
  for (const [name, text, want] of cases) {
    it(name, () => {
      const got = parseResolvConf(text);
      expect(got.map((h) => h.text)).toEqual(want);
      for (const h of got) expect(h.port).toBe(53);
    });
  }
});

describe('parseSearchDomains', () => {
  it.each([
    ['one line, in order, case kept', 'nameserver 10.0.0.10\nsearch corp.example Lab.Example\n', ['corp.example', 'Lab.Example']],
    ['the last search line wins', 'search old.example\nsearch corp.example\n', ['corp.example']],
    ['an empty search line clears', 'search corp.example\nsearch\n', []],
    ['a domain line does not count (the kubelet reads search only)', 'domain corp.example\n', []],
    ['trailing dots trimmed, "." dropped, duplicates kept', 'search corp.example. . corp.example\n', ['corp.example', 'corp.example']],
    ['tabs, comments, CRLF', 'search\tcorp.example  lab.example # node\r\n#search x.example\n', ['corp.example', 'lab.example']],
    ['keyword must be exact', 'searches a.example\nSEARCH b.example\n', []],
    ['none', 'nameserver 10.0.0.10\n', []],
  ])('%s', (_, text, want) => {
    expect(parseSearchDomains(text)).toEqual(want);
  });
});

describe('readSearchDomains', () => {
  it('reads a file, none without a search line, and fails with a code when it is missing', () => {
    const dir = mkdtempSync(join(tmpdir(), 'resolv-'));
    try {
      writeFileSync(join(dir, 'ok'), 'nameserver 10.96.0.10\nsearch corp.example\n');
      writeFileSync(join(dir, 'none'), 'nameserver 10.96.0.10\n');
      expect(readSearchDomains(join(dir, 'ok'))).toEqual(['corp.example']);
      expect(readSearchDomains(join(dir, 'none'))).toEqual([]);
      let err: unknown;
      try {
        readSearchDomains(join(dir, 'missing'));
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ResolvConfError);
      expect((err as ResolvConfError).code).toBe('NETPLANE_DNS_RESOLV_CONF');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('readResolvConf', () => {
  it('reads a file, and fails with a code when it is missing or names no server', () => {
    const dir = mkdtempSync(join(tmpdir(), 'resolv-'));
    try {
      writeFileSync(join(dir, 'ok'), 'nameserver 10.96.0.10\n');
      writeFileSync(join(dir, 'none'), 'search example.com\n');
      expect(readResolvConf(join(dir, 'ok'))).toEqual([{ host: '10.96.0.10', port: 53, text: '10.96.0.10:53' }]);
      for (const path of [join(dir, 'none'), join(dir, 'missing')]) {
        expect(() => readResolvConf(path)).toThrow(ResolvConfError);
        try {
          readResolvConf(path);
        } catch (e) {
          expect((e as ResolvConfError).code).toBe('NETPLANE_DNS_RESOLV_CONF');
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
