// Benchmark of `netplane overlay`: convergence (200 remote Nodes added, one Node changed) beside `ip -batch` and
// `bridge -batch` programming the same entries, and pod-to-pod TCP throughput across the overlay beside pod-to-pod
// on the underlay directly, all in one run, each in fresh network namespaces (deleted afterwards).
// See convergence.ts and throughput.ts for what exactly is timed.
// Usage (as root): npx node bench/overlay/overlay.ts [--rounds N] [--seconds S] [--skip-throughput] [--json]
import { fileURLToPath } from 'node:url';
import { benchConvergence, type ConvergenceResult } from './convergence.ts';
import { benchThroughput, type ThroughputResult } from './throughput.ts';

/** Targets from the overlay issue. */
export const targets = { addMs: 100, changeMs: 10, throughputRatio: 0.95 } as const;

/** The median of some numbers. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const ms = (x: number) => `${x.toFixed(1)} ms`;
const verdict = (ok: boolean) => (ok ? 'met' : 'MISSED');

/** The report as text. */
export function formatOverlayBench(c: ConvergenceResult, tp: ThroughputResult | undefined): string {
  const addSeen = median(c.netplane.addSeenMs);
  const addWall = median(c.netplane.addWallMs);
  const change = median(c.netplane.changeSeenMs);
  const remove = median(c.netplane.removeSeenMs);
  const batch = median(c.ipBatch.addMs);
  const batchChange = median(c.ipBatch.changeMs);
  const out = [
    `overlay convergence, ${c.remotes} remote Nodes (${c.entries} entries found in the kernel), medians of ${c.netplane.addSeenMs.length} rounds`,
    `${'step'.padEnd(44)}${'netplane'.padStart(12)}${'ip/bridge'.padStart(12)}${'ratio'.padStart(8)}  target`,
    `${'add all (change seen → in kernel)'.padEnd(44)}${ms(addSeen).padStart(12)}${ms(batch).padStart(12)}${(addSeen / batch).toFixed(2).padStart(8)}  < ${targets.addMs} ms ${verdict(addSeen < targets.addMs)}`,
    `${'add all (manifest written → in kernel)'.padEnd(44)}${ms(addWall).padStart(12)}${''.padStart(12)}${''.padStart(8)}  (includes the 50 ms watch debounce)`,
    `${'one Node moved (change seen → in kernel)'.padEnd(44)}${ms(change).padStart(12)}${ms(batchChange).padStart(12)}${(change / batchChange).toFixed(2).padStart(8)}  < ${targets.changeMs} ms ${verdict(change < targets.changeMs)}`,
    `${'remove all (change seen → in kernel)'.padEnd(44)}${ms(remove).padStart(12)}`,
    `  netplane add rounds: ${c.netplane.addSeenMs.map((x) => x.toFixed(1)).join(', ')} ms; ip/bridge -batch: ${c.ipBatch.addMs.map((x) => x.toFixed(1)).join(', ')} ms`,
  ];
  if (tp) {
    const ratio = median(tp.ratios);
    out.push(
      '',
      `pod-to-pod TCP (iperf3, ${tp.seconds} s each, ${tp.ratios.length} back-to-back pairs in alternating order)`,
      `  underlay directly ${median(tp.underlay).toFixed(2)} Gbit/s, overlay ${median(tp.overlay).toFixed(2)} Gbit/s (medians); median pair ratio ${ratio.toFixed(3)}  ≥ ${targets.throughputRatio} ${verdict(ratio >= targets.throughputRatio)}`,
      `  pair ratios: ${tp.ratios.map((x) => x.toFixed(2)).join(', ')}`,
      `  node-to-node on the underlay ${median(tp.nodes).toFixed(2)} Gbit/s; overlay pod-to-pod / node-to-node ${median(tp.nodeRatios).toFixed(3)} (DESIGN.md's comparison)`,
      `  the same pods with --direct-routing (nodes on one network): underlay ${median(tp.directUnderlay).toFixed(2)} Gbit/s, direct ${median(tp.direct).toFixed(2)} Gbit/s; median pair ratio ${median(tp.directRatios).toFixed(3)} beside VXLAN's ${ratio.toFixed(3)}`,
      `  (a plain route, not VXLAN: it does not count toward the VXLAN target above)`,
      `  --direct-routing pair ratios: ${tp.directRatios.map((x) => x.toFixed(2)).join(', ')}`,
    );
    const off = tp.tunnelCsumOff;
    if (off) {
      const pairRatio = (a: number[], b: number[]) => median(a.map((x, i) => x / b[i]!)).toFixed(3);
      out.push(
        `  an underlay that segments VXLAN only without outer checksums (ethtool -K eth0 tx-udp_tnl-csum-segmentation off):`,
        `    netplane's devices (outer UDP checksum zero) ${median(off.overlay).toFixed(2)} Gbit/s, median pair ratio ${pairRatio(off.overlay, off.underlay)}`,
        `    kernel-default devices (checksummed) ${median(off.checksummed).toFixed(2)} Gbit/s, median pair ratio ${pairRatio(off.checksummed, off.checksummedUnderlay)}`,
      );
    } else out.push('  (no ethtool: the underlay without tunnel-checksum segmentation was not measured)');
  }
  return out.join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  const opt = (name: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? Number(args[i + 1]) : undefined;
  };
  const log = (line: string) => process.stderr.write(`${line}\n`);
  log('convergence:');
  const c = await benchConvergence({ ...(opt('rounds') ? { rounds: opt('rounds')! } : {}), log });
  let tp: ThroughputResult | undefined;
  if (!args.includes('--skip-throughput')) {
    log('throughput:');
    tp = await benchThroughput({ ...(opt('rounds') ? { rounds: opt('rounds')! } : {}), ...(opt('seconds') ? { seconds: opt('seconds')! } : {}), log });
  }
  process.stdout.write(`${formatOverlayBench(c, tp)}\n`);
  if (args.includes('--json')) process.stdout.write(`${JSON.stringify({ benchmark: 'overlay', targets, convergence: c, throughput: tp })}\n`);
}
