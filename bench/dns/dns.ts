// Benchmark of the DNS server against dnsmasq on loopback, in one run: both serve the same N Service names
// (`svcN.default.svc.cluster.local` A; netplane from a Map handler in bench/dns/handler.ts, dnsmasq from an
// addn-hosts file) and dnsperf sends the same query file to each for the same time.
//  1. one core: the server pinned to CPU 1 (`taskset -c 1`), dnsperf to CPU 0; rounds alternate the order so that
//     load from elsewhere on the machine hits both alike; the median round is reported.
//  2. both cores: two netplane processes sharing the port with SO_REUSEPORT (the kernel spreads dnsperf's client
//     sockets over them), nothing pinned; dnsmasq (one process, one thread) likewise unpinned.
// Reported: queries/s, lost queries, average and p99 latency (p99 from dnsperf -v, one line per query), server CPU
// time per query, resident memory, and the ratios netplane/dnsmasq against the targets.
// netplane runs with --node-flags (default --max-semi-space-size=1: V8's young generation at 1 MiB instead of 16 MiB
// makes each scavenge ~10x shorter, which is what the p99 sees); each round also measures it without them, and the
// floor (bench/dns/floor.ts: Node on the same UDP path answering without parsing anything) for what Node itself costs.
//  3. latency at a fixed rate both sustain (dnsperf -Q), where queueing does not hide the service time.
// Usage: npx node bench/dns/dns.ts [--json] [--seconds 10] [--rounds 3] [--names 10000] [--outstanding 100]
//        [--node-flags "--max-semi-space-size=1"]
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { chmodSync, createReadStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import dnsPacket from 'dns-packet';
import { serviceNames } from './handler.ts';

const args = process.argv.slice(2);
const opt = (name: string, def: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : def;
};
const asJSON = args.includes('--json');
const seconds = Number(opt('seconds', '10'));
const rounds = Number(opt('rounds', '3'));
const nameCount = Number(opt('names', '10000'));
const outstanding = Number(opt('outstanding', '100'));
const nodeFlags = opt('node-flags', '--max-semi-space-size=1').split(' ').filter(Boolean);
const fixedRate = Number(opt('rate', '40000'));

const tools: Array<[string, string]> = [['dnsperf', 'dnsperf'], ['dnsmasq', 'dnsmasq-base'], ['taskset', 'util-linux']];
const which = (name: string) => spawnSync('sh', ['-c', `command -v ${name} || { test -x /usr/sbin/${name} && echo /usr/sbin/${name}; }`]).stdout.toString().trim();
const missing = tools.filter(([b]) => which(b) === '');
if (missing.length > 0) {
  process.stderr.write(`missing: ${missing.map(([b]) => b).join(', ')}. Install with: apt-get update && apt-get install -y ${missing.map(([, p]) => p).join(' ')}\n`);
  process.exit(2);
}
const dnsmasqBin = which('dnsmasq');
const log = (line: string) => {
  if (!asJSON) process.stderr.write(`${line}\n`);
};

const dir = mkdtempSync(join(tmpdir(), 'netplane-dns-bench-'));
chmodSync(dir, 0o755);
const services = serviceNames(nameCount);
const hostsFile = join(dir, 'hosts');
writeFileSync(hostsFile, services.map((s) => `${s.ip} ${s.name}\n`).join(''));
const queryFile = join(dir, 'queries.txt');
// Every name, in a fixed shuffled order (a linear congruential walk), so that no server sees a sorted stream.
const order = services.map((_, i) => (i * 7919 + 13) % services.length);
writeFileSync(queryFile, order.map((i) => `${services[i]!.name} A\n`).join(''));
const serveScript = fileURLToPath(new URL('./serve.ts', import.meta.url));
const floorScript = fileURLToPath(new URL('./floor.ts', import.meta.url));

const children = new Set<ChildProcess>();
let stopping = false;
function start(argv: string[], name: string): ChildProcess {
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  child.stdout!.resume();
  child.on('exit', (code, signal) => {
    children.delete(child);
    if (!stopping) process.stderr.write(`${name} exited (${code ?? signal}): ${err.slice(-500)}\n`);
  });
  children.add(child);
  return child;
}
async function stop(child: ChildProcess): Promise<void> {
  stopping = true;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await Promise.race([exited, sleep(3000).then(() => child.kill('SIGKILL'))]);
  stopping = false;
}
function cleanup(): void {
  stopping = true;
  for (const c of children) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}
process.on('exit', cleanup);
process.on('SIGINT', () => process.exit(130));

/** A port free on 127.0.0.1 for both UDP and TCP a moment ago (netplane serves both on one port). */
async function freePort(): Promise<number> {
  for (;;) {
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
    const { port } = s.address();
    const tcp = createServer();
    const ok = await new Promise<boolean>((r) => {
      tcp.once('error', () => r(false));
      tcp.listen(port, '127.0.0.1', () => r(true));
    });
    await new Promise<void>((r) => s.close(() => r()));
    if (ok) {
      await new Promise<void>((r) => tcp.close(() => r()));
      return port;
    }
  }
}

/** Resolves once the server on `port` answers an A query for the first name (10 s at most). */
async function waitAnswering(port: number, what: string): Promise<void> {
  const s = createSocket('udp4');
  const query = dnsPacket.encode({ id: 7, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name: services[0]!.name }] });
  const answered = new Promise<void>((resolve) => s.on('message', () => resolve()));
  try {
    for (let i = 0; i < 100; i++) {
      s.send(query, port, '127.0.0.1');
      if (await Promise.race([answered.then(() => true), sleep(100).then(() => false)])) return;
    }
    throw new Error(`${what} is not answering on port ${port} after 10 s`);
  } finally {
    s.close();
  }
}

const cpuTicks = (pid: number) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(f[11]) + Number(f[12]);
};
const statusKiB = (pid: number, field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);

/** One dnsperf run's figures. */
interface Result {
  qps: number;
  completed: number;
  lost: number;
  avgMs: number;
  p99Ms: number;
  /** Server CPU (user + system) per answered query, microseconds. */
  cpuUsPerQuery: number;
  /** VmRSS; for Node about half is the mapped node binary, shared with every other Node process. */
  rssMiB: number;
  /** RssAnon: memory of this process alone (heap, buffers). */
  anonMiB: number;
  rcodes: string;
}

/** Runs dnsperf against `port` (pinned to CPU 0 when `pin`, at most `rate` q/s when given); `pids` are the server processes measured. */
async function dnsperf(port: number, pids: number[], pin: boolean, clients: number, rate?: number): Promise<Result> {
  const verbose = join(dir, 'dnsperf.out');
  const argv = ['dnsperf', '-s', '127.0.0.1', '-p', String(port), '-d', queryFile, '-l', String(seconds), '-c', String(clients), '-q', String(outstanding), '-v'];
  if (rate) argv.push('-Q', String(rate));
  const t0 = pids.map(cpuTicks);
  const run = spawnSync('sh', ['-c', `${pin ? 'taskset -c 0 ' : ''}${argv.join(' ')} > ${verbose}`], { stdio: 'ignore' });
  if (run.status !== 0) throw new Error(`dnsperf failed (${run.status})`);
  const ticks = pids.reduce((sum, pid, i) => sum + cpuTicks(pid) - t0[i]!, 0);
  const latencies: number[] = [];
  let summary = '';
  for await (const line of createInterface({ input: createReadStream(verbose) })) {
    if (line.startsWith('> ')) {
      const v = Number(line.slice(line.lastIndexOf(' ') + 1));
      if (line.startsWith('> T/O')) continue;
      if (Number.isFinite(v)) latencies.push(v);
    } else summary += `${line}\n`;
  }
  const num = (re: RegExp) => Number(re.exec(summary)?.[1] ?? NaN);
  const sorted = Float64Array.from(latencies).sort();
  const completed = num(/Queries completed:\s+(\d+)/);
  return {
    qps: num(/Queries per second:\s+([\d.]+)/),
    completed,
    lost: num(/Queries lost:\s+(\d+)/),
    avgMs: num(/Average Latency \(s\):\s+([\d.]+)/) * 1000,
    p99Ms: (sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))] ?? NaN) * 1000,
    cpuUsPerQuery: (ticks * 1e6) / 100 / completed,
    rssMiB: pids.reduce((sum, pid) => sum + statusKiB(pid, 'VmRSS'), 0) / 1024,
    anonMiB: pids.reduce((sum, pid) => sum + statusKiB(pid, 'RssAnon'), 0) / 1024,
    rcodes: /Response codes:\s+(.*)/.exec(summary)?.[1] ?? '',
  };
}

type Target = 'netplane' | 'netplane-plain' | 'floor' | 'dnsmasq';
/**
 * Starts the target (pinned to CPU 1 for the one-core runs; `processes` > 1 only for netplane, on one shared port).
 * netplane-plain is netplane without --node-flags.
 */
async function serve(target: Target, pin: boolean, processes = 1): Promise<{ port: number; children: ChildProcess[] }> {
  const port = await freePort();
  const prefix = pin ? ['taskset', '-c', '1'] : [];
  const kids: ChildProcess[] = [];
  if (target === 'floor') {
    kids.push(start([...prefix, process.execPath, ...nodeFlags, floorScript, String(port)], 'floor'));
  } else if (target !== 'dnsmasq') {
    for (let i = 0; i < processes; i++) {
      const argv = [...prefix, process.execPath, ...(target === 'netplane' ? nodeFlags : []), serveScript, String(port), String(nameCount), '--metrics', ...(processes > 1 ? ['--reuse-port'] : [])];
      kids.push(start(argv, `netplane dns ${i + 1}`));
    }
  } else {
    // --user=root: dnsmasq drops to nobody otherwise, and then cannot read what a root-only temp dir holds.
    const argv = [...prefix, dnsmasqBin, '-k', '--no-resolv', '--no-hosts', `--addn-hosts=${hostsFile}`, `--port=${port}`, '--listen-address=127.0.0.1'];
    argv.push('--bind-interfaces', `--cache-size=${nameCount}`, '--local-ttl=30', '--pid-file=', '--user=root', '--log-facility=-', '--conf-file=/dev/null');
    kids.push(start(argv, 'dnsmasq'));
  }
  await waitAnswering(port, target);
  // A short warm-up: V8 compiles the hot path, dnsmasq fills nothing (hosts are loaded at start).
  spawnSync('sh', ['-c', `dnsperf -s 127.0.0.1 -p ${port} -d ${queryFile} -l 1 -c 4 > /dev/null 2>&1`]);
  return { port, children: kids };
}

async function measure(target: Target, pin: boolean, processes = 1, clients = 1, rate?: number): Promise<Result> {
  const { port, children: kids } = await serve(target, pin, processes);
  try {
    return await dnsperf(port, kids.map((k) => k.pid!), pin, clients, rate);
  } finally {
    for (const k of kids) await stop(k);
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
function medianResult(rs: Result[]): Result {
  const pick = (k: keyof Result) => median(rs.map((r) => r[k] as number));
  return {
    qps: pick('qps'),
    completed: pick('completed'),
    lost: Math.max(...rs.map((r) => r.lost)),
    avgMs: pick('avgMs'),
    p99Ms: pick('p99Ms'),
    cpuUsPerQuery: pick('cpuUsPerQuery'),
    rssMiB: pick('rssMiB'),
    anonMiB: pick('anonMiB'),
    rcodes: rs[0]!.rcodes,
  };
}

const fmt = (r: Result) =>
  `${r.qps.toFixed(0).padStart(7)} q/s  lost ${String(r.lost).padStart(5)}  avg ${r.avgMs.toFixed(3)} ms  p99 ${r.p99Ms.toFixed(3)} ms  cpu ${r.cpuUsPerQuery.toFixed(2)} us/q  rss ${r.rssMiB.toFixed(1)} MiB (anon ${r.anonMiB.toFixed(1)})  [${r.rcodes.trim()}]`;

const oneCore: Record<Target, Result[]> = { netplane: [], 'netplane-plain': [], floor: [], dnsmasq: [] };
log(`DNS benchmark: ${nameCount} names, dnsperf -l ${seconds} -q ${outstanding}, ${rounds} rounds, server on CPU 1, dnsperf on CPU 0`);
log(`netplane: node ${nodeFlags.join(' ')} bench/dns/serve.ts (netplane-plain: without those flags)`);
for (let r = 0; r < rounds; r++) {
  const targets: Target[] = r % 2 === 0 ? ['netplane', 'dnsmasq', 'netplane-plain', 'floor'] : ['floor', 'netplane-plain', 'dnsmasq', 'netplane'];
  for (const t of targets) {
    const res = await measure(t, true);
    oneCore[t].push(res);
    log(`  round ${r + 1} ${t.padEnd(14)} ${fmt(res)}`);
  }
}
log(`fixed rate: dnsperf -Q ${fixedRate}, pinned as above`);
const atRate = { netplane: await measure('netplane', true, 1, 1, fixedRate), dnsmasq: await measure('dnsmasq', true, 1, 1, fixedRate) };
log(`  netplane    ${fmt(atRate.netplane)}`);
log(`  dnsmasq     ${fmt(atRate.dnsmasq)}`);
log(`both cores (unpinned, dnsperf -c 8): netplane as 2 processes with SO_REUSEPORT, dnsmasq as its one process`);
const twoCores = { netplane: await measure('netplane', false, 2, 8), dnsmasq: await measure('dnsmasq', false, 1, 8) };
log(`  netplane x2 ${fmt(twoCores.netplane)}`);
log(`  dnsmasq     ${fmt(twoCores.dnsmasq)}`);

const np = medianResult(oneCore.netplane);
const plain = medianResult(oneCore['netplane-plain']);
const floor = medianResult(oneCore.floor);
const dm = medianResult(oneCore.dnsmasq);
const ratio = { qps: np.qps / dm.qps, p99: np.p99Ms / dm.p99Ms, cpu: np.cpuUsPerQuery / dm.cpuUsPerQuery };
const targets = { qps: ratio.qps >= 1.0, noLoss: np.lost === 0, p99: ratio.p99 <= 1.5 };
const plainRatio = { qps: plain.qps / dm.qps, p99: plain.p99Ms / dm.p99Ms };
const summary = { names: nameCount, seconds, rounds, outstanding, nodeFlags, oneCore: { netplane: np, netplanePlain: plain, floor, dnsmasq: dm, ratio, plainRatio, rounds: oneCore }, atRate: { rate: fixedRate, ...atRate }, twoCores, targets };
if (asJSON) {
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
} else {
  const mark = (ok: boolean) => (ok ? 'met' : 'MISSED');
  process.stdout.write(
    [
      `one core (median of ${rounds} rounds):`,
      `  netplane       ${fmt(np)}`,
      `  netplane-plain ${fmt(plain)}`,
      `  floor          ${fmt(floor)}`,
      `  dnsmasq        ${fmt(dm)}`,
      `  netplane/dnsmasq: queries/s ${ratio.qps.toFixed(2)}x (target >= 1.0: ${mark(targets.qps)}), p99 ${ratio.p99.toFixed(2)}x (target <= 1.5: ${mark(targets.p99)}), lost ${np.lost} (target 0: ${mark(targets.noLoss)}), CPU per query ${ratio.cpu.toFixed(2)}x`,
      `  without ${nodeFlags.join(' ')}: queries/s ${plainRatio.qps.toFixed(2)}x, p99 ${plainRatio.p99.toFixed(2)}x`,
      `  floor (Node answering without parsing, same UDP path): queries/s ${(floor.qps / dm.qps).toFixed(2)}x, CPU per query ${(floor.cpuUsPerQuery / dm.cpuUsPerQuery).toFixed(2)}x`,
      `at ${fixedRate} q/s: netplane avg ${atRate.netplane.avgMs.toFixed(3)} ms p99 ${atRate.netplane.p99Ms.toFixed(3)} ms lost ${atRate.netplane.lost}, dnsmasq avg ${atRate.dnsmasq.avgMs.toFixed(3)} ms p99 ${atRate.dnsmasq.p99Ms.toFixed(3)} ms lost ${atRate.dnsmasq.lost} (p99 ${(atRate.netplane.p99Ms / atRate.dnsmasq.p99Ms).toFixed(2)}x)`,
      `both cores: netplane (2 processes, SO_REUSEPORT) ${twoCores.netplane.qps.toFixed(0)} q/s, dnsmasq ${twoCores.dnsmasq.qps.toFixed(0)} q/s (${(twoCores.netplane.qps / twoCores.dnsmasq.qps).toFixed(2)}x)`,
      `resident memory with ${nameCount} names, after the run: netplane ${np.rssMiB.toFixed(1)} MiB (${np.anonMiB.toFixed(1)} MiB its own, the rest the shared node binary), dnsmasq ${dm.rssMiB.toFixed(1)} MiB`,
      '',
    ].join('\n'),
  );
}
process.exit(0);
