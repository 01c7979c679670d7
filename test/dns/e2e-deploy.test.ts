// deploy/dns.yaml's arguments run as the Deployment runs them (listen and admin addresses moved to loopback port
// 0): the default Corefile's `pods insecure` holds, so pod names answer.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait.ts';
import { parseText, repoRoot } from '../deploy/load.ts';
import { startUpstream, type FakeUpstream } from './forward/fake-upstream.ts';
import { dig, startDns, type DnsProcess } from './process.ts';

/** The args of the `dns` container of deploy/dns.yaml's Deployment. */
function deployArgs(): string[] {
  const file = 'deploy/dns.yaml';
  const { docs } = parseText(file, readFileSync(join(repoRoot, file), 'utf8'));
  const spec = docs.map((d) => d.body as { kind?: string; spec?: { template?: { spec?: { containers?: Array<{ name: string; args?: string[] }> } } } }).find((b) => b.kind === 'Deployment');
  return spec?.spec?.template?.spec?.containers?.find((c) => c.name === 'dns')?.args ?? [];
}

const open: Array<DnsProcess | FakeUpstream> = [];
afterAll(() => Promise.all(open.map((o) => ('stop' in o ? o.stop() : o.close()))));

it('deploy/dns.yaml runs with --pods=insecure, as every default Corefile, and pod names answer', async () => {
  const args = deployArgs();
  expect(args[0]).toBe('dns');
  expect(args).toContain('--pods=insecure');
  const up = await startUpstream(() => ({ rcode: 'NXDOMAIN' }));
  open.push(up);
  const kept = args.slice(1).filter((a) => !a.startsWith('--admin') && !a.startsWith('--listen'));
  const dns = await startDns([...kept, '--listen', '127.0.0.1:0', '--upstream', up.hostPort.text, '--lameduck', '0s']);
  open.push(dns);
  const port = Number(await waitFor('dns listening', () => /"udp:\/\/127\.0\.0\.1:(\d+)"/.exec(dns.logs())?.[1], 15_000));
  // The zone answers SERVFAIL until the first full view of the manifests is loaded, which may come after listening.
  const r = await waitFor('an answer from the loaded zone', async () => {
    const a = await dig(port, '10-244-1-5.default.pod.cluster.local');
    return a.status === 'SERVFAIL' ? undefined : a;
  }, 15_000);
  expect(r?.status, dns.logs()).toBe('NOERROR');
  expect(r?.answer).toEqual(['10-244-1-5.default.pod.cluster.local. IN A 10.244.1.5']);
});
