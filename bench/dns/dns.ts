// Benchmark of `netplane dns` — the real component, started as users start it — against dnsmasq on loopback, in one
// run. A manifests directory (JSON files, one v1 List each) holds N Services (svcN.default, ClusterIP 10.96.x.y, port
// 80 "http") and one EndpointSlice each with 5 ready endpoints (10.244.x.y); netplane loads it with --manifests,
// dnsmasq serves the same N names from an addn-hosts file, and dnsperf sends the same query file
// (`svcN.default.svc.cluster.local A`, every name once in a shuffled order) to each for the same time. Both forward
// other names to a third server, an upstream dnsmasq holding M names `extN.example.test`, and both cache what it
// answers (netplane's default 10,000 entries, dnsmasq --cache-size=10000).
//  1. one core: the server pinned to CPU 1 (`taskset -c 1`), dnsperf to CPU 0; rounds alternate the order so that
//     load from elsewhere on the machine hits both alike; the median round is reported. In each round the same
//     netplane and dnsmasq processes then answer the M external names: one pass warms the cache, the timed run is
//     all cache hits. The last round also measures latency at a fixed rate both sustain (dnsperf -Q), where
//     queueing does not hide the service time.
//  2. both cores: two netplane processes started with --reuse-port on one port (SO_REUSEPORT: the kernel spreads
//     dnsperf's client sockets over them), nothing pinned; dnsmasq (one process, one thread) likewise unpinned.
//  3. as deployed: one netplane session reading the same objects from an API server (the project's test API server,
//     list and watch through @kubernetes/client-node), pinned as in 1, for its memory beside the manifests' figure.
// Reported: queries/s, lost queries, average and p99 latency (p99 from dnsperf -v, one line per query), server CPU
// time per query, resident memory after the run beside CoreDNS's sizing rule ((pods + services)/1000 + 54 MB), and
// the ratios netplane/dnsmasq against the targets.
// netplane runs with --node-flags (default --max-semi-space-size=1 --expose-gc, as deployed: V8's young generation at
// 1 MiB instead of 16 MiB makes each scavenge ~10x shorter, which is what the p99 sees; the image's entry point
// exposes gc so that each process collects the garbage of its first load, runtime/startup-gc.ts); with --plain each
// round also measures it without them (~50 s more). Each round measures the floor (bench/dns/floor.ts: Node on the same UDP path answering without
// parsing anything): what Node itself costs.
// Usage: npx node bench/dns/dns.ts [--json] [--plain] [--seconds 10] [--rounds 3] [--services 10000] [--endpoints 5]
//        [--external 1000] [--outstanding 100] [--rate 40000] [--node-flags "--max-semi-space-size=1 --expose-gc"]
//        [--bin bin/netplane.ts] [--no-compile-cache] [--preload LIB.so]
// --preload starts netplane and the floor (Node's processes, not dnsmasq) with LD_PRELOAD=LIB.so, such as a malloc
// (ingress-nginx's chart preloads mimalloc into its controller).
// netplane starts as the image starts it (Dockerfile): from a compile cache that the `bin` tree's
// warm-compile-cache.ts fills first, so it does not load Node's TypeScript stripper; --no-compile-cache makes it
// strip its files at start instead, as `node bin/netplane.ts` does outside the image.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { chmodSync, createReadStream, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import dnsPacket from 'dns-packet';
import { benchArgs, which, requireTools } from '../cli.ts';

const { args, opt, asJSON, log } = benchArgs();
const withCompileCache = !args.includes('--no-compile-cache');
const withPlain = args.includes('--plain');
const seconds = Number(opt('seconds', '10'));
const rounds = Number(opt('rounds', '3'));
const serviceCount = Number(opt('services', '10000'));
const endpointsPerService = Number(opt('endpoints', '5'));
const externalCount = Number(opt('external', '1000'));
const outstanding = Number(opt('outstanding', '100'));
const nodeFlags = opt('node-flags', '--max-semi-space-size=1 --expose-gc').split(' ').filter(Boolean);
const fixedRate = Number(opt('rate', '40000'));
const preload = opt('preload', '');
const bin = resolve(opt('bin', fileURLToPath(new URL('../../bin/netplane.ts', import.meta.url))));
const endpointCount = serviceCount * endpointsPerService;
/** CoreDNS's documented memory sizing: (pods + services) / 1000 + 54 MB. */
const coreDnsAnchorMB = (endpointCount + serviceCount) / 1000 + 54;

const tools: Array<[string, string]> = [['dnsperf', 'dnsperf'], ['dnsmasq', 'dnsmasq-base'], ['taskset', 'util-linux']];
requireTools(tools);
const dnsmasqBin = which('dnsmasq');

const dir = mkdtempSync(join(tmpdir(), 'netplane-dns-bench-'));
chmodSync(dir, 0o755);
const ip4 = (prefix: string, i: number) => `${prefix}.${(i >> 8) & 255}.${i & 255}`;
const services = Array.from({ length: serviceCount }, (_, i) => ({ name: `svc${i}`, fqdn: `svc${i}.default.svc.cluster.local`, ip: ip4('10.96', i) }));
// 198.18.0.0/15 is reserved for benchmarks (RFC 2544).
const externals = Array.from({ length: externalCount }, (_, i) => ({ fqdn: `ext${i}.example.test`, ip: ip4('198.18', i) }));

const manifests = join(dir, 'manifests');
mkdirSync(manifests);
// JSON files of 1000 Services with their slices each, one `v1 List` per file: what `kubectl get -o json` writes, with
// the API's defaults (type ClusterIP, protocol TCP) left out. cluster/manifests reads .json files with JSON.parse.
for (let first = 0; first < serviceCount; first += 1000) {
  const items = services.slice(first, first + 1000).flatMap((s, j) => [
    { apiVersion: 'v1', kind: 'Service', metadata: { name: s.name, namespace: 'default' }, spec: { clusterIP: s.ip, ports: [{ name: 'http', port: 80, targetPort: 8080 }] } },
    {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: `${s.name}-1`, namespace: 'default', labels: { 'kubernetes.io/service-name': s.name } },
      addressType: 'IPv4',
      ports: [{ name: 'http', port: 8080 }],
      endpoints: Array.from({ length: endpointsPerService }, (_, k) => ({ addresses: [ip4('10.244', (first + j) * endpointsPerService + k)], conditions: { ready: true } })),
    },
  ]);
  writeFileSync(join(manifests, `services-${first}.json`), JSON.stringify({ apiVersion: 'v1', kind: 'List', items }));
}
const hostsFile = join(dir, 'hosts');
writeFileSync(hostsFile, services.map((s) => `${s.ip} ${s.fqdn}\n`).join(''));
const externalHosts = join(dir, 'external-hosts');
writeFileSync(externalHosts, externals.map((e) => `${e.ip} ${e.fqdn}\n`).join(''));
// Every name, in a fixed shuffled order (a linear congruential walk), so that no server sees a sorted stream.
const shuffled = <T>(xs: T[]) => xs.map((_, i) => xs[(i * 7919 + 13) % xs.length]!);
const queryFile = join(dir, 'queries.txt');
writeFileSync(queryFile, shuffled(services).map((s) => `${s.fqdn} A\n`).join(''));
const externalQueries = join(dir, 'external-queries.txt');
writeFileSync(externalQueries, shuffled(externals).map((e) => `${e.fqdn} A\n`).join(''));
const floorScript = fileURLToPath(new URL('./floor.ts', import.meta.url));
const warmScript = join(dirname(bin), 'warm-compile-cache.ts');
/** How netplane started: from a warmed compile cache (as in the image), or stripping its files itself. */
let startedFrom = 'stripping its TypeScript at start (--no-compile-cache)';
if (withCompileCache) {
  const cache = join(dir, 'compile-cache');
  // With netplane's node flags: Node keys the cache by those that change compiled code (--expose-gc does).
  const warmed = spawnSync(process.execPath, [...nodeFlags, warmScript], { env: { ...process.env, NODE_COMPILE_CACHE: cache }, stdio: ['ignore', 'ignore', 'pipe'] });
  if (warmed.status === 0) {
    // Inherited by every process started below (the floor's script adds its own entry; dnsmasq ignores it).
    process.env.NODE_COMPILE_CACHE = cache;
    startedFrom = 'from a compile cache warmed by bin/warm-compile-cache.ts, as in the image';
  } else {
    startedFrom = `stripping its TypeScript at start (${warmScript} failed or is missing: ${String(warmed.stderr).trim().split('\n').pop()})`;
  }
}

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

const readyTimeoutMs = 120_000;
/**
 * Resolves once the server on `port` answers the first Service name with an address (a component still loading
 * answers SERVFAIL) and every admin endpoint in `admins` says /readyz 200; fails after two minutes.
 */
async function waitReady(port: number, admins: number[], what: string): Promise<void> {
  const s = createSocket('udp4');
  const query = dnsPacket.encode({ id: 7, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name: services[0]!.fqdn }] });
  let answered = false;
  s.on('message', (msg) => {
    const r = dnsPacket.decode(msg);
    // The low 4 bits of the flags are the rcode: 0 is NOERROR.
    if (((r.flags ?? 0) & 0xf) === 0 && (r.answers?.length ?? 0) > 0) answered = true;
  });
  const ready = async (admin: number) => (await fetch(`http://127.0.0.1:${admin}/readyz`).catch(() => undefined))?.status === 200;
  const deadline = Date.now() + readyTimeoutMs;
  try {
    while (Date.now() < deadline) {
      s.send(query, port, '127.0.0.1');
      await sleep(100);
      if (answered && (await Promise.all(admins.map(ready))).every(Boolean)) return;
    }
    throw new Error(`${what} is not answering ${services[0]!.fqdn} on port ${port} (or not ready) after ${readyTimeoutMs / 1000} s`);
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
  /** VmRSS after the run; for Node about 50 MiB is the mapped node binary, shared with every other Node process. */
  rssMiB: number;
  /** RssAnon after the run: memory of this process alone (heap, buffers). */
  anonMiB: number;
  rcodes: string;
}

/** Runs dnsperf with `file` against `port` (pinned to CPU 0 when `pin`, at most `rate` q/s when given); `pids` are the server processes measured. */
async function dnsperf(file: string, port: number, pids: number[], pin: boolean, clients: number, rate?: number): Promise<Result> {
  const verbose = join(dir, 'dnsperf.out');
  const argv = ['dnsperf', '-s', '127.0.0.1', '-p', String(port), '-d', file, '-l', String(seconds), '-c', String(clients), '-q', String(outstanding), '-v'];
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

/** Runs dnsperf for one second with 4 clients, unmeasured: V8 compiles the hot path. */
const warmUp = (file: string, port: number) => spawnSync('sh', ['-c', `dnsperf -s 127.0.0.1 -p ${port} -d ${file} -l 1 -c 4 > /dev/null 2>&1`]);
/** Sends every query of `file` once and waits for the answers: the cache then holds every name. */
const fillCache = (file: string, port: number) => spawnSync('sh', ['-c', `dnsperf -s 127.0.0.1 -p ${port} -d ${file} -n 1 -c 1 -q 20 > /dev/null 2>&1`]);

// The upstream of both forwarders, for the whole run; its answers carry TTL 3600 so no cached entry expires.
const upstreamPort = await freePort();
start([dnsmasqBin, '-k', '--no-resolv', '--no-hosts', `--addn-hosts=${externalHosts}`, `--port=${upstreamPort}`, '--listen-address=127.0.0.1', '--bind-interfaces', '--local-ttl=3600', '--pid-file=', '--user=root', '--log-facility=-', '--conf-file=/dev/null'], 'upstream dnsmasq');

type Target = 'netplane' | 'netplane-plain' | 'floor' | 'dnsmasq';
/**
 * Starts the target (pinned to CPU 1 for the one-core runs; `processes` > 1 only for netplane, on one shared port)
 * and waits until it serves. netplane-plain is netplane without --node-flags.
 */
async function serve(target: Target, pin: boolean, processes = 1, kubeconfig?: string): Promise<{ port: number; children: ChildProcess[]; admins: number[]; readySeconds: number }> {
  const port = await freePort();
  const started = performance.now();
  const prefix = [...(preload !== '' && target !== 'dnsmasq' ? ['env', `LD_PRELOAD=${preload}`] : []), ...(pin ? ['taskset', '-c', '1'] : [])];
  const kids: ChildProcess[] = [];
  const admins: number[] = [];
  if (target === 'floor') {
    kids.push(start([...prefix, process.execPath, ...nodeFlags, floorScript, String(port)], 'floor'));
  } else if (target !== 'dnsmasq') {
    for (let i = 0; i < processes; i++) {
      const admin = await freePort();
      admins.push(admin);
      const argv = [...prefix, process.execPath, ...(target === 'netplane' ? nodeFlags : []), bin, 'dns', ...(kubeconfig ? ['--kubeconfig', kubeconfig] : ['--manifests', manifests]), '--listen', `127.0.0.1:${port}`];
      // The upstream's answers live 3600 s and dnsmasq caches them that long; netplane's default cap (30 s, as the
      // default Corefile's `cache 30`) would make the cache-hit test measure refetches instead.
      argv.push('--upstream', `127.0.0.1:${upstreamPort}`, '--cache-ttl', '3600', '--admin', `127.0.0.1:${admin}`, '--log-level', 'warn', '--node-name', 'bench', ...(processes > 1 ? ['--reuse-port'] : []));
      kids.push(start(argv, `netplane dns ${i + 1}`));
    }
  } else {
    // --user=root: dnsmasq drops to nobody otherwise, and then cannot read what a root-only temp dir holds.
    const argv = [...prefix, dnsmasqBin, '-k', '--no-resolv', '--no-hosts', `--addn-hosts=${hostsFile}`, `--server=127.0.0.1#${upstreamPort}`, `--port=${port}`];
    argv.push('--listen-address=127.0.0.1', '--bind-interfaces', '--cache-size=10000', '--local-ttl=30', '--pid-file=', '--user=root', '--log-facility=-', '--conf-file=/dev/null');
    kids.push(start(argv, 'dnsmasq'));
  }
  await waitReady(port, admins, target);
  const readySeconds = (performance.now() - started) / 1000;
  warmUp(queryFile, port);
  return { port, children: kids, admins, readySeconds };
}

/** What one server process gave in a round. */
interface Session {
  zone: Result;
  /** Cache-hit forwarded queries (netplane and dnsmasq only). */
  forwarded?: Result;
  /** Zone queries at --rate (last round, netplane and dnsmasq only). */
  atRate?: Result;
  /** From start until it answered and said ready: for netplane, loading the manifests. */
  readySeconds: number;
  /** netplane's V8 heap after the runs (prom-client's nodejs_heap_size_*_bytes from /metrics): live data plus garbage not yet collected. */
  heap?: { usedMiB: number; totalMiB: number };
}

/** The V8 heap figures a netplane process exports on its admin port. */
async function heapOf(admin: number): Promise<{ usedMiB: number; totalMiB: number }> {
  const text = await (await fetch(`http://127.0.0.1:${admin}/metrics`)).text();
  const mib = (name: string) => Number(new RegExp(`^${name} ([\\d.e+]+)`, 'm').exec(text)?.[1] ?? NaN) / 2 ** 20;
  return { usedMiB: mib('nodejs_heap_size_used_bytes'), totalMiB: mib('nodejs_heap_size_total_bytes') };
}

/** Starts the target, measures the zone, then (with `more`) cache-hit forwarding and the fixed rate, and stops it. */
async function session(target: Target, pin: boolean, more: { forwarded: boolean; atRate: boolean }, processes = 1, clients = 1, kubeconfig?: string): Promise<Session> {
  const { port, children: kids, admins, readySeconds } = await serve(target, pin, processes, kubeconfig);
  const pids = kids.map((k) => k.pid!);
  try {
    const out: Session = { zone: await dnsperf(queryFile, port, pids, pin, clients), readySeconds };
    if (more.forwarded) {
      fillCache(externalQueries, port);
      warmUp(externalQueries, port);
      out.forwarded = await dnsperf(externalQueries, port, pids, pin, clients);
    }
    if (more.atRate) out.atRate = await dnsperf(queryFile, port, pids, pin, clients, fixedRate);
    if (admins.length === 1) out.heap = await heapOf(admins[0]!);
    return out;
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

const sessions: Record<Target, Session[]> = { netplane: [], 'netplane-plain': [], floor: [], dnsmasq: [] };
log(`DNS benchmark: ${serviceCount} Services with ${endpointCount} endpoints, ${externalCount} external names; dnsperf -l ${seconds} -q ${outstanding}; ${rounds} rounds, server on CPU 1, dnsperf on CPU 0`);
log(`netplane: node ${nodeFlags.join(' ')} ${bin} dns --manifests DIR --upstream <dnsmasq>${withPlain ? ' (netplane-plain: without those node flags)' : ''}, ${startedFrom}${preload !== '' ? `, LD_PRELOAD=${preload} (netplane and the floor)` : ''}`);
for (let r = 0; r < rounds; r++) {
  const first: Target[] = ['netplane', 'dnsmasq', ...(withPlain ? ['netplane-plain' as const] : []), 'floor'];
  const order = r % 2 === 0 ? first : first.toReversed();
  for (const t of order) {
    const both = t === 'netplane' || t === 'dnsmasq';
    const s = await session(t, true, { forwarded: both, atRate: both && r === rounds - 1 });
    sessions[t].push(s);
    log(`  round ${r + 1} ${t.padEnd(14)} ${fmt(s.zone)}${t.startsWith('netplane') ? `  (ready after ${s.readySeconds.toFixed(1)} s)` : ''}`);
    if (s.forwarded) log(`          ${'(forwarded)'.padEnd(14)} ${fmt(s.forwarded)}`);
    if (s.atRate) log(`          ${`(-Q ${fixedRate})`.padEnd(14)} ${fmt(s.atRate)}`);
  }
}
log(`both cores (unpinned, dnsperf -c 8): netplane as 2 processes with --reuse-port, dnsmasq as its one process`);
const twoCores = {
  netplane: (await session('netplane', false, { forwarded: false, atRate: false }, 2, 8)).zone,
  dnsmasq: (await session('dnsmasq', false, { forwarded: false, atRate: false }, 1, 8)).zone,
};
log(`  netplane x2 ${fmt(twoCores.netplane)}`);
log(`  dnsmasq     ${fmt(twoCores.dnsmasq)}`);

// As deployed, netplane reads the cluster from the API server: the same objects served by the project's test API
// server (list and watch, through @kubernetes/client-node), one session pinned as in the rounds.
const api = await (await import('../../test/apiserver/server.ts')).TestApiServer.start();
const fromApi = await (async () => {
  try {
    for (const file of readdirSync(manifests)) for (const item of (JSON.parse(readFileSync(join(manifests, file), 'utf8')) as { items: object[] }).items) api.apply(item);
    return await session('netplane', true, { forwarded: true, atRate: false }, 1, 1, await api.kubeconfigPath());
  } finally {
    await api.close();
  }
})();
log(`from an API server (--kubeconfig, as deployed; ready after ${fromApi.readySeconds.toFixed(1)} s):`);
log(`  netplane      ${fmt(fromApi.zone)}`);
log(`  (forwarded)   ${fmt(fromApi.forwarded!)}`);

const zoneOf = (t: Target) => medianResult(sessions[t].map((s) => s.zone));
const np = zoneOf('netplane');
const plain = withPlain ? zoneOf('netplane-plain') : undefined;
const floor = zoneOf('floor');
const dm = zoneOf('dnsmasq');
const fwd = { netplane: medianResult(sessions.netplane.map((s) => s.forwarded!)), dnsmasq: medianResult(sessions.dnsmasq.map((s) => s.forwarded!)) };
const atRate = { netplane: sessions.netplane.at(-1)!.atRate!, dnsmasq: sessions.dnsmasq.at(-1)!.atRate! };
const ratio = { qps: np.qps / dm.qps, p99: np.p99Ms / dm.p99Ms, cpu: np.cpuUsPerQuery / dm.cpuUsPerQuery };
const targets = { qps: ratio.qps >= 1.0, noLoss: np.lost === 0, p99: ratio.p99 <= 1.5 };
const plainRatio = plain && { qps: plain.qps / dm.qps, p99: plain.p99Ms / dm.p99Ms };
const fwdRatio = { qps: fwd.netplane.qps / fwd.dnsmasq.qps, p99: fwd.netplane.p99Ms / fwd.dnsmasq.p99Ms, cpu: fwd.netplane.cpuUsPerQuery / fwd.dnsmasq.cpuUsPerQuery };
// Memory after everything a session did (zone and forwarded runs): the figures read after its last dnsperf run.
const netplaneHeaps = sessions.netplane.map((s) => s.heap!);
const memory = {
  netplane: { rssMiB: fwd.netplane.rssMiB, anonMiB: fwd.netplane.anonMiB, heapUsedMiB: median(netplaneHeaps.map((h) => h.usedMiB)), heapTotalMiB: median(netplaneHeaps.map((h) => h.totalMiB)) },
  dnsmasq: { rssMiB: fwd.dnsmasq.rssMiB, anonMiB: fwd.dnsmasq.anonMiB },
  fromApiServer: { rssMiB: fromApi.forwarded!.rssMiB, anonMiB: fromApi.forwarded!.anonMiB, heapUsedMiB: fromApi.heap!.usedMiB, heapTotalMiB: fromApi.heap!.totalMiB },
  coreDnsAnchorMB,
};
const summary = {
  services: serviceCount,
  endpoints: endpointCount,
  externalNames: externalCount,
  seconds,
  rounds,
  outstanding,
  nodeFlags,
  compileCache: process.env.NODE_COMPILE_CACHE !== undefined,
  oneCore: { netplane: np, netplanePlain: plain ?? null, floor, dnsmasq: dm, ratio, plainRatio: plainRatio ?? null },
  forwarded: { ...fwd, ratio: fwdRatio },
  atRate: { rate: fixedRate, ...atRate },
  twoCores: { ...twoCores, ratio: twoCores.netplane.qps / twoCores.dnsmasq.qps },
  memory,
  readySeconds: median(sessions.netplane.map((s) => s.readySeconds)),
  targets,
  sessions,
};
if (asJSON) {
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
} else {
  const mark = (ok: boolean) => (ok ? 'met' : 'MISSED');
  process.stdout.write(
    [
      `one core, cluster-zone A queries (median of ${rounds} rounds; netplane answered and was ready ${summary.readySeconds.toFixed(1)} s after start):`,
      `  netplane       ${fmt(np)}`,
      ...(plain ? [`  netplane-plain ${fmt(plain)}`] : []),
      `  floor          ${fmt(floor)}`,
      `  dnsmasq        ${fmt(dm)}`,
      `  netplane/dnsmasq: queries/s ${ratio.qps.toFixed(2)}x (target >= 1.0: ${mark(targets.qps)}), p99 ${ratio.p99.toFixed(2)}x (target <= 1.5: ${mark(targets.p99)}), lost ${np.lost} (target 0: ${mark(targets.noLoss)}), CPU per query ${ratio.cpu.toFixed(2)}x`,
      ...(plainRatio ? [`  without ${nodeFlags.join(' ')}: queries/s ${plainRatio.qps.toFixed(2)}x, p99 ${plainRatio.p99.toFixed(2)}x`] : []),
      `  floor (Node answering without parsing, same UDP path): queries/s ${(floor.qps / dm.qps).toFixed(2)}x, CPU per query ${(floor.cpuUsPerQuery / dm.cpuUsPerQuery).toFixed(2)}x`,
      `one core, cache-hit forwarded A queries (${externalCount} names from the upstream, cache filled by one pass; median of ${rounds} rounds):`,
      `  netplane       ${fmt(fwd.netplane)}`,
      `  dnsmasq        ${fmt(fwd.dnsmasq)}`,
      `  netplane/dnsmasq: queries/s ${fwdRatio.qps.toFixed(2)}x, p99 ${fwdRatio.p99.toFixed(2)}x, lost ${fwd.netplane.lost}, CPU per query ${fwdRatio.cpu.toFixed(2)}x`,
      `at ${fixedRate} q/s: netplane avg ${atRate.netplane.avgMs.toFixed(3)} ms p99 ${atRate.netplane.p99Ms.toFixed(3)} ms lost ${atRate.netplane.lost}, dnsmasq avg ${atRate.dnsmasq.avgMs.toFixed(3)} ms p99 ${atRate.dnsmasq.p99Ms.toFixed(3)} ms lost ${atRate.dnsmasq.lost} (p99 ${(atRate.netplane.p99Ms / atRate.dnsmasq.p99Ms).toFixed(2)}x)`,
      `both cores: netplane (2 processes, --reuse-port, unpinned) ${twoCores.netplane.qps.toFixed(0)} q/s lost ${twoCores.netplane.lost}, dnsmasq (1 process, unpinned) ${twoCores.dnsmasq.qps.toFixed(0)} q/s lost ${twoCores.dnsmasq.lost} (${(twoCores.netplane.qps / twoCores.dnsmasq.qps).toFixed(2)}x)`,
      `resident memory with ${serviceCount} Services and ${endpointCount} endpoints, after the run: netplane VmRSS ${memory.netplane.rssMiB.toFixed(1)} MiB (RssAnon ${memory.netplane.anonMiB.toFixed(1)} MiB its own, the rest mostly the shared node binary; V8 heap ${memory.netplane.heapUsedMiB.toFixed(1)} MiB in use, garbage not yet collected included, of ${memory.netplane.heapTotalMiB.toFixed(1)} MiB); CoreDNS anchor (${endpointCount} + ${serviceCount})/1000 + 54 = ${coreDnsAnchorMB.toFixed(0)} MB: VmRSS ${(memory.netplane.rssMiB / coreDnsAnchorMB).toFixed(2)}x; dnsmasq VmRSS ${memory.dnsmasq.rssMiB.toFixed(1)} MiB (RssAnon ${memory.dnsmasq.anonMiB.toFixed(1)})`,
      `  read from an API server, as deployed: netplane VmRSS ${memory.fromApiServer.rssMiB.toFixed(1)} MiB (RssAnon ${memory.fromApiServer.anonMiB.toFixed(1)}; V8 heap ${memory.fromApiServer.heapUsedMiB.toFixed(1)} of ${memory.fromApiServer.heapTotalMiB.toFixed(1)} MiB; @kubernetes/client-node loaded): ${(memory.fromApiServer.rssMiB / coreDnsAnchorMB).toFixed(2)}x the anchor`,
      '',
    ].join('\n'),
  );
}
process.exit(0);
