// Convergence of `netplane overlay`, beside `ip -batch`/`bridge -batch` programming the same entries, in one run:
//  - netplane: the CLI in a fresh namespace (a veth underlay), reading a manifest directory. 200 remote Nodes are
//    written at once; the agent's own timing (`seenMs` in its "overlay synced" log line: the store change seen →
//    every entry in the kernel) and the wall time from writing the file to that log line (the manifest watcher's
//    50 ms debounce and parsing included) are recorded, and the 600 entries are counted with `ip`/`bridge`. Then
//    single Node changes (one node's address moves: neighbour, FDB replace and the old FDB entry deleted), then
//    every remote removed again; repeated per round.
//  - peer: `ip -batch` (200 neighbours, 200 routes) and `bridge -batch` (200 FDB entries) into a VXLAN device of
//    another fresh namespace, timed from spawn to exit; a single change as one `ip` and one `bridge` process.
import type { ChildProcess } from 'node:child_process';
import { onLogLines } from '../../lab/log-lines.ts';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NetnsLab } from '../../lab/netns.ts';
import { derivedMac } from '../../overlay/plan/node.ts';
import { HostRunner } from '../../runtime/exec.ts';

const bin = fileURLToPath(new URL('../../bin/netplane.ts', import.meta.url));
const host = new HostRunner();

/** What one convergence run measured, in milliseconds per round (or per change). */
export interface ConvergenceResult {
  remotes: number;
  /** Entries found in the kernel after the first add (neighbours + FDB entries + routes). */
  entries: number;
  netplane: { addSeenMs: number[]; addWallMs: number[]; changeSeenMs: number[]; changeWallMs: number[]; removeSeenMs: number[] };
  ipBatch: { addMs: number[]; changeMs: number[] };
}

interface Remote {
  name: string;
  ip: string;
  podCIDR: string;
}

const remoteAt = (i: number, moved = false): Remote => ({
  name: `remote${i}`,
  ip: `192.168.${moved ? 2 : 1}.${i}`,
  podCIDR: `10.244.${i}.0/24`,
});

function nodeDoc(n: Remote): string {
  return JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name: n.name }, spec: { podCIDR: n.podCIDR }, status: { addresses: [{ type: 'InternalIP', address: n.ip }] } });
}

/** A running agent whose "overlay synced" log lines can be awaited. */
class AgentLog {
  readonly proc: ChildProcess;
  #lines: Array<Record<string, unknown> & { at: number }> = [];
  #waiters: Array<() => void> = [];

  constructor(proc: ChildProcess) {
    this.proc = proc;
    onLogLines(proc.stdout!, (r) => {
      this.#lines.push({ ...r, at: performance.now() });
      for (const w of this.#waiters.splice(0)) w();
    });
  }

  /** The first "overlay synced" line from index `from` on that satisfies `pred`; rejects after `timeoutMs`. */
  async synced(from: number, pred: (l: Record<string, unknown>) => boolean, timeoutMs = 20_000): Promise<Record<string, unknown> & { at: number }> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const hit = this.#lines.slice(from).find((l) => l.msg === 'overlay synced' && pred(l));
      if (hit) return hit;
      const failed = this.#lines.slice(from).find((l) => l.msg === 'programming the overlay failed; what works stays, retrying with a full sync');
      if (failed) throw new Error(`the agent failed: ${JSON.stringify(failed)}`);
      if (performance.now() > deadline || this.proc.exitCode !== null) throw new Error(`no matching "overlay synced" line; last lines: ${JSON.stringify(this.#lines.slice(-3))}`);
      await new Promise<void>((r) => {
        this.#waiters.push(r);
        setTimeout(r, 200);
      });
    }
  }

  get length(): number {
    return this.#lines.length;
  }
}

/** An underlay for a namespace: eth0 with 192.168.0.1/16, a veth into an otherwise empty namespace. */
async function underlay(lab: NetnsLab, ns: string): Promise<void> {
  await lab.veth({ ns, ifname: 'eth0', addrs: ['192.168.0.1/16'] }, { ns: await lab.ns(`${ns.split('-').at(-1)}-sink`), ifname: 'eth0' });
}

async function count(lab: NetnsLab, ns: string): Promise<number> {
  const lines = async (cmd: string, args: string[]) => (await lab.exec(ns, cmd, args)).stdout.split('\n').filter(Boolean).length;
  return (
    (await lines('ip', ['neigh', 'show', 'dev', 'netplane.1', 'nud', 'permanent'])) +
    (await lines('bridge', ['fdb', 'show', 'dev', 'netplane.1'])) +
    (await lines('ip', ['route', 'show', 'dev', 'netplane.1']))
  );
}

/** Runs both sides; every namespace and file made is removed, also on failure. */
export async function benchConvergence(options: { rounds?: number; changes?: number; remotes?: number; log?: (line: string) => void } = {}): Promise<ConvergenceResult> {
  const rounds = options.rounds ?? 5;
  const changes = options.changes ?? 10;
  const n = options.remotes ?? 200;
  const say = options.log ?? (() => {});
  const lab = NetnsLab.create();
  const dir = await mkdtemp(join(tmpdir(), 'netplane-bench-overlay-'));
  const result: ConvergenceResult = { remotes: n, entries: 0, netplane: { addSeenMs: [], addWallMs: [], changeSeenMs: [], changeWallMs: [], removeSeenMs: [] }, ipBatch: { addMs: [], changeMs: [] } };
  try {
    const ns = await lab.ns('conv');
    await underlay(lab, ns);
    const self: Remote = { name: 'self', ip: '192.168.0.1', podCIDR: '10.244.0.0/24' };
    // Written in place: Node's recursive watcher loses a file replaced by rename, and the source then only sees
    // the change at its 2 s rescan. (The source's 50 ms debounce covers the write.)
    const write = async (nodes: Remote[]) => {
      const t = performance.now();
      await writeFile(join(dir, 'nodes.yaml'), nodes.map(nodeDoc).join('\n---\n'));
      return t;
    };
    await write([self]);
    const agent = new AgentLog(lab.spawn(ns, process.execPath, [bin, 'overlay', '--manifests', dir, '--node-name', 'self', '--cluster-cidr', '10.244.0.0/16', '--admin', '127.0.0.1:10247', '--log-level', 'info']));
    await agent.synced(0, () => true);
    const remotes = Array.from({ length: n }, (_, i) => remoteAt(i + 1));
    // Round 0 warms the agent up (its code paths compiled) and is not recorded.
    for (let round = -1; round < rounds; round++) {
      const keep = round >= 0;
      let from = agent.length;
      const t = await write([self, ...remotes]);
      const added = await agent.synced(from, (l) => l.remotes === n);
      if (keep) result.netplane.addSeenMs.push(Number(added.seenMs));
      if (keep) result.netplane.addWallMs.push(added.at - t);
      if (round === 0) result.entries = await count(lab, ns);
      for (let c = 0; c < changes; c++) {
        from = agent.length;
        const tc = await write([self, ...remotes.map((r, i) => (i === 6 ? remoteAt(7, c % 2 === 0) : r))]);
        const changed = await agent.synced(from, (l) => Number(l.operations) > 0);
        if (keep) result.netplane.changeSeenMs.push(Number(changed.seenMs));
        if (keep) result.netplane.changeWallMs.push(changed.at - tc);
      }
      from = agent.length;
      await write([self]);
      const removed = await agent.synced(from, (l) => l.remotes === 0);
      if (!keep) continue;
      result.netplane.removeSeenMs.push(Number(removed.seenMs));
      const walls = result.netplane.changeWallMs.slice(-changes).map((x) => x.toFixed(0)).join('/');
      say(`  round ${round + 1}: add ${added.seenMs} ms (wall ${(added.at - t).toFixed(1)} ms), changes ${result.netplane.changeSeenMs.slice(-changes).join('/')} ms (wall ${walls}), remove ${removed.seenMs} ms`);
    }

    const peer = await lab.ns('peer');
    await underlay(lab, peer);
    await lab.exec(peer, 'ip', ['link', 'add', 'netplane.1', 'type', 'vxlan', 'id', '1', 'local', '192.168.0.1', 'dev', 'eth0', 'dstport', '8472', 'nolearning']);
    await lab.exec(peer, 'ip', ['link', 'set', 'netplane.1', 'up']);
    const ipLines = (verb: string) =>
      remotes.flatMap((r) => {
        const vtep = r.podCIDR.split('/')[0]!;
        return verb === 'replace'
          ? [`neigh replace ${vtep} lladdr ${derivedMac(r.ip)} dev netplane.1 nud permanent`, `route replace ${r.podCIDR} via ${vtep} dev netplane.1 onlink`]
          : [`route del ${r.podCIDR} dev netplane.1`, `neigh del ${vtep} dev netplane.1`];
      }).join('\n') + '\n';
    const fdbLines = (verb: string) => remotes.map((r) => `fdb ${verb} ${derivedMac(r.ip)} dev netplane.1 dst ${r.ip}${verb === 'replace' ? ' self permanent' : ''}`).join('\n') + '\n';
    for (let round = 0; round < rounds; round++) {
      const t0 = performance.now();
      await host.run('ip', ['-n', peer, '-batch', '-'], ipLines('replace'));
      await host.run('bridge', ['-n', peer, '-batch', '-'], fdbLines('replace'));
      result.ipBatch.addMs.push(performance.now() - t0);
      if (round === 0 && (await count(lab, peer)) !== 3 * n) throw new Error('ip -batch did not program every entry');
      for (let c = 0; c < changes; c++) {
        const old = remoteAt(7, c % 2 === 1);
        const moved = remoteAt(7, c % 2 === 0);
        const t1 = performance.now();
        await host.run('ip', ['-n', peer, 'neigh', 'replace', '10.244.7.0', 'lladdr', derivedMac(moved.ip), 'dev', 'netplane.1', 'nud', 'permanent']);
        await host.run('bridge', ['-n', peer, '-batch', '-'], `fdb del ${derivedMac(old.ip)} dev netplane.1 dst ${old.ip}\nfdb replace ${derivedMac(moved.ip)} dev netplane.1 dst ${moved.ip} self permanent\n`);
        result.ipBatch.changeMs.push(performance.now() - t1);
      }
      // Clean-up between rounds (untimed); -force goes on past entries a change already removed.
      await host.run('ip', ['-n', peer, '-force', '-batch', '-'], ipLines('del')).catch(() => undefined);
      await host.run('bridge', ['-n', peer, '-force', '-batch', '-'], fdbLines('del')).catch(() => undefined);
      await host.run('bridge', ['-n', peer, '-force', '-batch', '-'], `fdb del ${derivedMac(remoteAt(7, true).ip)} dev netplane.1 dst ${remoteAt(7, true).ip}\n`).catch(() => undefined);
    }
    return result;
  } finally {
    await lab.destroy();
    await rm(dir, { recursive: true, force: true });
  }
}
