// A manifest file as people keep them: a Service, its Endpoints, and the Pod behind them written for `kubectl create`
// (generateName, no name). Components that do not read Pods skip it and serve the Service; dns --pods verified reads
// Pods, so it refuses the file and says which document. Real processes from the command line, a TCP client and dig.
import { firstLine as firstLineOf } from '../helpers/first-line.ts';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { dig } from '../dns/process.ts';
import { freePort } from '../helpers/ports.ts';
import { waitFor } from '../helpers/wait.ts';

const bin = fileURLToPath(new URL('../../bin/netplane.ts', import.meta.url));

const cleanup: Array<() => Promise<unknown> | void> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

/** A directory holding app.yaml: Service default/app (10.96.0.20, port `port`), its Endpoints to 127.0.0.1:`target`, and a generateName Pod. */
async function appDir(port: number, target: number): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'netplane-pods-in-manifests-'));
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
  await writeFile(
    join(dir, 'app.yaml'),
    `apiVersion: v1
kind: Service
metadata: {name: app, namespace: default}
spec: {clusterIP: 10.96.0.20, ports: [{name: http, port: ${port}, targetPort: ${target}}]}
---
apiVersion: v1
kind: Endpoints
metadata: {name: app, namespace: default}
subsets: [{addresses: [{ip: 127.0.0.1}], ports: [{name: http, port: ${target}}]}]
---
apiVersion: v1
kind: Pod
metadata: {generateName: app-, namespace: default}
spec: {containers: [{name: c, image: nginx}]}
`,
  );
  return dir;
}

/** Runs `netplane ARGS`; returns what it has printed so far. */
function run(args: string[]): () => string {
  const proc = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (d) => (out += d));
  proc.stderr.on('data', (d) => (out += d));
  const exited = new Promise((r) => proc.once('exit', r));
  cleanup.push(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    return exited;
  });
  return () => out;
}

/** The first line a TCP server at 127.0.0.1:`port` sends, or undefined when it cannot be reached. */
const firstLine = (port: number): Promise<string | undefined> => firstLineOf(port).catch(() => undefined);

describe('a Pod that only one mode reads, beside a Service in one manifest file', () => {
  it('proxy --mode userspace serves the Service, and says nothing of the Pod', async () => {
    const backend: Server = createServer((s) => s.end('app\n'));
    await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
    cleanup.push(() => new Promise((r) => backend.close(r)));
    const port = await freePort();
    const dir = await appDir(port, (backend.address() as AddressInfo).port);
    const out = run(['proxy', '--mode', 'userspace', '--bind-address', '127.0.0.1', '--manifests', dir, '--admin', '127.0.0.1:0', '--node-name', 'n1']);
    await waitFor('the first sync', () => out().includes('"rules synced"'), 15_000);
    expect(await waitFor('the Service answering', () => firstLine(port), 5000)).toBe('app');
    expect(out()).toMatch(/"objects":\{"Service":1,"EndpointSlice":1,"Node":0\}.*"msg":"first full view loaded"/);
    expect(out()).not.toContain('rejected');
  }, 30_000);

  const dnsRows: Array<[string, string[], string, RegExp | undefined]> = [
    ['dns answers the Service', [], 'NOERROR app.default.svc.cluster.local. IN A 10.96.0.20', undefined],
    ['dns --pods insecure answers the Service', ['--pods', 'insecure'], 'NOERROR app.default.svc.cluster.local. IN A 10.96.0.20', undefined],
    // The Pod is read here, and a Pod needs a name: the file is refused (it never had a good version), and said so.
    ['dns --pods verified refuses the file, naming the document', ['--pods', 'verified'], 'NXDOMAIN', /manifest app\.yaml document 3 rejected: Pod: metadata\.name: [^"]+; no version of it has been read, so nothing it holds is in the view until it is fixed/],
  ];
  it.each(dnsRows)('%s', async (_, flags, want, problem) => {
    const dir = await appDir(80, 8080);
    const port = await freePort();
    const out = run(['dns', '--manifests', dir, '--listen', `127.0.0.1:${port}`, '--admin', '127.0.0.1:0', '--upstream', '127.0.0.1:9', '--lameduck', '0s', ...flags]);
    await waitFor('dns answering', async () => (await dig(port, 'kubernetes.default.svc.cluster.local')).status === 'NXDOMAIN', 15_000);
    const r = await dig(port, 'app.default.svc.cluster.local');
    expect(`${r.status} ${r.answer.join(' | ')}`.trim()).toBe(want);
    if (problem) expect(out()).toMatch(problem);
    else expect(out()).not.toContain('rejected');
  }, 30_000);
});
