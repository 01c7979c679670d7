// netplane dns when an upstream is silent: cluster names keep being answered at once while external names pend.
import { createSocket } from 'node:dgram';
import dnsPacket from 'dns-packet';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/ports.ts';
import { waitFor } from '../helpers/wait.ts';
import { dig, silentUpstream, startDns, type DnsProcess } from './process.ts';

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function running(args: string[]): Promise<{ dns: DnsProcess; port: number }> {
  const port = await freePort();
  const dns = await startDns(['--listen', `127.0.0.1:${port}`, ...args]);
  cleanup.push(() => dns.stop());
  await waitFor('dns answering', async () => (await dig(port, 'web.default.svc.cluster.local')).status === 'NOERROR', 15_000);
  return { dns, port };
}

describe('netplane dns with a silent upstream', () => {
  it('answers cluster names within a second while thousands of distinct external names wait upstream', async () => {
    const up = await silentUpstream();
    cleanup.push(() => void up.socket.close());
    const { dns, port } = await running(['--upstream', `127.0.0.1:${up.port}`]);
    const flood = createSocket('udp4');
    cleanup.push(() => void flood.close());
    let sent = 0;
    // 4,000 distinct names a second for 4 s: each waits 2 s per attempt upstream, so thousands are pending.
    const timer = setInterval(() => {
      for (let i = 0; i < 200; i++, sent++) {
        flood.send(dnsPacket.encode({ type: 'query', id: sent & 0xffff, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name: `n${sent}.flood.example` }] }), port, '127.0.0.1');
      }
    }, 50);
    cleanup.push(() => clearInterval(timer));
    await sleep(1500);
    const answers = [];
    for (let i = 0; i < 8; i++) {
      answers.push(await dig(port, 'web.default.svc.cluster.local'));
      await sleep(200);
    }
    clearInterval(timer);
    expect(sent).toBeGreaterThan(8000);
    expect(answers).toEqual(Array(8).fill({ status: 'NOERROR', answer: ['web.default.svc.cluster.local. IN A 10.96.0.10'] }));
    // Above 1,000 upstream queries under way, the rest were answered SERVFAIL at once and counted.
    const rejects = /^coredns_forward_max_concurrent_rejects_total (\d+)/m.exec((await dns.admin('/metrics')).body)?.[1];
    expect(Number(rejects)).toBeGreaterThan(0);
  }, 30_000);
});
