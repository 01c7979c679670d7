// A real `netplane dns` process for end-to-end tests of its life cycle: started from a manifest directory with one
// Service, queried with dig, its admin endpoints read over HTTP.
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { service } from '../fixtures/objects.ts';
import { waitFor } from '../helpers/wait.ts';
import { HostRunner } from '../../runtime/exec.ts';

const bin = fileURLToPath(new URL('../../bin/netplane.ts', import.meta.url));
const host = new HostRunner();

/** dig's status (undefined when it got no reply within a second) and answer lines without TTL; sent from `source` when given. */
export async function dig(port: number, name: string, type = 'A', source?: string): Promise<{ status: string | undefined; answer: string[] }> {
  const from = source === undefined ? [] : ['-b', source];
  const { stdout } = await host.run('dig', ['@127.0.0.1', '-p', String(port), ...from, '+time=1', '+tries=1', '+nocmd', '+nostats', name, type]).catch(() => ({ stdout: '' }));
  const m = /;; ANSWER SECTION:\n([\s\S]*?)(?:\n\n|$)/.exec(stdout);
  const answer = (m?.[1] ?? '').split('\n').filter((l) => l && !l.startsWith(';')).map((l) => l.split(/\s+/).filter((_, i) => i !== 1).join(' '));
  return { status: /status: (\w+)/.exec(stdout)?.[1], answer };
}

/**
 * dig's status and the addresses of its A answer, waiting up to 6 s; `sourcePort` gives each of several concurrent
 * digs a port of its own (dig sets SO_REUSEADDR on its UDP socket, so Linux may give two digs running at once the
 * same ephemeral port, and both replies then reach the later one). A dig that fails keeps what it said in `raw`.
 */
export async function digAddresses(port: number, name: string, sourcePort?: number): Promise<{ status: string | undefined; addresses: string[]; raw: string }> {
  const source = sourcePort === undefined ? [] : ['-b', `127.0.0.1#${sourcePort}`];
  const { stdout } = await host.run('dig', ['@127.0.0.1', '-p', String(port), ...source, '+time=6', '+tries=1', '+nocmd', '+nostats', name, 'A']).catch((e: Error) => ({ stdout: `dig failed: ${e.message}` }));
  const m = /;; ANSWER SECTION:\n([\s\S]*?)(?:\n\n|$)/.exec(stdout);
  const addresses = (m?.[1] ?? '').split('\n').filter((l) => l && !l.startsWith(';')).map((l) => l.split(/\s+/)[4] ?? '');
  return { status: /status: (\w+)/.exec(stdout)?.[1], addresses, raw: stdout };
}

/** The value of the first series of metric `name` whose labels include each of `labels` (`k="v"`, comma-separated); 0 when there is none. */
export async function metricValue(dns: DnsProcess, name: string, labels: string): Promise<number> {
  const body = (await dns.admin('/metrics')).body;
  const line = body.split('\n').find((l) => l.startsWith(`${name}{`) && labels.split(',').every((kv) => l.includes(kv)));
  return line ? Number(line.split(' ').pop()) : 0;
}

/** dig's A answer lines as `NAME TTL ADDRESS`, waiting up to 2 s for a reply. */
export async function digWithTtl(port: number, name: string): Promise<string[]> {
  const { stdout } = await host.run('dig', ['@127.0.0.1', '-p', String(port), '+time=2', '+tries=1', '+noall', '+answer', name, 'A']);
  return stdout.trim().split('\n').filter(Boolean).map((l) => l.split(/\s+/)).map(([n, ttl, , , ip]) => `${n} ${ttl} ${ip}`);
}

/** A running `netplane dns`. */
export interface DnsProcess {
  proc: ChildProcess;
  logs(): string;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
  /** GETs an admin path: status and body. */
  admin(path: string): Promise<{ status: number; body: string }>;
  stop(): Promise<void>;
}

/** Options of startDns. */
export interface StartOptions {
  /**
   * The text the process reads as /etc/resolv.conf: bind-mounted over it in a mount namespace of its own (unshare), so
   * the host's file and every other process are untouched.
   */
  resolvConf?: string;
  /** Name no cluster source: neither --manifests nor $KUBECONFIG (for --forward-only). */
  noSource?: boolean;
}

/** Starts `netplane dns` on a manifest directory holding default/web (10.96.0.10) and `objects`, with these extra flags. */
export async function startDns(args: string[], objects: object[] = [], options: StartOptions = {}): Promise<DnsProcess> {
  const dir = await mkdtemp(join(tmpdir(), 'netplane-dns-'));
  await writeFile(join(dir, 'web.yaml'), JSON.stringify(service('web', { clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80 }] })));
  if (objects.length > 0) await writeFile(join(dir, 'objects.yaml'), objects.map((o) => JSON.stringify(o)).join('\n---\n'));
  const argv = [process.execPath, bin, 'dns', ...(options.noSource ? [] : ['--manifests', dir]), '--admin', '127.0.0.1:0', ...args];
  let cmd = argv;
  if (options.resolvConf !== undefined) {
    const file = join(dir, 'resolv.conf');
    await writeFile(file, options.resolvConf);
    // sh execs node, so the process (and its pid) is netplane's and the mount namespace ends with it.
    cmd = ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', 'mount --bind "$0" /etc/resolv.conf && exec "$@"', file, ...argv];
  }
  const env = { ...process.env };
  if (options.noSource) delete env.KUBECONFIG;
  const proc = spawn(cmd[0]!, cmd.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const adminPort = () => waitFor('admin port in the log', () => /"admin":"127\.0\.0\.1:(\d+)"/.exec(out)?.[1], 15_000);
  return {
    proc,
    logs: () => out,
    exited,
    async admin(path) {
      const res = await fetch(`http://127.0.0.1:${await adminPort()}${path}`);
      return { status: res.status, body: await res.text() };
    },
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A UDP "upstream" that receives queries and never answers, as behind a firewall that drops them. */
export function silentUpstream(): Promise<{ socket: Socket; port: number; received: () => number }> {
  const socket = createSocket('udp4');
  let received = 0;
  socket.on('message', () => received++);
  return new Promise((resolve) => socket.bind(0, '127.0.0.1', () => resolve({ socket, port: socket.address().port, received: () => received })));
}
