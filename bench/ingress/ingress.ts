// Benchmark of the ingress gateway (`netplane ingress`) against nginx and http-proxy, in one run, on loopback:
//  1. one core: each proxy pinned to CPU 0 (`taskset -c 0`); wrk (`-t1 -c64 --latency`) and the backend (nginx, one
//     worker, a fixed "ok\n" from memory, no access log) pinned to CPU 1. Proxies: nginx (one worker, upstream
//     keepalive pool), http-proxy (npm `http-proxy` in a node:http server with a keep-alive agent), undici-proxy (a
//     plain Node proxy: node:http forwarding through one undici Pool.request, no routing, limits or metrics), netplane (the
//     gateway reading a Service, an EndpointSlice, an IngressClass and an Ingress for host bench.local from a
//     manifest directory); and direct (wrk to the backend, no proxy) for reference. Every request carries
//     `Host: bench.local`. Rounds rotate the order of the targets so that load from elsewhere hits all alike; the
//     median round is reported, with proxy CPU time per request (utime + stime from /proc, the process and its
//     children) and the ratios against the targets.
//     Two more references run only when named in --only: tcp-relay (bytes relayed, no HTTP: the ceiling of any Node
//     proxy) and llhttp-proxy (Node's own HTTP parser on libuv handles, with only the forwarding headers' work).
//  2. both cores: netplane as two processes sharing the port (`--reuse-port`), nginx with `worker_processes 2`, both
//     unpinned, wrk `-t2 -c64` unpinned, to an unpinned one-worker backend.
// Usage: npx node bench/ingress/ingress.ts [--json] [--rounds 3] [--seconds 5] [--connections 64]
//        [--only direct,nginx,http-proxy,undici-proxy,netplane,tcp-relay,llhttp-proxy] [--no-both-cores] [--wait-idle 30]
//        [--max-others 10] [--attempts 4] [--preload LIB.so]
// --preload starts netplane with LD_PRELOAD=LIB.so, such as a malloc (ingress-nginx's chart preloads mimalloc).
// --wait-idle: before each run, wait up to this many seconds for the machine to be quiet (0: never); each run
// prints `others`, the CPU that processes outside the benchmark used during it, as % of the machine; a run with
// more than --max-others % is run again, up to --attempts times, and left out of the medians if clean runs exist.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { manifests, nginxConfig } from './configs.ts';
import { cpuSeconds, machineBusySeconds, selfSeconds, tree } from './procfs.ts';
import { fmt, median, medianResult, parseWrk, type Result } from './wrk.ts';
import { freePort } from '../../test/helpers/ports.ts';
import { benchArgs, which, requireTools } from '../cli.ts';

const { args, opt, asJSON, log } = benchArgs();
const rounds = Number(opt('rounds', '3'));
const seconds = Number(opt('seconds', '5'));
const connections = Number(opt('connections', '64'));
const allTargets = ['direct', 'nginx', 'http-proxy', 'undici-proxy', 'netplane', 'tcp-relay', 'llhttp-proxy'] as const;
type Target = (typeof allTargets)[number];
/** The references that run only when --only names them. */
const onRequest: readonly Target[] = ['tcp-relay', 'llhttp-proxy'];
const only = opt('only', allTargets.filter((t) => !onRequest.includes(t)).join(',')).split(',').filter(Boolean);
for (const t of only) {
  if (!(allTargets as readonly string[]).includes(t)) {
    process.stderr.write(`--only: "${t}" is not a target; allowed: ${allTargets.join(', ')}\n`);
    process.exit(2);
  }
}
const targets = allTargets.filter((t) => only.includes(t));
const bothCores = !args.includes('--no-both-cores');
// On a shared machine, other work skews a run: each run first waits (at most this long) for the machine to go quiet.
const waitIdle = Number(opt('wait-idle', '30'));
// A run during which other processes used more than this share of the machine is disturbed: it is run again (at most
// `attempts` times in all), and the medians leave out disturbed runs when there are clean ones.
const maxOthers = Number(opt('max-others', '10'));
const attempts = Number(opt('attempts', '4'));
const preload = opt('preload', '');
const host = 'bench.local';
const body = 'ok\n';

const tools: Array<[string, string]> = [['nginx', 'nginx-light'], ['wrk', 'wrk'], ['taskset', 'util-linux']];
requireTools(tools);
const nginxBin = which('nginx');
const root = fileURLToPath(new URL('../../', import.meta.url));
const netplaneBin = join(root, 'bin/netplane.ts');
const httpProxyScript = fileURLToPath(new URL('./http-proxy-server.ts', import.meta.url));
const undiciScript = fileURLToPath(new URL('./undici-proxy-server.ts', import.meta.url));
const referenceScripts = {
  'tcp-relay': fileURLToPath(new URL('./tcp-relay-server.ts', import.meta.url)),
  'llhttp-proxy': fileURLToPath(new URL('./llhttp-proxy-server.ts', import.meta.url)),
};
if (Number(process.versions.node.split('.')[0]) < 24) {
  process.stderr.write(`node ${process.version} is too old: run with Node 24 (npx node bench/ingress/ingress.ts)\n`);
  process.exit(2);
}
if (targets.includes('netplane')) {
  const help = spawnSync(process.execPath, [netplaneBin, 'ingress', '--help'], { encoding: 'utf8' });
  const text = `${help.stdout}${help.stderr}`;
  const lacks = ['--http', ...(bothCores ? ['--reuse-port'] : [])].filter((f) => !text.includes(f));
  if (lacks.length > 0) {
    process.stderr.write(`netplane ingress has no ${lacks.join(' or ')} flag yet (netplane ingress --help). Run without it: --only direct,nginx,http-proxy,undici-proxy\n`);
    process.exit(2);
  }
}

const dir = mkdtempSync(join(tmpdir(), 'netplane-ingress-bench-'));
// nginx workers run as nobody when started as root.
chmodSync(dir, 0o755);

const children = new Set<ChildProcess>();
let stopping = false;
function start(argv: string[], name: string): ChildProcess {
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => (err = (err + d).slice(-4000)));
  child.stdout!.resume(); // drained, so a chatty child never blocks on a full pipe
  child.on('exit', (code, signal) => {
    children.delete(child);
    if (!stopping) process.stderr.write(`${name} exited (${code ?? signal}): ${argv.join(' ')}\n${err.slice(-1500)}\n`);
  });
  (child as ChildProcess & { stderrTail: () => string }).stderrTail = () => err;
  children.add(child);
  return child;
}
const stderrTail = (c: ChildProcess) => (c as ChildProcess & { stderrTail?: () => string }).stderrTail?.() ?? '';

function killTree(child: ChildProcess, signal: NodeJS.Signals): void {
  for (const pid of tree(child.pid!).reverse()) {
    try {
      process.kill(pid, signal);
    } catch {
      // Already gone.
    }
  }
}
async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  stopping = true;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await Promise.race([exited, sleep(3000).then(() => killTree(child, 'SIGKILL'))]);
  stopping = false;
}
process.on('exit', () => {
  stopping = true;
  for (const c of children) killTree(c, 'SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});
process.on('SIGINT', () => process.exit(130));
process.on('SIGTERM', () => process.exit(143));

/** CPU seconds used by this benchmark: itself, its reaped children (wrk), and every process it runs (backends, proxies). */
function ourSeconds(): number {
  let seconds = selfSeconds();
  for (const c of children) if (c.pid) seconds += cpuSeconds(c.pid);
  return seconds;
}


/** One GET with `Host: bench.local`: the status and body, or undefined when the connection fails. */
function get(port: number): Promise<{ status: number; text: string } | undefined> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/', headers: { host }, agent: false, timeout: 2000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      res.on('error', () => resolve(undefined));
    });
    req.on('error', () => resolve(undefined));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

/** Polls until a request through `port` returns the backend's body; fails with what came back instead. */
async function waitServing(port: number, what: string, procs: ChildProcess[], limitMs = 20_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  let last = 'no connection';
  for (;;) {
    const res = await get(port);
    if (res?.status === 200 && res.text === body) return;
    if (res) last = `status ${res.status}, body ${JSON.stringify(res.text.slice(0, 200))}`;
    const dead = procs.find((p) => p.exitCode !== null || p.signalCode !== null);
    if (dead) throw new Error(`${what} exited (${dead.exitCode ?? dead.signalCode}) before serving: ${stderrTail(dead).slice(-1500)}`);
    if (Date.now() > deadline) {
      throw new Error(`${what} does not serve the backend's body on 127.0.0.1:${port} after ${limitMs / 1000} s (last: ${last}); stderr: ${procs.map(stderrTail).join('\n').slice(-1500)}`);
    }
    await sleep(100);
  }
}

/** Runs wrk at `port` (pinned to CPU 1 when `pin`) and reads the CPU time of `pids` over the run. */
async function wrk(port: number, pids: number[], pin: boolean, threads: number, secs = seconds): Promise<Result> {
  const argv = [...(pin ? ['taskset', '-c', '1'] : []), 'wrk', `-t${threads}`, `-c${connections}`, `-d${secs}s`, '--latency', '-H', `Host: ${host}`, `http://127.0.0.1:${port}/`];
  const before = pids.map(cpuSeconds);
  const busy0 = machineBusySeconds();
  const ours0 = ourSeconds();
  const t0 = performance.now();
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child); // ended with the rest if the benchmark stops mid-run
    let text = '';
    child.stdout.on('data', (d) => (text += d));
    child.stderr.on('data', (d) => (text += d));
    child.on('exit', (code) => {
      children.delete(child);
      if (code === 0) resolve(text);
      else reject(new Error(`${argv.join(' ')} failed (${code}): ${text}`));
    });
  });
  const used = pids.map((pid, i) => cpuSeconds(pid) - before[i]!);
  const cpu = used.reduce((a, b) => a + b, 0);
  const other = machineBusySeconds() - busy0 - (ourSeconds() - ours0);
  const otherCpuPct = Math.max(0, (other / ((performance.now() - t0) / 1000) / availableParallelism()) * 100);
  const figures = parseWrk(out);
  return {
    ...figures,
    cpuUsPerRequest: pids.length > 0 && figures.requests > 0 ? (cpu / figures.requests) * 1e6 : NaN,
    otherCpuPct,
    cpuSplitPct: pids.length > 1 ? used.map((u) => (cpu > 0 ? (u / cpu) * 100 : 0)) : [],
  };
}

interface Running {
  port: number;
  procs: ChildProcess[];
  command: string;
}

/** Starts a proxy (pinned to CPU 0 when `pin`) in front of the backend on `backendPort`, and waits until it serves. */
async function startProxy(target: Exclude<Target, 'direct'>, backendPort: number, pin: boolean, processes: number, tag: string): Promise<Running> {
  const port = await freePort();
  const prefix = pin ? ['taskset', '-c', '0'] : [];
  const procs: ChildProcess[] = [];
  const commands: string[] = [];
  const launch = (argv: string[], name: string) => {
    commands.push(argv.join(' '));
    procs.push(start(argv, name));
  };
  if (target === 'nginx') {
    launch([...prefix, nginxBin, '-p', join(dir, `nginx-${tag}`), '-c', nginxConfig(dir, `nginx-${tag}`, processes, port, body, backendPort)], 'nginx proxy');
  } else if (target === 'http-proxy') {
    launch([...prefix, process.execPath, httpProxyScript, String(port), String(backendPort)], 'http-proxy');
  } else if (target === 'undici-proxy') {
    launch([...prefix, process.execPath, undiciScript, String(port), String(backendPort)], 'undici-proxy');
  } else if (target === 'tcp-relay' || target === 'llhttp-proxy') {
    launch([...prefix, process.execPath, referenceScripts[target], String(port), String(backendPort)], target);
  } else {
    const dirManifests = manifests(dir, `manifests-${tag}`, backendPort, host);
    for (let i = 0; i < processes; i++) {
      const admin = await freePort();
      const argv = [...(preload !== '' ? ['env', `LD_PRELOAD=${preload}`] : []), ...prefix, process.execPath, netplaneBin, 'ingress', '--manifests', dirManifests, '--http', `127.0.0.1:${port}`, '--https', 'off', '--admin', `127.0.0.1:${admin}`, '--log-level', 'warn', '--access-log', 'off'];
      launch(processes > 1 ? [...argv, '--reuse-port'] : argv, `netplane ingress ${i + 1}`);
    }
  }
  await waitServing(port, `${target} (${commands.join(' ; ')})`, procs);
  return { port, procs, command: commands.join(' ; ') };
}

async function startBackend(pin: boolean, tag: string): Promise<Running> {
  const port = await freePort();
  const argv = [...(pin ? ['taskset', '-c', '1'] : []), nginxBin, '-p', join(dir, tag), '-c', nginxConfig(dir, tag, 1, port, body)];
  const proc = start(argv, 'backend nginx');
  await waitServing(port, 'backend nginx', [proc]);
  return { port, procs: [proc], command: argv.join(' ') };
}

/** Waits until the machine (less this benchmark's own idle processes) is under 10% busy for a second, or `waitIdle` s pass. */
async function untilIdle(): Promise<void> {
  const deadline = Date.now() + waitIdle * 1000;
  while (Date.now() < deadline) {
    const busy0 = machineBusySeconds();
    await sleep(1000);
    if ((machineBusySeconds() - busy0) / availableParallelism() < 0.1) return;
  }
}

/** The medians of one target, over its clean runs (all runs when none is clean). */
interface Measured {
  median: Result;
  rounds: Result[];
  /** Runs during which other processes stayed under --max-others. */
  clean: number;
}

/** Measures `running` targets in rotating order for the configured rounds, disturbed runs again; returns the medians. */
async function measure(section: string, running: Map<string, Running>, pin: boolean, threads: number): Promise<Map<string, Measured>> {
  const names = [...running.keys()];
  // A short warm-up each: V8 compiles the hot path, pools fill.
  for (const name of names) await wrk(running.get(name)!.port, [], pin, threads, 1);
  const got = new Map<string, Result[]>(names.map((n) => [n, []]));
  for (let r = 0; r < rounds; r++) {
    const order = names.map((_, i, a) => a[(i + r) % a.length]!);
    for (const name of order) {
      const target = running.get(name)!;
      const pids = name.startsWith('direct') ? [] : target.procs.map((p) => p.pid!);
      for (let attempt = 1; ; attempt++) {
        await untilIdle();
        const res = await wrk(target.port, pids, pin, threads);
        const disturbed = res.otherCpuPct > maxOthers;
        log(`  ${section} round ${r + 1} ${name.padEnd(12)} ${fmt(res)}${disturbed ? (attempt < attempts ? '  (disturbed: again)' : '  (disturbed)') : ''}`);
        if (!disturbed || attempt >= attempts) {
          got.get(name)!.push(res);
          break;
        }
      }
    }
  }
  return new Map(
    names.map((n) => {
      const all = got.get(n)!;
      const clean = all.filter((x) => x.otherCpuPct <= maxOthers);
      return [n, { median: medianResult(clean.length > 0 ? clean : all), rounds: all, clean: clean.length }];
    }),
  );
}

const nginxVersion = spawnSync(nginxBin, ['-v'], { encoding: 'utf8' }).stderr.trim();
const wrkVersion = spawnSync('wrk', ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0]!.split(' [')[0];
log(`ingress benchmark: ${nginxVersion}; ${wrkVersion}; node ${process.version}; ${availableParallelism()} cores; ${rounds} rounds x ${seconds} s; targets ${targets.join(', ')}`);
log(`one core: proxies pinned to CPU 0; wrk -t1 -c${connections} and the backend (nginx, 1 worker) pinned to CPU 1`);

const proxies = targets.filter((t): t is Exclude<Target, 'direct'> => t !== 'direct');
const backend = await startBackend(true, 'backend-pinned');
const oneRunning = new Map<string, Running>();
if (targets.includes('direct')) oneRunning.set('direct', backend);
for (const t of proxies) {
  const r = await startProxy(t, backend.port, true, 1, 'one');
  log(`  ${t}: ${r.command} (pid ${r.procs.map((p) => p.pid).join(', ')})`);
  oneRunning.set(t, r);
}
const one = await measure('one core', oneRunning, true, 1);
for (const t of proxies) for (const p of oneRunning.get(t)!.procs) await stop(p);

let two: Map<string, Measured> | undefined;
const twoProxies = proxies.filter((t) => t === 'nginx' || t === 'netplane');
if (bothCores && twoProxies.length > 0) {
  log(`both cores: nothing pinned; wrk -t2 -c${connections}; netplane as 2 processes with --reuse-port, nginx worker_processes 2; backend nginx 1 worker`);
  const free = await startBackend(false, 'backend-free');
  const twoRunning = new Map<string, Running>();
  if (targets.includes('direct')) twoRunning.set('direct', free);
  for (const t of twoProxies) {
    const r = await startProxy(t, free.port, false, 2, 'two');
    log(`  ${t} x2: ${r.command} (pid ${r.procs.map((p) => p.pid).join(', ')})`);
    twoRunning.set(t, r);
  }
  two = await measure('both cores', twoRunning, false, 2);
  for (const r of twoRunning.values()) for (const p of r.procs) await stop(p);
}
for (const p of backend.procs) await stop(p);

const med = (m: typeof one | undefined, t: string) => m?.get(t)?.median;
const np = med(one, 'netplane');
const ng = med(one, 'nginx');
const hp = med(one, 'http-proxy');
const up = med(one, 'undici-proxy');
const ratios = {
  rpsVsNginx: np && ng ? np.rps / ng.rps : undefined,
  rpsVsHttpProxy: np && hp ? np.rps / hp.rps : undefined,
  p99VsNginx: np && ng ? np.p99Ms / ng.p99Ms : undefined,
  cpuVsNginx: np && ng ? np.cpuUsPerRequest / ng.cpuUsPerRequest : undefined,
  rpsVsUndiciProxy: np && up ? np.rps / up.rps : undefined,
  cpuVsUndiciProxy: np && up ? np.cpuUsPerRequest / up.cpuUsPerRequest : undefined,
};
const goals = {
  rpsVsNginx: ratios.rpsVsNginx === undefined ? undefined : ratios.rpsVsNginx >= 0.75,
  rpsVsHttpProxy: ratios.rpsVsHttpProxy === undefined ? undefined : ratios.rpsVsHttpProxy > 2,
  p99VsNginx: ratios.p99VsNginx === undefined ? undefined : ratios.p99VsNginx <= 2,
  no2xxErrors: np === undefined ? undefined : np.non2xx === 0,
};
const asObject = (m: typeof one | undefined) => (m ? Object.fromEntries(m) : undefined);
/** Targets whose medians come from disturbed runs only: figures that compare load, not proxies. */
const disturbed = (m: typeof one | undefined) => [...(m ?? new Map<string, Measured>())].filter(([, v]) => v.clean === 0).map(([k]) => k);

if (asJSON) {
  const summary = { node: process.version, nginx: nginxVersion, cores: availableParallelism(), rounds, seconds, connections, maxOthers, oneCore: asObject(one), bothCores: asObject(two), disturbed: { oneCore: disturbed(one), bothCores: disturbed(two) }, ratios, targets: goals };
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
} else {
  const bad = disturbed(one);
  // A verdict from disturbed runs is printed, but said to be one.
  const mark = (ok: boolean | undefined, ...of: string[]) =>
    `${ok === undefined ? 'n/a' : ok ? 'met' : 'MISSED'}${of.some((t) => bad.includes(t)) ? `, unreliable: ${of.filter((t) => bad.includes(t)).join(' and ')} had no undisturbed run` : ''}`;
  const cleanNote = (r: Measured) => (r.clean < r.rounds.length ? `  [${r.clean} of ${r.rounds.length} runs clean]` : '');
  const x = (v: number | undefined) => (v === undefined ? 'n/a' : `${v.toFixed(2)}x`);
  const lines = [`one core (median of ${rounds} rounds; proxy on CPU 0, wrk -t1 -c${connections} and backend on CPU 1):`];
  for (const [t, r] of one) lines.push(`  ${t.padEnd(12)} ${fmt(r.median)}${cleanNote(r)}`);
  if (np) {
    lines.push(`  netplane/nginx requests/s ${x(ratios.rpsVsNginx)} (target >= 0.75: ${mark(goals.rpsVsNginx, 'netplane', 'nginx')})`);
    lines.push(`  netplane/http-proxy requests/s ${x(ratios.rpsVsHttpProxy)} (target > 2: ${mark(goals.rpsVsHttpProxy, 'netplane', 'http-proxy')})`);
    lines.push(`  netplane/nginx p99 ${x(ratios.p99VsNginx)} (target <= 2: ${mark(goals.p99VsNginx, 'netplane', 'nginx')})`);
    lines.push(`  netplane/nginx CPU per request ${x(ratios.cpuVsNginx)}`);
    if (up) lines.push(`  netplane/undici-proxy requests/s ${x(ratios.rpsVsUndiciProxy)}, CPU per request ${x(ratios.cpuVsUndiciProxy)} (the gateway beside a plain Node proxy on undici)`);
    for (const ref of onRequest) {
      const m = med(one, ref);
      if (m) lines.push(`  netplane/${ref} requests/s ${x(np.rps / m.rps)}, CPU per request ${x(np.cpuUsPerRequest / m.cpuUsPerRequest)}${ng ? `; ${ref}/nginx requests/s ${x(m.rps / ng.rps)}` : ''}`);
    }
    if (np.non2xx > 0) lines.push(`  WARNING: netplane answered ${np.non2xx} non-2xx responses in a round: its figures are not of proxied requests`);
  }
  if (two) {
    lines.push(`both cores (median of ${rounds} rounds; nothing pinned, wrk -t2 -c${connections}):`);
    for (const [t, r] of two) lines.push(`  ${(t === 'netplane' ? 'netplane x2' : t === 'nginx' ? 'nginx w2' : t).padEnd(11)} ${fmt(r.median)}${cleanNote(r)}`);
    const n2 = med(two, 'netplane');
    const g2 = med(two, 'nginx');
    if (n2 && g2) lines.push(`  netplane x2 / nginx w2: requests/s ${x(n2.rps / g2.rps)}, p99 ${x(n2.p99Ms / g2.p99Ms)}`);
  }
  lines.push(
    `cpu: proxy CPU time (user + system, all its processes) per request; others: CPU used by processes outside this benchmark during the run, % of all cores (load that skews the figures); medians leave out runs with others > ${maxOthers}% when there are clean ones`,
  );
  process.stdout.write(`${lines.join('\n')}\n`);
}
process.exit(0);
