// Benchmark of the userspace proxy backend against haproxy (TCP mode) on loopback, in one run:
//  1. bulk throughput: iperf3 client -> proxy -> iperf3 server (one TCP stream, as in DESIGN.md);
//  2. new-connection rate: wrk with `Connection: close` (every request a new connection through the proxy) -> proxy
//     -> nginx answering a fixed 200 from memory (one worker process, no access log).
// Each is measured direct and through both proxies at the same thread counts (haproxy `nbthread N` vs netplane
// `threads: N`), in rounds that alternate the targets so that load from elsewhere on the machine hits all alike;
// the median round is reported. CPU time per operation is read from /proc for each proxy process.
// Usage: npx node bench/proxy/userspace.ts [--json] [--threads 1,2] [--rounds 5] [--seconds 4]
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../../test/helpers/ports.ts';
import { benchArgs, which, requireTools } from '../cli.ts';

const { args, opt, asJSON, log } = benchArgs();
const threadCounts = opt('threads', `1,${availableParallelism()}`).split(',').map(Number);
const rounds = Number(opt('rounds', '5'));
const seconds = Number(opt('seconds', '4'));
const wrkConnections = 64;
const wrkThreads = 2;

const tools: Array<[string, string]> = [['iperf3', 'iperf3'], ['haproxy', 'haproxy'], ['wrk', 'wrk'], ['nginx', 'nginx-light']];
requireTools(tools);
const bin = which;

const dir = mkdtempSync(join(tmpdir(), 'netplane-bench-'));
const children: ChildProcess[] = [];


/** Resolves when `child` prints a line matching `re` on stdout. */
function waitOutput(child: ChildProcess, re: RegExp, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${what} not ready after 10 s: ${out}`)), 10_000);
    child.stdout!.on('data', (d) => {
      out += d;
      if (re.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

function start(cmd: string, argv: string[], name: string): ChildProcess {
  const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  child.stdout!.resume(); // drained, so a chatty child never blocks on a full pipe
  child.on('exit', (code, signal) => {
    if (!stopping) process.stderr.write(`${name} exited (${code ?? signal}): ${err.slice(-500)}\n`);
  });
  children.push(child);
  return child;
}

/** Waits until a TCP connect to the port succeeds. Not for iperf3: its server takes any connection as a test's control connection. */
async function waitListening(port: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port} after 10 s`);
    await sleep(50);
  }
}

/** utime + stime of a process and all its threads, in seconds. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function run(cmd: string, argv: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${argv.join(' ')} failed (${code}): ${err || out}`))));
  });
}

async function bulk(port: number): Promise<number> {
  // The iperf3 server takes one test at a time and can still be finishing the last one: retry a few times.
  for (let attempt = 1; ; attempt++) {
    const text = await run('iperf3', ['-c', '127.0.0.1', '-p', String(port), '-t', String(seconds), '-J']).catch((e: Error) => JSON.stringify({ error: e.message }));
    const out = JSON.parse(text) as { error?: string; end?: { sum_received?: { bits_per_second: number } } };
    const bps = out.end?.sum_received?.bits_per_second;
    if (bps !== undefined && !out.error) return bps / 1e9;
    if (attempt === 3) throw new Error(`iperf3 through port ${port} failed: ${out.error ?? text.slice(0, 300)}`);
    log(`  note: iperf3 through port ${port}: ${out.error ?? 'no result'}; retrying`);
    await sleep(1000);
  }
}

async function connRate(port: number): Promise<number> {
  const out = await run('wrk', ['-t', String(wrkThreads), '-c', String(wrkConnections), '-d', `${seconds}s`, '-H', 'Connection: close', `http://127.0.0.1:${port}/`]);
  const rate = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const errors = /Socket errors: (.*)/.exec(out)?.[1];
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1];
  if (non2xx) throw new Error(`wrk through port ${port}: ${non2xx} non-2xx responses`);
  if (errors && /(read|write|timeout) [1-9]/.test(errors)) log(`  note: wrk socket errors through port ${port}: ${errors}`);
  return rate;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

let stopping = false;
function stopAll(): void {
  stopping = true;
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
}
process.on('exit', () => {
  stopAll();
  rmSync(dir, { recursive: true, force: true });
});
process.on('SIGINT', () => process.exit(130));

interface Row {
  test: 'bulk throughput' | 'new connections';
  unit: 'Gbit/s' | 'conn/s';
  threads: number;
  direct: number;
  haproxy: number;
  netplane: number;
  ratio: number;
  /** Proxy CPU time per operation (µs per connection, ms per GB for bulk), from /proc. */
  haproxyCpu: number;
  netplaneCpu: number;
}

async function main(): Promise<Row[]> {
  const iperfPort = await freePort();
  const nginxPort = await freePort();
  const iperf = start(bin('iperf3'), ['-s', '-p', String(iperfPort), '-B', '127.0.0.1', '--forceflush'], 'iperf3');
  await waitOutput(iperf, /Server listening/, 'iperf3 server');
  writeFileSync(join(dir, 'nginx.conf'), nginxConfig(nginxPort));
  start(bin('nginx'), ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'nginx-error.log')], 'nginx');
  await waitListening(nginxPort);
  const haproxyVersion = spawnSync(bin('haproxy'), ['-v']).stdout.toString().split('\n')[0]!.split(' - ')[0];
  log(`${haproxyVersion}; node ${process.version}; ${availableParallelism()} cores; rounds ${rounds} x ${seconds} s; wrk -t${wrkThreads} -c${wrkConnections}`);

  const rows: Row[] = [];
  for (const threads of threadCounts) {
    const hBulk = await freePort();
    const hHttp = await freePort();
    writeFileSync(join(dir, `haproxy-${threads}.cfg`), haproxyConfig(threads, [[hBulk, iperfPort], [hHttp, nginxPort]]));
    const haproxy = start(bin('haproxy'), ['-db', '-f', join(dir, `haproxy-${threads}.cfg`)], 'haproxy');
    const nBulk = await freePort();
    const nHttp = await freePort();
    const netplane = start(process.execPath, [new URL('./userspace-proxy.ts', import.meta.url).pathname, String(threads), `${nBulk}:${iperfPort}`, `${nHttp}:${nginxPort}`], 'netplane');
    // haproxy binds every listener before it serves any; probing its HTTP port is enough (a probe of the bulk port
    // would reach iperf3).
    await waitListening(hHttp);
    await waitOutput(netplane, /"ready":true/, 'netplane');
    log(`threads ${threads}: haproxy nbthread ${threads} (pid ${haproxy.pid}), netplane threads ${threads} (pid ${netplane.pid})`);

    const measure = async (test: Row['test'], fn: (port: number) => Promise<number>, ports: { direct: number; haproxy: number; netplane: number }) => {
      const got = { direct: [] as number[], haproxy: [] as number[], netplane: [] as number[] };
      const cpu = { haproxy: [] as number[], netplane: [] as number[] };
      for (let r = 0; r < rounds; r++) {
        // Rotate the order each round, so no target always runs first or last.
        const order = (['direct', 'haproxy', 'netplane'] as const).map((_, i, a) => a[(i + r) % a.length]!);
        for (const target of order) {
          const proc = target === 'haproxy' ? haproxy : target === 'netplane' ? netplane : undefined;
          const before = proc ? cpuSeconds(proc.pid!) : 0;
          const value = await fn(ports[target]);
          got[target].push(value);
          if (proc && target !== 'direct') {
            const used = cpuSeconds(proc.pid!) - before;
            // µs per connection for wrk, ms per GB forwarded for iperf3.
            cpu[target].push(test === 'new connections' ? (used / (value * seconds)) * 1e6 : (used / ((value * seconds) / 8)) * 1e3);
          }
          log(`  ${test} round ${r + 1} ${target}: ${value.toFixed(test === 'bulk throughput' ? 2 : 0)}`);
        }
      }
      const row: Row = {
        test,
        unit: test === 'bulk throughput' ? 'Gbit/s' : 'conn/s',
        threads,
        direct: median(got.direct),
        haproxy: median(got.haproxy),
        netplane: median(got.netplane),
        ratio: 0,
        haproxyCpu: median(cpu.haproxy),
        netplaneCpu: median(cpu.netplane),
      };
      row.ratio = row.netplane / row.haproxy;
      rows.push(row);
    };
    await measure('bulk throughput', bulk, { direct: iperfPort, haproxy: hBulk, netplane: nBulk });
    await measure('new connections', connRate, { direct: nginxPort, haproxy: hHttp, netplane: nHttp });
    for (const c of [haproxy, netplane]) {
      c.removeAllListeners('exit');
      c.kill('SIGTERM');
    }
    await sleep(300);
  }
  return rows;
}

function nginxConfig(port: number): string {
  return `worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log crit;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/ngx-body;
  proxy_temp_path ${dir}/ngx-proxy;
  fastcgi_temp_path ${dir}/ngx-fastcgi;
  uwsgi_temp_path ${dir}/ngx-uwsgi;
  scgi_temp_path ${dir}/ngx-scgi;
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location / { return 200 "ok\\n"; }
  }
}
`;
}

function haproxyConfig(threads: number, pairs: Array<[number, number]>): string {
  return `global
  nbthread ${threads}
  maxconn 8000
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
${pairs.map(([listen, target], i) => `listen p${i}\n  bind 127.0.0.1:${listen}\n  server s 127.0.0.1:${target}\n`).join('')}`;
}

const rows = await main().finally(stopAll);
if (asJSON) {
  process.stdout.write(JSON.stringify({ node: process.version, cores: availableParallelism(), rounds, seconds, wrk: { threads: wrkThreads, connections: wrkConnections }, rows }, null, 2) + '\n');
} else {
  const head = ['test', 'threads (haproxy / netplane)', 'direct', 'haproxy', 'netplane', 'netplane/haproxy', 'proxy CPU haproxy / netplane'];
  const body = rows.map((r) => [
    `${r.test} (${r.unit})`,
    `${r.threads} / ${r.threads}`,
    r.direct.toFixed(r.unit === 'Gbit/s' ? 2 : 0),
    r.haproxy.toFixed(r.unit === 'Gbit/s' ? 2 : 0),
    r.netplane.toFixed(r.unit === 'Gbit/s' ? 2 : 0),
    `${r.ratio.toFixed(2)}x`,
    `${r.haproxyCpu.toFixed(0)} / ${r.netplaneCpu.toFixed(0)} ${r.unit === 'Gbit/s' ? 'ms per GB' : 'µs per conn'}`,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  process.stdout.write(`${line(head)}\n${body.map(line).join('\n')}\n`);
  process.stdout.write(`threads: haproxy nbthread N (one process); netplane threads N (main thread + N-1 worker threads, SO_REUSEPORT); nginx 1 worker; iperf3 1 stream; wrk ${wrkThreads} threads x ${wrkConnections} connections\n`);
}
process.exit(0);
