// `reload` in the Corefile, end to end: a running `netplane dns --conf` picks up an edited Corefile within its
// interval — another upstream, a new stub domain, another TTL — without a restart and without losing a query sent
// while it switches; a Corefile that cannot be used is logged and counted once and the server answers as before; a
// changed port waits for a restart; a Corefile without `reload` stops the reading.
import { createHash } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dnsPacket from 'dns-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HostRunner } from '../../runtime/exec.ts';
import { freePort } from '../helpers/ports.ts';
import { waitFor } from '../helpers/wait.ts';
import { a, startUpstream, type FakeUpstream } from './forward/fake-upstream.ts';
import { digWithTtl, startDns, type DnsProcess } from './process.ts';

/** Sends A queries for `names` in turn every few milliseconds until stopped; counts what was answered NOERROR. */
function queryLoop(port: number, names: readonly string[]) {
  const sock = createSocket('udp4');
  const pending = new Set<number>();
  let sent = 0;
  let answered = 0;
  const bad: string[] = [];
  sock.on('message', (msg) => {
    const p = dnsPacket.decode(msg);
    if (!pending.delete(p.id!)) return;
    // The rcode is the low 4 bits of the flags.
    const rcode = (p.flags ?? 0) & 0xf;
    if (rcode === 0 && (p.answers?.length ?? 0) > 0) answered++;
    else bad.push(`${p.questions?.[0]?.name}: rcode ${rcode}`);
  });
  const timer = setInterval(() => {
    const id = sent % 65536;
    const name = names[sent % names.length]!;
    sent++;
    pending.add(id);
    sock.send(dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name }] }), port, '127.0.0.1');
  }, 4);
  return {
    async stop() {
      clearInterval(timer);
      await waitFor('the last answers', () => pending.size === 0, 3000).catch(() => undefined);
      sock.close();
      return { sent, answered, lost: pending.size, bad };
    },
  };
}

describe('netplane dns --conf Corefile with reload', () => {
  let first: FakeUpstream;
  let second: FakeUpstream;
  let stub: FakeUpstream;
  let dir: string;
  let dns: DnsProcess | undefined;
  const host = new HostRunner();
  const dig = digWithTtl;
  const metric = async (name: string) => {
    const { body } = await dns!.admin('/metrics');
    return body.split('\n').filter((l) => l.startsWith(name));
  };
  const corefile = (o: { port: number; upstream: FakeUpstream; ttl: number; stub?: boolean; reload?: boolean }) => `.:${o.port} {
    bind 127.0.0.1
    kubernetes cluster.local {
       pods insecure
       ttl ${o.ttl}
    }
    forward . ${o.upstream.hostPort.text}
    cache 30
    ${o.reload === false ? '' : 'reload 2s 1s'}
    loadbalance
}
${o.stub ? `corp.internal:${o.port} {\n    forward . ${stub.hostPort.text}\n}\n` : ''}`;
  const sha512 = (text: string) => createHash('sha512').update(text).digest('hex');

  beforeAll(async () => {
    first = await startUpstream((q) => ({ answers: [a(q.name, '192.0.2.7', 60)] }));
    second = await startUpstream((q) => ({ answers: [a(q.name, '192.0.2.8', 60)] }));
    stub = await startUpstream((q) => ({ answers: [a(q.name, '192.0.2.99', 60)] }));
    dir = await mkdtemp(join(tmpdir(), 'netplane-reload-'));
  });
  afterAll(async () => {
    await dns?.stop();
    await Promise.all([first?.close(), second?.close(), stub?.close()]);
    await rm(dir, { recursive: true, force: true });
  });

  it('applies an edited Corefile without a restart, keeps a bad one out, leaves the port to a restart, stops without reload', async () => {
    const [port, other] = [await freePort(), await freePort()];
    const file = join(dir, 'Corefile');
    const v1 = corefile({ port, upstream: first, ttl: 17 });
    await writeFile(file, v1);
    dns = await startDns(['--conf', file]);
    await waitFor('dns listening', () => dns!.logs().includes(`udp://127.0.0.1:${port}`), 15_000);
    // The zone answers SERVFAIL until the first full view of the manifests is loaded, which may come after listening.
    await waitFor('the zone loaded', async () => (await dig(port, 'web.default.svc.cluster.local')).length > 0, 15_000, 100);
    expect(await dig(port, 'web.default.svc.cluster.local')).toEqual(['web.default.svc.cluster.local. 17 10.96.0.10']);
    expect(await dig(port, 'www.example.com')).toEqual(['www.example.com. 30 192.0.2.7']);
    expect(await dig(port, 'git.corp.internal')).toEqual(['git.corp.internal. 30 192.0.2.7']);
    expect(await metric('coredns_reload_version_info')).toEqual([`coredns_reload_version_info{hash="sha512",value="${sha512(v1)}"} 1`]);
    const requestsBefore = Number((await metric('coredns_cache_requests_total{server="dns://127.0.0.1:'))[0]!.split(' ')[1]);

    // Another upstream, a stub domain, another TTL: queries keep coming while it switches.
    const loop = queryLoop(port, ['web.default.svc.cluster.local', 'loop.example.com', 'loop.corp.internal']);
    const v2 = corefile({ port, upstream: second, ttl: 30, stub: true });
    await writeFile(file, v2);
    await waitFor('the new upstream answering', async () => (await dig(port, 'www.example.org'))[0] === 'www.example.org. 30 192.0.2.8', 6000, 200);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const during = await loop.stop();
    expect(during.lost).toBe(0);
    expect(during.bad).toEqual([]);
    expect(during.answered).toBe(during.sent);
    expect(during.sent).toBeGreaterThan(100);
    expect(await dig(port, 'web.default.svc.cluster.local')).toEqual(['web.default.svc.cluster.local. 30 10.96.0.10']);
    expect(await dig(port, 'git.corp.internal')).toEqual(['git.corp.internal. 30 192.0.2.99']);
    expect(stub.seen.map((q) => q.name)).toContain('git.corp.internal');
    expect(await metric('coredns_reload_version_info')).toEqual([`coredns_reload_version_info{hash="sha512",value="${sha512(v2)}"} 1`]);
    expect(await metric('coredns_reload_failed_total')).toEqual(['coredns_reload_failed_total 0']);
    // The cache's counters go on from where the replaced forwarder left them.
    expect(Number((await metric('coredns_cache_requests_total{server="dns://127.0.0.1:'))[0]!.split(' ')[1])).toBeGreaterThan(requestsBefore);

    // A Corefile that cannot be used: logged and counted once, the server answering as before.
    await writeFile(file, v2.replace(`forward . ${second.hostPort.text}`, 'forward . /etc/other-resolv.conf'));
    await waitFor('the bad Corefile logged', () => dns!.logs().includes('the Corefile changed and cannot be used'), 6000);
    await new Promise((resolve) => setTimeout(resolve, 3000));
    expect(await metric('coredns_reload_failed_total')).toEqual(['coredns_reload_failed_total 1']);
    expect(dns.logs().split('\n').filter((l) => l.includes('the Corefile changed and cannot be used'))).toHaveLength(1);
    expect(await dig(port, 'www.example.net')).toEqual(['www.example.net. 30 192.0.2.8']);
    expect(await metric('coredns_reload_version_info')).toEqual([`coredns_reload_version_info{hash="sha512",value="${sha512(v2)}"} 1`]);

    // Another port: a restart's business; the TTL beside it is applied.
    await writeFile(file, corefile({ port: other, upstream: second, ttl: 40, stub: true }));
    await waitFor('the TTL of the next Corefile', async () => (await dig(port, 'web.default.svc.cluster.local'))[0] === 'web.default.svc.cluster.local. 40 10.96.0.10', 6000, 200);
    expect(dns.logs()).toContain('the Corefile changes --listen: that applies when netplane dns restarts; it keeps its running value');
    expect(await host.run('dig', ['@127.0.0.1', '-p', String(other), '+time=1', '+tries=1', 'web.default.svc.cluster.local']).then(() => 'answered', () => 'no answer')).toBe('no answer');

    // Without reload the Corefile is applied once more, and then no longer read.
    await writeFile(file, corefile({ port, upstream: second, ttl: 50, stub: true, reload: false }));
    await waitFor('the TTL of the Corefile without reload', async () => (await dig(port, 'web.default.svc.cluster.local'))[0] === 'web.default.svc.cluster.local. 50 10.96.0.10', 6000, 200);
    await writeFile(file, corefile({ port, upstream: first, ttl: 60, stub: true }));
    await new Promise((resolve) => setTimeout(resolve, 4000));
    expect(await dig(port, 'web.default.svc.cluster.local')).toEqual(['web.default.svc.cluster.local. 50 10.96.0.10']);
    expect(await metric('coredns_reload_version_info')).toEqual([]);
  }, 60_000);
});
