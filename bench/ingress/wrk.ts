// Figures of wrk runs for bench/ingress/ingress.ts: what one run measured, reading wrk's text output, medians, and
// the one-line form printed per run.

/** One wrk run's figures. */
export interface Result {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  /** Proxy CPU (user + system) per request, microseconds; NaN for direct. */
  cpuUsPerRequest: number;
  non2xx: number;
  socketErrors: string;
  /** CPU used on the machine by anything but this benchmark during the run, % of all cores: other load that skews it. */
  otherCpuPct: number;
  /** With several proxy processes (--reuse-port): each one's share of the proxy CPU, %. */
  cpuSplitPct: number[];
}

/** What wrk's output (`--latency`) says; throws when it has no Requests/sec line. */
export function parseWrk(out: string): Pick<Result, 'rps' | 'p50Ms' | 'p99Ms' | 'requests' | 'non2xx' | 'socketErrors'> {
  const toMs = (v: string, unit: string) => Number(v) * (unit === 'us' ? 1e-3 : unit === 's' ? 1e3 : 1);
  const pct = (p: string) => {
    const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s)\\s*$`, 'm').exec(out);
    return m ? toMs(m[1]!, m[2]!) : NaN;
  };
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN);
  if (!Number.isFinite(rps)) throw new Error(`cannot read wrk's output: ${out}`);
  return {
    rps,
    p50Ms: pct('50'),
    p99Ms: pct('99'),
    requests: Number(/(\d+) requests in/.exec(out)?.[1] ?? 0),
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0),
    socketErrors: /Socket errors: (.*)/.exec(out)?.[1] ?? '',
  };
}

/** The median (the upper one of an even count). */
export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Each figure's median over the runs; errors are the worst run's. */
export function medianResult(rs: Result[]): Result {
  const pick = (k: 'rps' | 'p50Ms' | 'p99Ms' | 'requests' | 'cpuUsPerRequest' | 'otherCpuPct') => median(rs.map((r) => r[k]));
  return {
    rps: pick('rps'),
    p50Ms: pick('p50Ms'),
    p99Ms: pick('p99Ms'),
    requests: pick('requests'),
    cpuUsPerRequest: pick('cpuUsPerRequest'),
    non2xx: Math.max(...rs.map((r) => r.non2xx)),
    socketErrors: rs.map((r) => r.socketErrors).filter(Boolean).join('; '),
    otherCpuPct: pick('otherCpuPct'),
    cpuSplitPct: rs[0]!.cpuSplitPct.map((_, i) => median(rs.map((r) => r.cpuSplitPct[i]!))),
  };
}

/** One run on one line. */
export const fmt = (r: Result) =>
  `${r.rps.toFixed(0).padStart(7)} req/s  p50 ${r.p50Ms.toFixed(2)} ms  p99 ${r.p99Ms.toFixed(2)} ms  cpu ${Number.isNaN(r.cpuUsPerRequest) ? '   -  ' : r.cpuUsPerRequest.toFixed(1).padStart(6)} us/req  others ${r.otherCpuPct.toFixed(0).padStart(2)}% CPU` +
  `${r.cpuSplitPct.length > 1 ? `  split ${r.cpuSplitPct.map((p) => p.toFixed(0)).join('/')}%` : ''}` +
  `${r.non2xx > 0 ? `  NON-2XX ${r.non2xx}` : ''}${r.socketErrors && /(connect|read|write|timeout) [1-9]/.test(r.socketErrors) ? `  socket errors: ${r.socketErrors}` : ''}`;
