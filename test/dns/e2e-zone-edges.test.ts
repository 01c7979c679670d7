// netplane dns at the edges of its zone, queried with dig (found by an audit): ExternalName chains for every type,
// names that cannot be written on the wire, endpoint hostnames, duplicate SRV records, the SOA and NS of reverse
// zones, and IPv6 addresses written two ways.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { service, slice } from '../fixtures/objects.ts';
import { freePort } from '../helpers/ports.ts';
import { waitFor } from '../helpers/wait.ts';

const bin = fileURLToPath(new URL('../../bin/netplane.ts', import.meta.url));
const ns = 's20d';

/** dig's status, flags, sections (TTL dropped) and everything it printed (a malformed reply shows as a warning). */
async function dig(port: number, name: string, type = 'A', ...opts: string[]) {
  const args = ['@127.0.0.1', '-p', String(port), '+time=2', '+tries=1', '+nocmd', '+nostats', ...opts, name, type];
  const out = await new Promise<string>((resolve) => {
    const p = spawn('dig', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    p.stdout.on('data', (d) => (text += d));
    p.stderr.on('data', (d) => (text += d));
    p.on('close', () => resolve(text));
  });
  const section = (title: string) => {
    const m = new RegExp(`;; ${title} SECTION:\\n([\\s\\S]*?)(?:\\n\\n|$)`).exec(out);
    return (m?.[1] ?? '').split('\n').filter((l) => l && !l.startsWith(';')).map((l) => l.split(/\s+/).filter((_, i) => i !== 1).join(' '));
  };
  return { status: /status: (\w+)/.exec(out)?.[1], answer: section('ANSWER'), authority: section('AUTHORITY'), additional: section('ADDITIONAL'), raw: out };
}

const fqdn = (name: string) => `${name}.${ns}.svc.cluster.local`;
const objects = () => [
  service('cip', { clusterIP: '10.96.5.5', ports: [{ name: 'http', port: 80 }, { name: 'metrics', port: 9090 }, { name: 'grpc', port: 9000 }] }, { namespace: ns }),
  slice('cip-1', 'cip', [{ addresses: ['10.244.5.5'] }], [{ name: 'http', port: 8080 }, { name: 'metrics', port: 9090 }, { name: 'grpc', port: 9000 }], { namespace: ns }),
  service('ext', { type: 'ExternalName', externalName: `${fqdn('cip')}` }, { namespace: ns }),
  service('ext2', { type: 'ExternalName', externalName: `${fqdn('ext')}.` }, { namespace: ns }),
  service('away', { type: 'ExternalName', externalName: 'www.example.com' }, { namespace: ns }),
  service('toaway', { type: 'ExternalName', externalName: fqdn('away') }, { namespace: ns }),
  service('dup', { clusterIP: '10.96.5.53', ports: [{ name: 'dns', port: 53, protocol: 'UDP' }, { name: 'dnstcp', port: 53, protocol: 'TCP' }] }, { namespace: ns }),
  service('hdup', { clusterIP: 'None', ports: [{ name: 'dns', port: 53, protocol: 'UDP' }, { name: 'dnstcp', port: 53, protocol: 'TCP' }] }, { namespace: ns }),
  slice('hdup-1', 'hdup', [{ addresses: ['10.244.5.53'] }], [{ name: 'dns', port: 5353, protocol: 'UDP' }, { name: 'dnstcp', port: 5353, protocol: 'TCP' }], { namespace: ns }),
  service('v6', { clusterIP: 'None', ports: [{ name: 'http', port: 80 }] }, { namespace: ns }),
  slice('v6-a', 'v6', [{ addresses: ['fd00::1'] }], [{ name: 'http', port: 8080 }], { namespace: ns, addressType: 'IPv6' }),
  slice('v6-b', 'v6', [{ addresses: ['FD00:0:0::0001'] }], [{ name: 'http', port: 8080 }], { namespace: ns, addressType: 'IPv6' }),
  service('live', { clusterIP: 'None', ports: [{ name: 'http', port: 80 }] }, { namespace: ns }),
  slice('live-1', 'live', [{ addresses: ['10.244.9.1'], hostname: 'good' }], [{ name: 'http', port: 8080 }], { namespace: ns }),
];

const long = (n: number) => 'a'.repeat(n);
/** Services the API server would refuse or that name what no DNS message can hold, each in a file of its own. */
const badObjects = () => ({
  long70: service(long(70), { clusterIP: '10.96.7.70', ports: [{ name: 'http', port: 80 }] }, { namespace: ns }),
  long250: service(long(250), { clusterIP: '10.96.7.250', ports: [{ name: 'http', port: 80 }] }, { namespace: ns }),
  emptylabel: service('emptylabel', { type: 'ExternalName', externalName: 'foo..example.com' }, { namespace: ns }),
  // Accepted, as the API server accepts it (IsDNS1123Subdomain does not limit labels); no DNS message can hold it.
  badhost: slice('live-2', 'live', [{ addresses: ['10.244.9.2'], hostname: 'a.b' }, { addresses: ['10.244.9.3'], hostname: 'L_1.x' }], [{ name: 'http', port: 8080 }], { namespace: ns }),
  longlabel: service('longlabel', { type: 'ExternalName', externalName: `${long(70)}.example.com` }, { namespace: ns }),
});

interface Running {
  port: number;
  proc: ChildProcess;
  logs: () => string;
}

async function start(dir: string, args: string[]): Promise<Running> {
  const port = await freePort();
  const proc = spawn(process.execPath, [bin, 'dns', '--manifests', dir, '--admin', '127.0.0.1:0', '--listen', `127.0.0.1:${port}`, '--upstream', '127.0.0.1:9', '--lameduck', '0s', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  await waitFor('dns answering', async () => (await dig(port, fqdn('cip'))).status === 'NOERROR', 15_000);
  return { port, proc, logs: () => out };
}

describe('netplane dns at the edges of its zone, with dig', () => {
  let dir: string;
  let plain: Running;
  let reverse: Running;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'netplane-dns-edges-'));
    await writeFile(join(dir, 'objects.yaml'), objects().map((o) => JSON.stringify(o)).join('\n---\n'));
    for (const [file, o] of Object.entries(badObjects())) await writeFile(join(dir, `${file}.yaml`), JSON.stringify(o));
    [plain, reverse] = await Promise.all([start(dir, []), start(dir, ['--reverse-cidr', '10.96.0.0/12'])]);
  }, 30_000);
  afterAll(async () => {
    plain?.proc.kill('SIGKILL');
    reverse?.proc.kill('SIGKILL');
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const soa = /^cluster\.local\. IN SOA ns\.dns\.cluster\.local\. hostmaster\.cluster\.local\. /;
  const cases: Array<{ q: [string, string]; status: string; answer: string[]; authority?: RegExp | null; additional?: string[] }> = [
    // ExternalName chains for every type, not only A and AAAA (RFC 1034 4.3.2; found by an audit: the first CNAME
    // alone, no SRV records, no SOA).
    {
      q: [fqdn('ext'), 'SRV'],
      status: 'NOERROR',
      answer: [
        `${fqdn('ext')}. IN CNAME ${fqdn('cip')}.`,
        `${fqdn('cip')}. IN SRV 0 33 80 ${fqdn('cip')}.`,
        `${fqdn('cip')}. IN SRV 0 33 9090 ${fqdn('cip')}.`,
        `${fqdn('cip')}. IN SRV 0 33 9000 ${fqdn('cip')}.`,
      ],
      additional: [`${fqdn('cip')}. IN A 10.96.5.5`],
    },
    { q: [fqdn('ext2'), 'TXT'], status: 'NOERROR', answer: [`${fqdn('ext2')}. IN CNAME ${fqdn('ext')}.`, `${fqdn('ext')}. IN CNAME ${fqdn('cip')}.`], authority: soa },
    { q: [`_http._tcp.${fqdn('cip')}`, 'SRV'], status: 'NOERROR', answer: [`_http._tcp.${fqdn('cip')}. IN SRV 0 100 80 ${fqdn('cip')}.`] },
    { q: [fqdn('ext2'), 'A'], status: 'NOERROR', answer: [`${fqdn('ext2')}. IN CNAME ${fqdn('ext')}.`, `${fqdn('ext')}. IN CNAME ${fqdn('cip')}.`, `${fqdn('cip')}. IN A 10.96.5.5`] },
    // Two ports of one number, UDP and TCP: one SRV record, not the same one twice (RFC 2181 §5).
    { q: [fqdn('dup'), 'SRV'], status: 'NOERROR', answer: [`${fqdn('dup')}. IN SRV 0 100 53 ${fqdn('dup')}.`], additional: [`${fqdn('dup')}. IN A 10.96.5.53`] },
    { q: [`_dnstcp._tcp.${fqdn('dup')}`, 'SRV'], status: 'NOERROR', answer: [`_dnstcp._tcp.${fqdn('dup')}. IN SRV 0 100 53 ${fqdn('dup')}.`] },
    { q: [fqdn('hdup'), 'SRV'], status: 'NOERROR', answer: [`${fqdn('hdup')}. IN SRV 0 100 5353 10-244-5-53.${fqdn('hdup')}.`], additional: [`10-244-5-53.${fqdn('hdup')}. IN A 10.244.5.53`] },
    // One IPv6 address written two ways, in two slices: one endpoint.
    { q: [fqdn('v6'), 'AAAA'], status: 'NOERROR', answer: [`${fqdn('v6')}. IN AAAA fd00::1`] },
    { q: [fqdn('v6'), 'SRV'], status: 'NOERROR', answer: [`${fqdn('v6')}. IN SRV 0 100 8080 fd00--1.${fqdn('v6')}.`] },
    // A CNAME question matches the CNAME itself; a chain leaving the zone ends at its last CNAME for other types.
    { q: [fqdn('ext2'), 'CNAME'], status: 'NOERROR', answer: [`${fqdn('ext2')}. IN CNAME ${fqdn('ext')}.`], authority: null },
    { q: [fqdn('toaway'), 'MX'], status: 'NOERROR', answer: [`${fqdn('toaway')}. IN CNAME ${fqdn('away')}.`, `${fqdn('away')}. IN CNAME www.example.com.`], authority: null },
  ];
  it('refuses Services whose names cannot be DNS names, logging where and why, and answers without them', async () => {
    await waitFor('the refusals logged', () => plain.logs().includes('long250.yaml') && plain.logs().includes('emptylabel.yaml'), 5000);
    const logged = plain.logs().split('\n').filter((l) => /long70\.yaml|long250\.yaml|emptylabel\.yaml/.test(l));
    expect(logged.join('\n')).toMatch(/long70\.yaml.*metadata\.name: \\"a{70}\\" is 70 characters; a Service name is a DNS label of at most 63/);
    expect(logged.join('\n')).toMatch(/long250\.yaml.*metadata\.name: .* is 250 characters/);
    expect(logged.join('\n')).toMatch(/emptylabel\.yaml.*spec\.externalName: \\"foo\.\.example\.com\\" must be a DNS name/);
    for (const [name, type, opts] of [['10.96.7.70', 'PTR', ['-x']], ['10.96.7.250', 'PTR', ['-x']], [fqdn('emptylabel'), 'A', []], [fqdn('emptylabel'), 'TXT', []]] as const) {
      const r = await dig(plain.port, ...(opts.length ? ['-x', name] as [string, string] : [name, type] as [string, string]));
      expect(r.raw).not.toMatch(/bad packet|bad label|malformed|FORMERR/i);
      expect(r.answer).toEqual([]);
    }
    expect((await dig(plain.port, fqdn('emptylabel'))).status).toBe('NXDOMAIN');
  });

  it('refuses an EndpointSlice with a hostname that is not a DNS label, as the API server does', async () => {
    await waitFor('the refusal logged', () => plain.logs().includes('badhost.yaml'), 5000);
    expect(plain.logs()).toMatch(/badhost\.yaml.*endpoints\[0\]\.hostname: \\"a\.b\\" must be a DNS label.*endpoints\[1\]\.hostname: \\"L_1\.x\\" must be a DNS label/);
    const srv = await dig(plain.port, fqdn('live'), 'SRV');
    expect(srv.answer).toEqual([`${fqdn('live')}. IN SRV 0 100 8080 good.${fqdn('live')}.`]);
    for (const ip of ['10.244.9.2', '10.244.9.3']) expect((await dig(plain.port, '-x', ip)).answer).toEqual([]);
    expect((await dig(plain.port, `a.b.${fqdn('live')}`)).status).toBe('NXDOMAIN');
  });

  it("gives a reverse name's NODATA the reverse zone's SOA, and answers NS at a reverse zone's apex", async () => {
    // Without --reverse-cidr: the apex CoreDNS serves by default (found by an audit: the cluster zone's SOA).
    const a = await dig(plain.port, '5.5.96.10.in-addr.arpa', 'A');
    expect([a.status, a.answer]).toEqual(['NOERROR', []]);
    expect(a.authority.join('\n')).toMatch(/^in-addr\.arpa\. IN SOA ns\.dns\.cluster\.local\. hostmaster\.cluster\.local\. /);
    const ptr = await dig(plain.port, '5.5.96.10.in-addr.arpa', 'PTR');
    expect(ptr.answer).toEqual([`5.5.96.10.in-addr.arpa. IN PTR ${fqdn('cip')}.`]);
    // With it: the reverse zone's own SOA, and its apex names our nameserver as the cluster zone's apex does.
    const ra = await dig(reverse.port, '5.5.96.10.in-addr.arpa', 'A');
    expect(ra.authority.join('\n')).toMatch(/^96\.10\.in-addr\.arpa\. IN SOA /);
    const apex = await dig(reverse.port, 'cluster.local', 'NS');
    const rns = await dig(reverse.port, '96.10.in-addr.arpa', 'NS');
    expect([rns.status, rns.answer]).toEqual(['NOERROR', ['96.10.in-addr.arpa. IN NS ns.dns.cluster.local.']]);
    expect(apex.answer).toEqual(['cluster.local. IN NS ns.dns.cluster.local.']);
    expect(rns.additional).toEqual(apex.additional);
    // Below the apex there is no NS: NODATA with the zone's SOA.
    const below = await dig(reverse.port, '5.96.10.in-addr.arpa', 'NS');
    expect([below.status, below.answer]).toEqual(['NOERROR', []]);
    expect(below.authority.join('\n')).toMatch(/^96\.10\.in-addr\.arpa\. IN SOA /);
  });

  it('answers SERVFAIL, never a malformed packet, for a record whose name no DNS message can hold', async () => {
    for (const type of ['A', 'CNAME', 'TXT']) {
      const r = await dig(plain.port, fqdn('longlabel'), type);
      expect(r.raw).not.toMatch(/bad packet|bad label|malformed|FORMERR/i);
      expect([r.status, r.answer]).toEqual(['SERVFAIL', []]);
    }
    expect(plain.logs()).toMatch(/cannot encode CNAME record for \\"longlabel\.s20d\.svc\.cluster\.local\\".*a label of 70 bytes, longer than 63.*dns handler failed/);
    // The rest of the zone is answered as before.
    expect((await dig(plain.port, fqdn('cip'))).answer).toEqual([`${fqdn('cip')}. IN A 10.96.5.5`]);
  });

  for (const c of cases) {
    it(`${c.q[0]} ${c.q[1]}`, async () => {
      const r = await dig(plain.port, ...c.q);
      expect(r.raw).not.toMatch(/bad packet|bad label|malformed|FORMERR/i);
      expect(r.status).toBe(c.status);
      expect(r.answer.slice().sort()).toEqual(c.answer.slice().sort());
      if (c.authority) expect(r.authority.join('\n')).toMatch(c.authority);
      if (c.authority === null) expect(r.authority).toEqual([]);
      if (c.additional) expect(r.additional.filter((l) => !l.includes('OPT')).sort()).toEqual(c.additional.slice().sort());
    });
  }
});
