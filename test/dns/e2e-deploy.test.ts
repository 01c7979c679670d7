// deploy/dns.yaml's arguments and Corefile run as the Deployment runs them (listen and admin addresses moved to
// loopback port 0, the upstream to one the test starts, both on the command line, which wins over the Corefile): the
// Corefile's `pods insecure` holds, so pod names answer, with its TTL.
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait.ts';
import { parseText, repoRoot } from '../deploy/load.ts';
import { startUpstream, type FakeUpstream } from './forward/fake-upstream.ts';
import { dig, digWithTtl, startDns, type DnsProcess } from './process.ts';

type Body = { kind?: string; metadata?: { name?: string }; data?: Record<string, string>; spec?: { template?: { spec?: { containers?: Array<{ name: string; args?: string[]; volumeMounts?: Array<{ name: string; mountPath: string }> }>; volumes?: Array<{ name: string; configMap?: { name: string } }> } } } };

/** The Deployment of deploy/dns.yaml and the ConfigMaps beside it. */
function deployDocs(): { deployment: Body | undefined; configMaps: Body[] } {
  const file = 'deploy/dns.yaml';
  const bodies = parseText(file, readFileSync(join(repoRoot, file), 'utf8')).docs.map((d) => d.body as Body);
  return { deployment: bodies.find((b) => b.kind === 'Deployment'), configMaps: bodies.filter((b) => b.kind === 'ConfigMap') };
}

const open: Array<DnsProcess | FakeUpstream> = [];
let dir: string | undefined;
afterAll(async () => {
  await Promise.all(open.map((o) => ('stop' in o ? o.stop() : o.close())));
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

it("deploy/dns.yaml runs from its ConfigMap's Corefile, mounted where --conf reads it: pod names answer, with its TTL", async () => {
  const { deployment, configMaps } = deployDocs();
  const pod = deployment?.spec?.template?.spec;
  const container = pod?.containers?.find((c) => c.name === 'dns');
  const args = container?.args ?? [];
  expect(args[0]).toBe('dns');
  // --conf names a file in the volume of the ConfigMap that holds it.
  const conf = args.find((a) => a.startsWith('--conf='))?.slice('--conf='.length) ?? '';
  const mount = container?.volumeMounts?.find((m) => conf.startsWith(`${m.mountPath}/`));
  const volume = pod?.volumes?.find((v) => v.name === mount?.name);
  const corefile = configMaps.find((c) => c.metadata?.name === volume?.configMap?.name)?.data?.[conf.slice(mount!.mountPath.length + 1)];
  expect(corefile, `--conf=${conf} is not a key of a mounted ConfigMap`).toBeDefined();

  dir = await mkdtemp(join(tmpdir(), 'netplane-deploy-dns-'));
  const file = join(dir, 'Corefile');
  await writeFile(file, corefile!);
  const up = await startUpstream(() => ({ rcode: 'NXDOMAIN' }));
  open.push(up);
  const kept = args.slice(1).map((a) => (a.startsWith('--conf=') ? `--conf=${file}` : a));
  const dns = await startDns([...kept, '--listen', '127.0.0.1:0', '--upstream', up.hostPort.text, '--lameduck', '0s']);
  open.push(dns);
  const port = Number(await waitFor('dns listening', () => /"udp:\/\/127\.0\.0\.1:(\d+)"/.exec(dns.logs())?.[1], 15_000));
  // The zone answers SERVFAIL until the first full view of the manifests is loaded, which may come after listening.
  const r = await waitFor('an answer from the loaded zone', async () => {
    const a = await dig(port, '10-244-1-5.default.pod.cluster.local');
    return a.status === 'SERVFAIL' ? undefined : a;
  }, 15_000);
  expect(r?.status, dns.logs()).toBe('NOERROR');
  expect(await digWithTtl(port, '10-244-1-5.default.pod.cluster.local')).toEqual(['10-244-1-5.default.pod.cluster.local. 30 10.244.1.5']);
  // Nothing in it is a plugin netplane lacks: the only warnings are the command line's overrides.
  const warned = dns.logs().split('\n').filter((l) => l.includes('"level":40')).map((l) => (JSON.parse(l) as { msg: string }).msg);
  expect(warned.every((w) => w.includes('is overridden by --'))).toBe(true);
});
