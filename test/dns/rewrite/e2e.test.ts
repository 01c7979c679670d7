// A real `netplane dns` process queried with dig: --rewrite-name into the cluster zone and to an upstream, endpoint
// names and PTR of a ClusterIP Service's endpoints, the SOA TTL cap, an ExternalName holding an IP.
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import dnsPacket from 'dns-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { service, slice } from '../../fixtures/objects.ts';
import { waitFor } from '../../helpers/wait.ts';
import { HostRunner } from '../../../runtime/exec.ts';

const bin = fileURLToPath(new URL('../../../bin/netplane.ts', import.meta.url));
const host = new HostRunner();

/** dig's status and its answer and authority lines, the TTL kept (it is asserted here). */
async function dig(port: number, name: string, type: string, ...opts: string[]) {
  const { stdout } = await host.run('dig', ['@127.0.0.1', '-p', String(port), '+time=2', '+tries=1', '+nocmd', '+nostats', ...opts, name, type]);
  const section = (title: string) => {
    const m = new RegExp(`;; ${title} SECTION:\\n([\\s\\S]*?)(?:\\n\\n|$)`).exec(stdout);
    return (m?.[1] ?? '').split('\n').filter((l) => l && !l.startsWith(';')).map((l) => l.split(/\s+/).slice(0, 5).join(' '));
  };
  return { status: /status: (\w+)/.exec(stdout)?.[1], answer: section('ANSWER'), authority: section('AUTHORITY') };
}

/** An upstream that answers every A question with 192.0.2.7 and logs the names it was asked. */
function upstream(): Promise<{ socket: Socket; port: number; asked: string[] }> {
  const socket = createSocket('udp4');
  const asked: string[] = [];
  socket.on('message', (msg, r) => {
    const q = dnsPacket.decode(msg);
    const question = q.questions![0]!;
    asked.push(question.name);
    const answers = question.type === 'A' ? [{ name: question.name, type: 'A' as const, ttl: 20, data: '192.0.2.7' }] : [];
    socket.send(dnsPacket.encode({ id: q.id, type: 'response', flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE, questions: q.questions, answers }), r.port, r.address);
  });
  return new Promise((resolve) => socket.bind(0, '127.0.0.1', () => resolve({ socket, port: socket.address().port, asked })));
}

describe('netplane dns --rewrite-name and endpoint names, with dig', () => {
  let dir: string;
  let dns: ChildProcess;
  let up: Awaited<ReturnType<typeof upstream>>;
  let out = '';
  let port: number;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'netplane-rewrite-'));
    const ep = (ip: string, extra: object = {}) => ({ addresses: [ip], ...extra });
    const objects = [
      service('api', { clusterIP: '10.96.1.1', ports: [{ name: 'http', port: 80 }] }, { namespace: 'lb' }),
      slice('api-1', 'api', [ep('10.244.6.1'), ep('10.244.6.2', { hostname: 'named' }), ep('10.244.6.3', { conditions: { ready: false } })], [{ name: 'http', port: 8080 }], { namespace: 'lb' }),
      service('extip', { type: 'ExternalName', externalName: '192.0.2.55' }, { namespace: 'lb' }),
    ];
    await writeFile(join(dir, 'cluster.yaml'), objects.map((o) => JSON.stringify(o)).join('\n---\n'));
    up = await upstream();
    const args = ['dns', '--manifests', dir, '--admin', '127.0.0.1:0', '--listen', '127.0.0.1:0', '--upstream', `127.0.0.1:${up.port}`, '--ttl', '3600'];
    args.push('--rewrite-name', 'exact:api.example.com:api.lb.svc.cluster.local', '--rewrite-name', 'suffix:.corp.example:.svc.cluster.local', '--rewrite-name', 'exact:www.example.com:www.example.org');
    dns = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    dns.stdout!.on('data', (d) => (out += d));
    dns.stderr!.on('data', (d) => (out += d));
    port = Number(await waitFor('the UDP port in the log', () => /"udp:\/\/127\.0\.0\.1:(\d+)"/.exec(out)?.[1], 15_000));
    await waitFor('dns answering', async () => (await dig(port, 'api.lb.svc.cluster.local', 'A').catch(() => undefined))?.status === 'NOERROR', 15_000);
  });
  afterAll(async () => {
    dns?.kill('SIGTERM');
    up?.socket.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const cases: Array<{ q: [string, string, ...string[]]; status: string; answer: string[]; authority?: string[] }> = [
    { q: ['api.lb.svc.cluster.local', 'A'], status: 'NOERROR', answer: ['api.lb.svc.cluster.local. 3600 IN A 10.96.1.1'] },
    { q: ['10-244-6-1.api.lb.svc.cluster.local', 'A'], status: 'NOERROR', answer: ['10-244-6-1.api.lb.svc.cluster.local. 3600 IN A 10.244.6.1'] },
    { q: ['named.api.lb.svc.cluster.local', 'A'], status: 'NOERROR', answer: ['named.api.lb.svc.cluster.local. 3600 IN A 10.244.6.2'] },
    { q: ['10.244.6.1', 'PTR', '-x'], status: 'NOERROR', answer: ['1.6.244.10.in-addr.arpa. 3600 IN PTR 10-244-6-1.api.lb.svc.cluster.local.'] },
    { q: ['10.244.6.2', 'PTR', '-x'], status: 'NOERROR', answer: ['2.6.244.10.in-addr.arpa. 3600 IN PTR named.api.lb.svc.cluster.local.'] },
    { q: ['10-244-6-3.api.lb.svc.cluster.local', 'A'], status: 'NXDOMAIN', answer: [], authority: ['cluster.local. 300 IN SOA ns.dns.cluster.local.'] },
    { q: ['extip.lb.svc.cluster.local', 'A'], status: 'NXDOMAIN', answer: [] },
    { q: ['api.example.com', 'A'], status: 'NOERROR', answer: ['api.example.com. 3600 IN A 10.96.1.1'] },
    { q: ['API.Example.COM', 'A'], status: 'NOERROR', answer: ['API.Example.COM. 3600 IN A 10.96.1.1'] },
    { q: ['api.lb.corp.example', 'A'], status: 'NOERROR', answer: ['api.lb.corp.example. 3600 IN A 10.96.1.1'] },
    { q: ['named.api.lb.corp.example', 'A'], status: 'NOERROR', answer: ['named.api.lb.corp.example. 3600 IN A 10.244.6.2'] },
    { q: ['api.lb.corp.example', 'A', '+tcp'], status: 'NOERROR', answer: ['api.lb.corp.example. 3600 IN A 10.96.1.1'] },
    { q: ['www.example.com', 'A'], status: 'NOERROR', answer: ['www.example.com. 20 IN A 192.0.2.7'] },
  ];
  for (const c of cases) {
    it(`dig ${c.q.join(' ')}`, async () => {
      const got = await dig(port, ...c.q);
      expect(got.status).toBe(c.status);
      expect(got.answer).toEqual(c.answer);
      if (c.authority) expect(got.authority.map((l) => l.split(' ').slice(0, 5).join(' '))).toEqual(c.authority);
    });
  }

  it('asked upstream the rewritten name only, never the IP of the ExternalName or a cluster name', () => {
    expect(up.asked.filter((n) => !n.includes('netplane-loop-check'))).toEqual(['www.example.org']);
  });
});
