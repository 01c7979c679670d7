// netplane dns as users run it, queried with dig: every record kind of the cluster zone from a manifest directory,
// forwarding to an upstream started here, edits followed, and the Kubernetes source's first sync.
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import dnsPacket from 'dns-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestApiServer } from '../apiserver/server.ts';
import { service, slice } from '../fixtures/objects.ts';
import { freePort } from '../helpers/ports.ts';
import { waitFor } from '../helpers/wait.ts';
import { HostRunner } from '../../runtime/exec.ts';

const bin = fileURLToPath(new URL('../../bin/netplane.ts', import.meta.url));
const host = new HostRunner();

/** Runs dig and returns the status, flags and answer/authority/additional lines (TTL dropped). */
async function dig(port: number, name: string, type = 'A', ...opts: string[]) {
  const { stdout } = await host.run('dig', ['@127.0.0.1', '-p', String(port), '+time=2', '+tries=1', '+nocmd', '+nostats', ...opts, name, type]);
  const status = /status: (\w+)/.exec(stdout)?.[1];
  const flags = /flags: ([a-z ]+);/.exec(stdout)?.[1]?.trim().split(' ') ?? [];
  const section = (title: string) => {
    const m = new RegExp(`;; ${title} SECTION:\\n([\\s\\S]*?)(?:\\n\\n|$)`).exec(stdout);
    return (m?.[1] ?? '').split('\n').filter((l) => l && !l.startsWith(';')).map((l) => l.split(/\s+/).filter((_, i) => i !== 1).join(' '));
  };
  return { status, flags, answer: section('ANSWER'), authority: section('AUTHORITY'), additional: section('ADDITIONAL'), raw: stdout };
}

const ep = (ip: string, extra: object = {}) => ({ addresses: [ip], ...extra });
const objects = (webIP = '10.96.0.10') => [
  service('web', { clusterIPs: [webIP, 'fd00:96::10'], ports: [{ name: 'http', port: 80 }] }),
  slice('web-1', 'web', [ep('10.244.1.5')], [{ name: 'http', port: 8080 }]),
  service('db', { clusterIP: 'None', ports: [{ name: 'pg', port: 5432 }] }, { namespace: 'shop' }),
  slice('db-1', 'db', [ep('10.244.2.7', { hostname: 'db-0' }), ep('10.244.2.8')], [{ name: 'pg', port: 5432 }], { namespace: 'shop' }),
  slice('db-6', 'db', [ep('fd00:244:2::8')], [{ name: 'pg', port: 5432 }], { namespace: 'shop', addressType: 'IPv6' }),
  service('search', { type: 'ExternalName', externalName: 'search.example.com' }),
  service('alias', { type: 'ExternalName', externalName: 'web.default.svc.cluster.local' }),
  service('chain', { type: 'ExternalName', externalName: 'alias.default.svc.cluster.local' }),
  service('loop', { type: 'ExternalName', externalName: 'loop.default.svc.cluster.local' }),
  service('loopa', { type: 'ExternalName', externalName: 'loopb.default.svc.cluster.local' }),
  service('loopb', { type: 'ExternalName', externalName: 'loopa.default.svc.cluster.local' }),
  service('extnx', { type: 'ExternalName', externalName: 'nope.default.svc.cluster.local' }),
  service('tosingle', { type: 'ExternalName', externalName: 'single.default.svc.cluster.local' }),
  service('gone', { type: 'ExternalName', externalName: 'gone.nowhere.test' }),
  service('single', { clusterIP: '10.96.0.20', ports: [{ port: 80 }] }),
  service('noports', { clusterIP: '10.96.0.21' }),
  service('six', { clusterIP: 'None', ports: [{ name: 'http', port: 80 }] }),
  slice('six-1', 'six', Array.from({ length: 6 }, (_, i) => ep(`10.244.6.${i + 1}`)), [{ name: 'http', port: 8080 }]),
  // One address in two slices, each with its own port, hostname and readiness (hostNetwork pods of one node).
  service('hn', { clusterIP: 'None', ports: [{ name: 'http', port: 80 }] }),
  slice('hn-a', 'hn', [ep('10.244.8.5', { hostname: 'a' }), ep('10.244.8.6', { conditions: { ready: false } })], [{ name: 'http', port: 8081 }]),
  slice('hn-b', 'hn', [ep('10.244.8.5', { hostname: 'b' }), ep('10.244.8.6')], [{ name: 'http', port: 8082 }]),
  service('many', { clusterIP: 'None', ports: [{ name: 'http', port: 80 }] }),
  slice('many-1', 'many', Array.from({ length: 100 }, (_, i) => ep(`10.244.7.${i + 1}`)), [{ name: 'http', port: 8080 }]),
];

/** A tiny upstream that knows the names under `domain` (example.com) and counts what it was asked. */
function upstream(domain = 'example.com', ip = '192.0.2.7'): Promise<{ socket: Socket; port: number; asked: string[] }> {
  const socket = createSocket('udp4');
  const asked: string[] = [];
  socket.on('message', (msg, r) => {
    const q = dnsPacket.decode(msg);
    const question = q.questions![0]!;
    asked.push(`${question.name} ${question.type}`);
    const known = question.name.toLowerCase().endsWith(domain);
    // As real resolvers do, the question goes back as it came (dns-packet would re-encode escaped labels otherwise).
    let end = 12;
    while (msg[end] !== 0) end += msg[end]! + 1;
    const reply = Buffer.from(msg.subarray(0, end + 5));
    reply[2] = 0x81;
    reply[3] = 0x80 | (known ? 0 : 3);
    reply.writeUInt32BE(0, 6);
    reply.writeUInt16BE(0, 10);
    if (known && question.type === 'A') {
      reply.writeUInt16BE(1, 6);
      // Names starting "short" live 5 s (the cache's floor), the rest 60 s.
      const ttl = question.name.toLowerCase().startsWith('short') ? 5 : 60;
      const rr = Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, ttl, 0, 4, ...ip.split('.').map(Number)]);
      socket.send(Buffer.concat([reply, rr]), r.port, r.address);
    } else socket.send(reply, r.port, r.address);
  });
  return new Promise((resolve) => socket.bind(0, '127.0.0.1', () => resolve({ socket, port: socket.address().port, asked })));
}

function startDns(args: string[]): { proc: ChildProcess; logs: () => string } {
  const proc = spawn(process.execPath, [bin, 'dns', '--admin', '127.0.0.1:0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  return { proc, logs: () => out };
}

describe('netplane dns from a manifest directory, with dig', () => {
  let dir: string;
  let port: number;
  let dns: ChildProcess;
  let up: Awaited<ReturnType<typeof upstream>>;
  let corp: Awaited<ReturnType<typeof upstream>>;
  let logs: () => string;
  /** The admin port the process logged at start. */
  const admin = () => /"admin":"127\.0\.0\.1:(\d+)"/.exec(logs())?.[1];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'netplane-dns-'));
    await writeFile(join(dir, 'cluster.yaml'), objects().map((o) => JSON.stringify(o)).join('\n---\n'));
    up = await upstream();
    corp = await upstream('corp.test', '198.51.100.9');
    await writeFile(`${dir}.hosts`, '10.0.0.5 db.static.example db\nfd00::5 db.static.example\n');
    port = await freePort();
    const started = startDns(['--manifests', dir, '--listen', `127.0.0.1:${port}`, '--upstream', `127.0.0.1:${up.port}`, '--pods', 'insecure', '--reverse-cidr', '10.96.0.0/16', '--stub-domain', `Corp.Test.=127.0.0.1:${corp.port}`, '--hosts', `${dir}.hosts`, '--hosts-entry', '10.0.0.9 printer.static.example']);
    dns = started.proc;
    logs = started.logs;
    await waitFor('dns answering', async () => (await dig(port, 'web.default.svc.cluster.local').catch(() => undefined))?.status === 'NOERROR', 15_000);
  });
  afterAll(async () => {
    dns?.kill('SIGTERM');
    up?.socket.close();
    corp?.socket.close();
    if (dir) await rm(dir, { recursive: true, force: true });
    if (dir) await rm(`${dir}.hosts`, { force: true });
  });

  const cases: Array<{ q: [string, string, ...string[]]; status: string; answer?: string[]; authority?: RegExp; additional?: string[]; aa?: boolean }> = [
    { q: ['web.default.svc.cluster.local', 'A'], status: 'NOERROR', answer: ['web.default.svc.cluster.local. IN A 10.96.0.10'], aa: true },
    { q: ['web.default.svc.cluster.local', 'AAAA'], status: 'NOERROR', answer: ['web.default.svc.cluster.local. IN AAAA fd00:96::10'] },
    { q: ['WeB.DeFault.svc.Cluster.Local', 'A'], status: 'NOERROR', answer: ['WeB.DeFault.svc.Cluster.Local. IN A 10.96.0.10'] },
    { q: ['web.default.svc.cluster.local', 'A', '+tcp'], status: 'NOERROR', answer: ['web.default.svc.cluster.local. IN A 10.96.0.10'] },
    { q: ['web.default.svc.cluster.local', 'A', '+noedns'], status: 'NOERROR', answer: ['web.default.svc.cluster.local. IN A 10.96.0.10'] },
    { q: ['nope.default.svc.cluster.local', 'A'], status: 'NXDOMAIN', answer: [], authority: /^cluster\.local\. IN SOA ns\.dns\.cluster\.local\. hostmaster\.cluster\.local\. \d+ 7200 1800 86400 5$/, aa: true },
    { q: ['web.default.svc.cluster.local', 'MX'], status: 'NOERROR', answer: [], authority: /IN SOA/ },
    { q: ['db.shop.svc.cluster.local', 'A'], status: 'NOERROR', answer: ['db.shop.svc.cluster.local. IN A 10.244.2.7', 'db.shop.svc.cluster.local. IN A 10.244.2.8'] },
    { q: ['db.shop.svc.cluster.local', 'AAAA'], status: 'NOERROR', answer: ['db.shop.svc.cluster.local. IN AAAA fd00:244:2::8'] },
    { q: ['db-0.db.shop.svc.cluster.local', 'A'], status: 'NOERROR', answer: ['db-0.db.shop.svc.cluster.local. IN A 10.244.2.7'] },
    { q: ['fd00-244-2--8.db.shop.svc.cluster.local', 'AAAA'], status: 'NOERROR', answer: ['fd00-244-2--8.db.shop.svc.cluster.local. IN AAAA fd00:244:2::8'] },
    {
      q: ['_http._tcp.web.default.svc.cluster.local', 'SRV'],
      status: 'NOERROR',
      answer: ['_http._tcp.web.default.svc.cluster.local. IN SRV 0 100 80 web.default.svc.cluster.local.'],
      additional: ['web.default.svc.cluster.local. IN A 10.96.0.10', 'web.default.svc.cluster.local. IN AAAA fd00:96::10'],
    },
    {
      q: ['_pg._tcp.db.shop.svc.cluster.local', 'SRV'],
      status: 'NOERROR',
      answer: [
        '_pg._tcp.db.shop.svc.cluster.local. IN SRV 0 33 5432 db-0.db.shop.svc.cluster.local.',
        '_pg._tcp.db.shop.svc.cluster.local. IN SRV 0 33 5432 10-244-2-8.db.shop.svc.cluster.local.',
        '_pg._tcp.db.shop.svc.cluster.local. IN SRV 0 33 5432 fd00-244-2--8.db.shop.svc.cluster.local.',
      ],
    },
    {
      // Each endpoint with the port and readiness of its own slice, as CoreDNS answers (found by an audit: both were
      // 8081, the ready 10.244.8.6:8082 sent to its not-ready port, and b had no record at all).
      q: ['_http._tcp.hn.default.svc.cluster.local', 'SRV'],
      status: 'NOERROR',
      answer: [
        '_http._tcp.hn.default.svc.cluster.local. IN SRV 0 33 8081 a.hn.default.svc.cluster.local.',
        '_http._tcp.hn.default.svc.cluster.local. IN SRV 0 33 8082 b.hn.default.svc.cluster.local.',
        '_http._tcp.hn.default.svc.cluster.local. IN SRV 0 33 8082 10-244-8-6.hn.default.svc.cluster.local.',
      ],
    },
    { q: ['b.hn.default.svc.cluster.local', 'A'], status: 'NOERROR', answer: ['b.hn.default.svc.cluster.local. IN A 10.244.8.5'] },
    { q: ['hn.default.svc.cluster.local', 'A'], status: 'NOERROR', answer: ['hn.default.svc.cluster.local. IN A 10.244.8.5', 'hn.default.svc.cluster.local. IN A 10.244.8.6'] },
    { q: ['single.default.svc.cluster.local', 'SRV'], status: 'NOERROR', answer: ['single.default.svc.cluster.local. IN SRV 0 100 80 single.default.svc.cluster.local.'] },
    { q: ['noports.default.svc.cluster.local', 'SRV'], status: 'NOERROR', answer: [], authority: /^cluster\.local\. IN SOA / },
    { q: ['10.0.96.10.in-addr.arpa', 'PTR'], status: 'NOERROR', answer: ['10.0.96.10.in-addr.arpa. IN PTR web.default.svc.cluster.local.'] },
    { q: ['7.2.244.10.in-addr.arpa', 'PTR'], status: 'NOERROR', answer: ['7.2.244.10.in-addr.arpa. IN PTR db-0.db.shop.svc.cluster.local.'] },
    { q: ['fd00:96::10', 'PTR', '-x'], status: 'NOERROR', answer: [`${'0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.0.d.f'}.ip6.arpa. IN PTR web.default.svc.cluster.local.`] },
    { q: ['99.0.96.10.in-addr.arpa', 'PTR'], status: 'NXDOMAIN', authority: /^96\.10\.in-addr\.arpa\. IN SOA ns\.dns\.cluster\.local\. hostmaster\.cluster\.local\. / },
    { q: ['96.10.in-addr.arpa', 'SOA'], status: 'NOERROR', aa: true },
    { q: ['0.96.10.in-addr.arpa', 'PTR'], status: 'NOERROR', answer: [], authority: /^96\.10\.in-addr\.arpa\. IN SOA / },
    { q: ['search.default.svc.cluster.local', 'A'], status: 'NOERROR', answer: ['search.default.svc.cluster.local. IN CNAME search.example.com.', 'search.example.com. IN A 192.0.2.7'] },
    {
      q: ['chain.default.svc.cluster.local', 'A'],
      status: 'NOERROR',
      answer: ['chain.default.svc.cluster.local. IN CNAME alias.default.svc.cluster.local.', 'alias.default.svc.cluster.local. IN CNAME web.default.svc.cluster.local.', 'web.default.svc.cluster.local. IN A 10.96.0.10'],
    },
    // The rcode is the last name's, with its SOA, the CNAMEs kept (RFC 6604, RFC 2308 §2.2; found by an audit:
    // these were NOERROR without SOA).
    { q: ['extnx.default.svc.cluster.local', 'A'], status: 'NXDOMAIN', answer: ['extnx.default.svc.cluster.local. IN CNAME nope.default.svc.cluster.local.'], authority: /^cluster\.local\. IN SOA / },
    { q: ['tosingle.default.svc.cluster.local', 'AAAA'], status: 'NOERROR', answer: ['tosingle.default.svc.cluster.local. IN CNAME single.default.svc.cluster.local.'], authority: /^cluster\.local\. IN SOA / },
    { q: ['tosingle.default.svc.cluster.local', 'A'], status: 'NOERROR', answer: ['tosingle.default.svc.cluster.local. IN CNAME single.default.svc.cluster.local.', 'single.default.svc.cluster.local. IN A 10.96.0.20'] },
    { q: ['gone.default.svc.cluster.local', 'A'], status: 'NXDOMAIN', answer: ['gone.default.svc.cluster.local. IN CNAME gone.nowhere.test.'] },
    { q: ['loop.default.svc.cluster.local', 'A'], status: 'NOERROR', answer: [], authority: /IN SOA/ },
    { q: ['loopa.default.svc.cluster.local', 'A'], status: 'NOERROR', answer: ['loopa.default.svc.cluster.local. IN CNAME loopb.default.svc.cluster.local.'] },
    { q: ['dns-version.cluster.local', 'TXT'], status: 'NOERROR', answer: ['dns-version.cluster.local. IN TXT "1.1.0"'] },
    { q: ['10-244-1-5.default.pod.cluster.local', 'A'], status: 'NOERROR', answer: ['10-244-1-5.default.pod.cluster.local. IN A 10.244.1.5'] },
    { q: ['www.example.com', 'A'], status: 'NOERROR', answer: ['www.example.com. IN A 192.0.2.7'], aa: false },
    { q: ['nowhere.test', 'A'], status: 'NXDOMAIN', answer: [] },
    // Labels `x.cluster` and `local`: not the cluster zone, so forwarded (the upstream knows only example.com).
    { q: ['x\\.cluster.local', 'A'], status: 'NXDOMAIN', answer: [], aa: false },
  ];
  for (const c of cases) {
    it(`${c.q.slice(2).join(' ')} ${c.q[0]} ${c.q[1]}`.trim(), async () => {
      const [name, type, ...opts] = c.q;
      const r = type === 'PTR' && opts.includes('-x') ? await dig(port, '-x', name, ...opts.filter((o) => o !== '-x')) : await dig(port, name, type, ...opts);
      expect(r.status).toBe(c.status);
      if (c.answer) expect(r.answer.slice().sort()).toEqual(c.answer.slice().sort());
      if (c.authority) expect(r.authority.join('\n')).toMatch(c.authority);
      if (c.additional) expect(r.additional.filter((l) => !l.includes('OPT')).sort()).toEqual(c.additional.slice().sort());
      if (c.aa !== undefined) expect(r.flags.includes('aa')).toBe(c.aa);
    });
  }

  it('forwards a stub domain to its own upstream, with its own cache, and the rest to the default one', async () => {
    const before = up.asked.length;
    const r = await dig(port, 'db.corp.test');
    expect([r.status, r.answer]).toEqual(['NOERROR', ['db.corp.test. IN A 198.51.100.9']]);
    // Besides the loop check every upstream gets at start (HINFO for <random>.netplane-loop-check).
    const asked = () => corp.asked.filter((a) => !/\.netplane-loop-check HINFO$/.test(a));
    expect(corp.asked.length - asked().length).toBe(1);
    expect(asked()).toEqual(['db.corp.test A']);
    await dig(port, 'db.corp.test');
    expect(asked()).toHaveLength(1);
    expect(up.asked.length).toBe(before);
    const metrics = await (await fetch(`http://127.0.0.1:${admin()}/metrics`)).text();
    expect(metrics).toMatch(/coredns_cache_hits_total\{[^}]*zones="corp\.test\."[^}]*type="success"\} 1\n/);
    expect(metrics).toMatch(/coredns_dns_requests_total\{[^}]*zone="corp\.test\."[^}]*\} 2/);
  });

  it('answers the names of the --hosts file, their reverse names, and follows edits of it', async () => {
    expect((await dig(port, 'db.static.example')).answer).toEqual(['db.static.example. IN A 10.0.0.5']);
    expect((await dig(port, 'db.static.example', 'AAAA')).answer).toEqual(['db.static.example. IN AAAA fd00::5']);
    expect((await dig(port, '10.0.0.5', 'PTR', '-x')).answer).toEqual(['5.0.0.10.in-addr.arpa. IN PTR db.static.example.', '5.0.0.10.in-addr.arpa. IN PTR db.']);
    const mx = await dig(port, 'db.static.example', 'MX');
    expect([mx.status, mx.answer]).toEqual(['NOERROR', []]);
    await writeFile(`${dir}.hosts`, '10.0.0.6 db.static.example\n');
    await waitFor('the edited hosts file', async () => JSON.stringify((await dig(port, 'db.static.example')).answer) === JSON.stringify(['db.static.example. IN A 10.0.0.6']), 15_000, 200);
    // A --hosts-entry (a hosts line written in a Corefile) is answered beside the file, and stays through its edits.
    expect((await dig(port, 'printer.static.example')).answer).toEqual(['printer.static.example. IN A 10.0.0.9']);
  }, 20_000);

  it('fits big answers into UDP as CoreDNS does: compressed, extras dropped without TC, then whole answers with TC', async () => {
    // Six SRV records (60 bytes each, their targets in full as RFC 2782 asks) fit in 512 bytes; not all the glue does.
    const six = await dig(port, '_http._tcp.six.default.svc.cluster.local', 'SRV', '+noedns', '+ignore');
    expect([six.status, six.flags.includes('tc'), six.answer.length]).toEqual(['NOERROR', false, 6]);
    expect(six.additional.length).toBeGreaterThan(0);
    // 100 A records: as many as fit, with TC (16 bytes each after a 47-byte header and question).
    const small = await dig(port, 'many.default.svc.cluster.local', 'A', '+noedns', '+ignore');
    expect([small.status, small.flags.includes('tc'), small.answer.length]).toEqual(['NOERROR', true, 29]);
    // Rotated per response (loadbalance): 29 of the 100, starting anywhere.
    expect(new Set(small.answer).size).toBe(29);
    for (const l of small.answer) expect(l).toMatch(/^many\.default\.svc\.cluster\.local\. IN A 10\.244\.7\.\d+$/);
    const edns = await dig(port, 'many.default.svc.cluster.local', 'A', '+bufsize=1232', '+ignore');
    expect([edns.flags.includes('tc'), edns.answer.length]).toEqual([true, 73]);
    // dig retries over TCP on TC and gets them all.
    expect((await dig(port, 'many.default.svc.cluster.local', 'A', '+noedns')).answer).toHaveLength(100);
  });

  it("rotates a headless Service's addresses per response over UDP and TCP (loadbalance); --loadbalance off keeps them sorted", async () => {
    const firsts = async (p: number, ...opts: string[]) => {
      const out: string[] = [];
      for (let i = 0; i < 6; i++) out.push((await dig(p, 'six.default.svc.cluster.local', 'A', ...opts)).answer[0]!);
      return new Set(out);
    };
    expect((await firsts(port)).size).toBe(6);
    expect((await firsts(port, '+tcp')).size).toBe(6);
    const offPort = await freePort();
    const off = startDns(['--manifests', dir, '--listen', `127.0.0.1:${offPort}`, '--upstream', `127.0.0.1:${up.port}`, '--loadbalance', 'off']);
    try {
      await waitFor('dns answering', async () => (await dig(offPort, 'web.default.svc.cluster.local').catch(() => undefined))?.status === 'NOERROR', 15_000);
      expect([...(await firsts(offPort))]).toEqual(['six.default.svc.cluster.local. IN A 10.244.6.1']);
    } finally {
      off.proc.kill('SIGKILL');
    }
  });

  it('never forwards cluster names asked in another class: ANY is answered from the zone, CH refused', async () => {
    const before = up.asked.length;
    const any = await dig(port, 'db-0.db.shop.svc.cluster.local', 'A', '-c', 'ANY');
    expect([any.status, any.answer]).toEqual(['NOERROR', ['db-0.db.shop.svc.cluster.local. IN A 10.244.2.7']]);
    expect((await dig(port, 'db-0.db.shop.svc.cluster.local', 'A', '-c', 'CH')).status).toBe('REFUSED');
    expect((await dig(port, '10.0.96.10.in-addr.arpa', 'PTR', '-c', 'CH')).status).toBe('REFUSED');
    expect(up.asked.slice(before).filter((a) => /cluster\.local|arpa/.test(a))).toEqual([]);
  });

  it('forwards names with escaped bytes as the client sent them and answers for that name', async () => {
    const dotted = await dig(port, 'a\\.b.example.com', 'A');
    expect([dotted.status, dotted.answer]).toEqual(['NOERROR', ['a\\.b.example.com. IN A 192.0.2.7']]);
    const spaced = await dig(port, 'sp\\032ace.example.com', 'A');
    expect(spaced.answer).toEqual(['sp\\032ace.example.com. IN A 192.0.2.7']);
    // The upstream decodes labels naively: one label "a.b" prints as "a.b", the wrong labels "a\" "b" as "a\\.b".
    expect(up.asked).toContain('a.b.example.com A');
    expect(up.asked).toContain('sp ace.example.com A');
    expect(up.asked.filter((a) => a.includes('\\'))).toEqual([]);
  });

  it('answers another opcode NOTIMP with the question, and with its OPT record to an EDNS client (found by an audit: dig warned the server knew no EDNS)', async () => {
    for (const opcode of ['2', '4']) {
      const r = await dig(port, 'web.default.svc.cluster.local', 'A', `+opcode=${opcode}`);
      expect(r.status).toBe('NOTIMP');
      expect(r.raw).toContain('OPT PSEUDOSECTION');
      expect(r.raw).not.toContain('WARNING: EDNS query returned status');
      expect(r.raw).toMatch(/QUERY: 1,/);
    }
    const plain = await dig(port, 'web.default.svc.cluster.local', 'A', '+opcode=2', '+noedns');
    expect(plain.status).toBe('NOTIMP');
    expect(plain.raw).not.toContain('OPT PSEUDOSECTION');
  });

  it('refuses zone transfers over TCP and UDP', async () => {
    const tcp = await host.run('dig', ['@127.0.0.1', '-p', String(port), '+time=2', '+tries=1', 'cluster.local', 'AXFR']).then((r) => r.stdout);
    expect(tcp).toMatch(/Transfer failed|REFUSED/);
    expect(tcp).not.toMatch(/IN\s+SOA/);
    for (const type of ['AXFR', 'IXFR']) {
      const s = createSocket('udp4');
      const reply = await new Promise<Buffer>((resolve) => {
        s.on('message', resolve);
        s.send(dnsPacket.encode({ id: 7, questions: [{ name: 'cluster.local', type: type as 'A' }] }), port, '127.0.0.1');
      });
      s.close();
      expect((dnsPacket.decode(reply) as { rcode?: string }).rcode).toBe('REFUSED');
    }
  });

  it('answers the SOA at the apex', async () => {
    const r = await dig(port, 'cluster.local', 'SOA');
    expect(r.answer[0]).toMatch(/^cluster\.local\. IN SOA ns\.dns\.cluster\.local\. hostmaster\.cluster\.local\. \d+ 7200 1800 86400 5$/);
  });

  it('caches forwarded answers: a second query is not sent upstream', async () => {
    await dig(port, 'cached.example.com', 'A');
    await dig(port, 'cached.example.com', 'A');
    expect(up.asked.filter((a) => a === 'cached.example.com A')).toHaveLength(1);
  });

  it('prefetches a name asked steadily before it expires: upstream sees the refresh, clients never a miss', async () => {
    const metric = async (name: string) => {
      const text = await (await fetch(`http://127.0.0.1:${admin()}/metrics`)).text();
      return Number(new RegExp(`^${name}\\{[^}]*zones="\\."[^}]*\\} (\\d+)`, 'm').exec(text)?.[1] ?? NaN);
    };
    const [misses, prefetches] = [await metric('coredns_cache_misses_total'), await metric('coredns_cache_prefetch_total')];
    const ttls: number[] = [];
    // Every 400 ms for 7.6 s: past the 5 s TTL once, so without prefetch the 13th or so query would be a miss.
    for (let i = 0; i < 20; i++) {
      const r = await dig(port, 'short.example.com', 'A', '+ttlid');
      expect(r.answer).toEqual(['short.example.com. IN A 192.0.2.7']);
      ttls.push(Number(/\s(\d+)\s+IN\s+A/.exec(r.raw)?.[1]));
      await new Promise((res) => setTimeout(res, 400));
    }
    expect(up.asked.filter((a) => a === 'short.example.com A').length).toBeGreaterThanOrEqual(2);
    expect(await metric('coredns_cache_misses_total')).toBe(misses + 1);
    expect(await metric('coredns_cache_prefetch_total')).toBeGreaterThan(prefetches);
    // The TTL came back up after the refresh, never reaching 0.
    expect(Math.min(...ttls)).toBeGreaterThan(0);
    expect(ttls.slice(ttls.indexOf(Math.min(...ttls))).some((t) => t >= 4)).toBe(true);
  }, 20_000);

  it('follows edits of the manifests, also for a query whose earlier answer it replays', async () => {
    // Without a cookie, dig's queries differ only in their ID: the second is answered by replay (server/replay.ts).
    const before = (await dig(port, 'web.default.svc.cluster.local', 'A', '+nocookie')).answer;
    expect((await dig(port, 'web.default.svc.cluster.local', 'A', '+nocookie')).answer).toEqual(before);
    await writeFile(join(dir, 'cluster.yaml'), objects('10.96.0.99').map((o) => JSON.stringify(o)).join('\n---\n'));
    await waitFor('the new address', async () => (await dig(port, 'web.default.svc.cluster.local')).answer[0]?.endsWith('10.96.0.99'), 3000);
    expect((await dig(port, 'web.default.svc.cluster.local', 'A', '+nocookie')).answer[0]).toMatch(/10\.96\.0\.99$/);
  });

  it('shares its port with other processes under --reuse-port, and only then', async () => {
    const shared = await freePort();
    const args = ['--manifests', dir, '--listen', `127.0.0.1:${shared}`, '--upstream', `127.0.0.1:${up.port}`, '--reuse-port'];
    const first = startDns(args);
    const second = startDns(args);
    try {
      await waitFor('both serving', () => [first, second].every((p) => p.logs().includes('dns serving')), 15_000);
      const alone = startDns(args.slice(0, -1));
      const code = await new Promise((r) => alone.proc.once('exit', r));
      expect(code).toBe(1);
      expect(alone.logs()).toContain('cannot listen');
      // With one of them gone the other still answers on the shared port.
      first.proc.kill('SIGTERM');
      await new Promise((r) => first.proc.once('exit', r));
      await waitFor('answers from the second', async () => (await dig(shared, 'web.default.svc.cluster.local')).status === 'NOERROR', 5000);
    } finally {
      first.proc.kill('SIGTERM');
      second.proc.kill('SIGTERM');
    }
  });
});

describe('netplane dns on the Kubernetes API', () => {
  it('answers SERVFAIL for the zone until the first full view is loaded, then answers from it', async () => {
    const api = await TestApiServer.start();
    for (const o of objects()) api.apply(o);
    await api.goDown();
    const port = await freePort();
    const { proc } = startDns(['--kubeconfig', await api.kubeconfigPath(), '--listen', `127.0.0.1:${port}`, '--upstream', '127.0.0.1:9']);
    try {
      await waitFor('dns listening', async () => (await dig(port, 'web.default.svc.cluster.local').catch(() => undefined))?.status === 'SERVFAIL', 15_000);
      await api.comeUp();
      await waitFor('answers', async () => (await dig(port, 'web.default.svc.cluster.local')).status === 'NOERROR', 10_000);
      expect((await dig(port, 'web.default.svc.cluster.local')).answer).toEqual(['web.default.svc.cluster.local. IN A 10.96.0.10']);
      // An outage afterwards keeps answering from the last view.
      await api.goDown();
      await new Promise((r) => setTimeout(r, 300));
      expect((await dig(port, 'db.shop.svc.cluster.local')).status).toBe('NOERROR');
    } finally {
      proc.kill('SIGTERM');
      await api.close();
    }
  });
});
