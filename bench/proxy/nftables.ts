// Benchmark of the nftables backend against a kube-proxy-style rule layout, measured side by side in the same run,
// each in a fresh network namespace (deleted afterwards):
//  - netplane: a ProxyPlan of S Services x E endpoints, rendered and applied (initial programming: one `nft -f` for
//    the table's objects, its set elements by netlink), then single endpoint changes (each a sync of its own: one
//    more Service loses an endpoint; the median of 5 is reported, the whole sync and its kernel step: the `nft -f`
//    process, spawn included, or the netlink batch), then a restarted backend's full resync (read back + diff).
//    The netlink socket is held by a child process inside the benchmark's namespace (lab/nft-elements.ts), so each
//    netlink step here also pays a copy of its batch to that process, which the proxy, in its own namespace, does
//    not. Then the same with nft alone (NETPLANE_NFT_NETLINK=0), for comparison.
//  - kube-proxy style, generated here: per Service a chain and per endpoint a chain, an anonymous
//    `numgen random mod N vmap { 0 : goto endpoint-..., ... }` per Service and a services verdict map, as kube-proxy's
//    nftables mode writes them; the change rewrites that Service's chains (flush + add, delete the removed
//    endpoint's chain), as kube-proxy's partial sync does.
// Usage: npx node bench/proxy/nftables.ts [--quick] [--json] [--sizes 1000,10000] [--endpoints 10]
//   --quick skips the kube-proxy-style run at 10,000 Services (about 100 s on a 2-core machine).
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { NetnsLab } from '../../lab/netns.ts';
import { NamespacedElementChannel } from '../../lab/nft-elements.ts';
import { NftablesBackend } from '../../proxy/nftables/backend.ts';
import type { ElementChannel } from '../../proxy/nftables/netlink/socket.ts';
import type { PortPlan, ProxyPlan } from '../../proxy/plan/types.ts';
import type { CommandOutput, CommandRunner, RunOptions } from '../../runtime/exec.ts';
import { silentLogger } from '../../runtime/logger.ts';

/** Targets from DESIGN.md for 10,000 Services x 10 endpoints. */
export const targets = { initialMs: 2000, changeMs: 50 } as const;

/** One size measured: times in milliseconds. */
export interface NftablesBenchRow {
  services: number;
  endpoints: number;
  netplane: NetplaneRow;
  /** The same with every transaction sent to nft (no netlink socket). */
  nftOnly: NetplaneRow;
  /** Absent when skipped (--quick at 10,000). */
  kubeProxyStyle?: { initialMs: number; changeMs: number; chains: number; rules: number };
}

/** One variant of netplane measured at one size. */
export interface NetplaneRow {
  /** Full sync from an empty kernel: render, diff, `nft -f`, the elements' netlink batches. */
  initialMs: number;
  /** Of which the kernel steps (the `nft -f` process and the netlink batches). */
  initialNftMs: number;
  /** One endpoint removed from one Service (median of 5): the whole sync, and its kernel step alone. */
  changeMs: number;
  changeNftMs: number;
  changeLines: number;
  /** A new backend instance's full sync of the same state: read back, diff, nothing to send. */
  resyncMs: number;
  resyncLines: number;
  rules: number;
  elements: number;
}

/** Options: sizes (Services), endpoints per Service, whether to skip the slow kube-proxy-style 10k run. */
export interface NftablesBenchOptions {
  sizes?: number[];
  endpoints?: number;
  quick?: boolean;
  /** Progress lines (stderr by default in the CLI). */
  log?: (line: string) => void;
}

/** Runs nft (and everything else) inside one namespace, timing every `nft -f` (and netlink step, timedWriter). */
class TimedRunner implements CommandRunner {
  readonly applies: number[] = [];
  readonly lab: NetnsLab;
  readonly ns: string;
  constructor(lab: NetnsLab, ns: string) {
    this.lab = lab;
    this.ns = ns;
  }

  /** Kernel time since `mark` (an index into applies): every step recorded after it. */
  since(mark: number): number {
    return this.applies.slice(mark).reduce((a, b) => a + b, 0);
  }
  async run(command: string, args: readonly string[], input?: string, options?: RunOptions): Promise<CommandOutput> {
    const t0 = performance.now();
    try {
      return await this.lab.exec(this.ns, command, args, input, options);
    } finally {
      if (command === 'nft' && args[0] === '-f') this.applies.push(performance.now() - t0);
    }
  }
}

const endpointIP = (s: number, e: number) => `10.${128 + ((s >> 8) % 64)}.${s & 255}.${e + 1}`;
const clusterIP = (s: number) => `10.96.${s >> 8}.${s & 255}`;

/** S ClusterIP Services (TCP 80) with E endpoints each; the Services in `shorter` lose their first endpoint. */
export function benchPlan(services: number, endpoints: number, shorter: ReadonlySet<number> = new Set()): ProxyPlan {
  const ports = Array.from({ length: services }, (_, s) => benchPort(s, endpoints, shorter.has(s)));
  return { ports, clusterCIDRs: { 4: ['10.128.0.0/10'], 6: [] }, masqueradeAll: false, nodePortAddresses: { 4: 'all', 6: 'all' }, healthChecks: [] };
}

/** Service `s` of benchPlan; `shorter`: without its first endpoint. */
function benchPort(s: number, endpoints: number, shorter: boolean): PortPlan {
  // Endpoints spread over a 100-node cluster, as the service map marks them: about 1 in 100 on this node.
  const all = Array.from({ length: endpoints }, (_, e) => ({ ip: endpointIP(s, e), port: 8080, local: (s * endpoints + e) % 100 === 0 }));
  const eps = shorter ? all.slice(1) : all;
  const name = `svc${String(s).padStart(6, '0')}`;
  return {
    key: `bench/${name}:http/TCP/v4`, portKey: `bench/${name}:http/TCP`, namespace: 'bench', name, portName: 'http', family: 4, protocol: 'TCP', port: 80,
    clusterIPs: [clusterIP(s)], externalIPs: [], loadBalancerIPs: [], sourceRanges: [],
    clusterEndpoints: eps, clusterNoEndpoints: 'reject', externalEndpoints: eps, externalNoEndpoints: 'reject', shortcutEndpoints: eps, servingEndpoints: eps,
    externalLocal: false, affinitySeconds: 0, localEndpoints: 0,
  };
}

/** A fresh namespace for `body`, deleted afterwards whatever happens. */
async function inNamespace<T>(body: (runner: TimedRunner) => Promise<T>): Promise<T> {
  const lab = NetnsLab.create();
  try {
    return await body(new TimedRunner(lab, await lab.ns('bench')));
  } finally {
    await lab.destroy();
  }
}

/** A writer whose applies are timed into the runner's list. */
function timedWriter(writer: ElementChannel, runner: TimedRunner): ElementChannel {
  return {
    maxBatchBytes: writer.maxBatchBytes,
    apply: async (batches, describe) => {
      const t0 = performance.now();
      try {
        await writer.apply(batches, describe);
      } finally {
        runner.applies.push(performance.now() - t0);
      }
    },
    readElements: (f, set) => writer.readElements(f, set),
    close: () => writer.close(),
  };
}

async function measureNetplane(services: number, endpoints: number, netlink: boolean): Promise<NetplaneRow> {
  return inNamespace(async (runner) => {
    const writer = netlink ? timedWriter(await NamespacedElementChannel.open(runner.ns), runner) : undefined;
    try {
      return await measureBackend(runner, services, endpoints, writer);
    } finally {
      writer?.close();
    }
  });
}

async function measureBackend(runner: TimedRunner, services: number, endpoints: number, writer: ElementChannel | undefined): Promise<NetplaneRow> {
  const options = { log: silentLogger(), ...(writer ? { elements: () => writer } : {}) };
  const backend = new NftablesBackend(runner, options);
  // The plan is the planner's work, made before the clock starts (as the kube-proxy-style text is).
  const plan = benchPlan(services, endpoints);
  let mark = runner.applies.length;
  let t0 = performance.now();
  const initial = await backend.sync(plan, { full: true });
  const initialMs = performance.now() - t0;
  const initialNftMs = runner.since(mark);
  const shorter = new Set<number>();
  const changes: Array<{ ms: number; nftMs: number; lines: number }> = [];
  let current = plan;
  for (let k = 0; k < 5; k++) {
    const s = (services >> 1) + k;
    shorter.add(s);
    // As the proxy's planner cache does, unchanged ports keep their PortPlan objects; only one is new. Only that one
    // is made here: a whole new plan per change left garbage that was collected inside the timed sync.
    const ports = current.ports.slice();
    ports[s] = benchPort(s, endpoints, true);
    const changed = { ...current, ports };
    current = changed;
    mark = runner.applies.length;
    t0 = performance.now();
    const change = await backend.sync(changed, { full: false });
    changes.push({ ms: performance.now() - t0, nftMs: runner.since(mark), lines: change.operations });
  }
  const last = benchPlan(services, endpoints, shorter);
  t0 = performance.now();
  const resync = await new NftablesBackend(runner, options).sync(last, { full: true });
  const resyncMs = performance.now() - t0;
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
  return {
    initialMs, initialNftMs,
    changeMs: median(changes.map((c) => c.ms)), changeNftMs: median(changes.map((c) => c.nftMs)), changeLines: median(changes.map((c) => c.lines)),
    resyncMs, resyncLines: resync.operations, rules: initial.rules, elements: initial.elements,
  };
}

/** kube-proxy's chain names: a hash and the Service port (and endpoint) spelled out. */
const tag = (text: string) => createHash('sha256').update(text).digest('base64').replace(/[^A-Z0-9]/gi, '').slice(0, 8).toUpperCase();
const svcChain = (s: number) => `service-${tag(`svc${s}`)}-bench/svc${s}/tcp/http`;
const epChain = (s: number, e: number) => `endpoint-${tag(`svc${s}/${e}`)}-bench/svc${s}/tcp/http__${endpointIP(s, e)}/8080`;

/** The rules kube-proxy's nftables mode writes for one ClusterIP Service over endpoints `eps`. */
function kubeProxyService(s: number, eps: number[]): string[] {
  const T = 'ip kube-proxy';
  const lines = [
    `flush chain ${T} ${svcChain(s)}`,
    `add rule ${T} ${svcChain(s)} ip daddr ${clusterIP(s)} tcp dport 80 ip saddr != 10.128.0.0/10 jump mark-for-masquerade`,
    `add rule ${T} ${svcChain(s)} numgen random mod ${eps.length} vmap { ${eps.map((e, i) => `${i} : goto ${epChain(s, e)}`).join(' , ')} }`,
  ];
  for (const e of eps) {
    lines.push(
      `flush chain ${T} ${epChain(s, e)}`,
      `add rule ${T} ${epChain(s, e)} ip saddr ${endpointIP(s, e)} jump mark-for-masquerade`,
      `add rule ${T} ${epChain(s, e)} meta l4proto tcp dnat to ${endpointIP(s, e)}:8080`,
    );
  }
  return lines;
}

async function measureKubeProxyStyle(services: number, endpoints: number): Promise<NonNullable<NftablesBenchRow['kubeProxyStyle']>> {
  const T = 'ip kube-proxy';
  const all = Array.from({ length: endpoints }, (_, e) => e);
  const lines = [
    `add table ${T}`,
    `add chain ${T} nat-prerouting { type nat hook prerouting priority -100; policy accept; }`,
    `add chain ${T} nat-output { type nat hook output priority -100; policy accept; }`,
    `add chain ${T} nat-postrouting { type nat hook postrouting priority 100; policy accept; }`,
    `add chain ${T} services`,
    `add chain ${T} mark-for-masquerade`,
    `add chain ${T} masquerading`,
    `add map ${T} service-ips { type ipv4_addr . inet_proto . inet_service : verdict; }`,
    `add rule ${T} nat-prerouting jump services`,
    `add rule ${T} nat-output jump services`,
    `add rule ${T} nat-postrouting jump masquerading`,
    `add rule ${T} mark-for-masquerade meta mark set meta mark | 0x4000`,
    `add rule ${T} masquerading meta mark & 0x4000 == 0 return`,
    `add rule ${T} masquerading meta mark set meta mark ^ 0x4000`,
    `add rule ${T} masquerading masquerade fully-random`,
    `add rule ${T} services ip daddr . meta l4proto . th dport vmap @service-ips`,
  ];
  for (let s = 0; s < services; s++) {
    lines.push(`add chain ${T} ${svcChain(s)}`, ...all.map((e) => `add chain ${T} ${epChain(s, e)}`));
    lines.push(...kubeProxyService(s, all).filter((l) => !l.startsWith('flush')));
    lines.push(`add element ${T} service-ips { ${clusterIP(s)} . tcp . 80 : goto ${svcChain(s)} }`);
  }
  return inNamespace(async (runner) => {
    let t0 = performance.now();
    await runner.run('nft', ['-f', '-'], `${lines.join('\n')}\n`);
    const initialMs = performance.now() - t0;
    // The change: kube-proxy rewrites the changed Service's chains and deletes the chain of the endpoint that left.
    const s = services >> 1;
    const change = [...kubeProxyService(s, all.slice(1)), `flush chain ${T} ${epChain(s, 0)}`, `delete chain ${T} ${epChain(s, 0)}`];
    t0 = performance.now();
    await runner.run('nft', ['-f', '-'], `${change.join('\n')}\n`);
    const changeMs = performance.now() - t0;
    return { initialMs, changeMs, chains: services * (endpoints + 1) + 7, rules: services * (2 + 2 * endpoints) + 8 };
  });
}

/** Runs the benchmark; the slow kube-proxy-style 10,000 case is skipped with `quick`. */
export async function benchNftables(options: NftablesBenchOptions = {}): Promise<NftablesBenchRow[]> {
  const sizes = options.sizes ?? [1000, 10000];
  const endpoints = options.endpoints ?? 10;
  const log = options.log ?? (() => {});
  const rows: NftablesBenchRow[] = [];
  for (const services of sizes) {
    log(`netplane: ${services} Services x ${endpoints} endpoints ...`);
    const netplane = await measureNetplane(services, endpoints, true);
    log(`netplane, nft alone: ${services} Services x ${endpoints} endpoints ...`);
    const nftOnly = await measureNetplane(services, endpoints, false);
    const row: NftablesBenchRow = { services, endpoints, netplane, nftOnly };
    if (options.quick && services >= 10000) log(`kube-proxy style: ${services} skipped (--quick)`);
    else {
      log(`kube-proxy style: ${services} Services x ${endpoints} endpoints ...`);
      row.kubeProxyStyle = await measureKubeProxyStyle(services, endpoints);
    }
    rows.push(row);
  }
  return rows;
}

const ms = (v: number) => (v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(1)} ms`);

/** The results as a text table, with ratios netplane / kube-proxy style and the DESIGN.md targets. */
export function formatNftablesBench(rows: readonly NftablesBenchRow[]): string {
  const out = [
    'nftables backend: netplane (shared maps; set elements by netlink) vs kube-proxy-style layout (one `nft -f` per step), fresh namespace each',
    `${'Services x endpoints'.padEnd(22)}${'step'.padEnd(30)}${'netplane'.padStart(12)}${'its kernel'.padStart(12)}${'kube-proxy'.padStart(14)}${'ratio'.padStart(9)}  target${'nft alone'.padStart(16)}${'its nft -f'.padStart(12)}`,
  ];
  for (const r of rows) {
    const size = `${r.services} x ${r.endpoints}`;
    const k = r.kubeProxyStyle;
    const big = r.services >= 10000 && r.endpoints === 10;
    // The ratio compares like with like: the whole programming step for the initial load, the `nft -f` process
    // (spawn included) for a change, as the kube-proxy-style layout is timed. The targets are held against
    // netplane's whole step (planning excluded; rendering, diffing and the nft process included).
    const line = (step: string, value: number, nft: number, kube: number | undefined, measured: number, target: number, alone: number, aloneNft: number) =>
      out.push(
        `${size.padEnd(22)}${step.padEnd(30)}${ms(value).padStart(12)}${ms(nft).padStart(12)}${(kube === undefined ? 'skipped' : ms(kube)).padStart(14)}` +
          `${(kube === undefined ? '' : (measured / kube).toFixed(3)).padStart(9)}  ${(big ? `< ${ms(target)} ${value < target ? 'met' : 'MISSED'}` : '').padEnd(14)}` +
          `${ms(alone).padStart(10)}${ms(aloneNft).padStart(12)}`,
      );
    const n = r.nftOnly;
    line('initial programming', r.netplane.initialMs, r.netplane.initialNftMs, k?.initialMs, r.netplane.initialMs, targets.initialMs, n.initialMs, n.initialNftMs);
    line('one endpoint change (median)', r.netplane.changeMs, r.netplane.changeNftMs, k?.changeMs, r.netplane.changeNftMs, targets.changeMs, n.changeMs, n.changeNftMs);
    out.push(
      `${size.padEnd(22)}${'full resync after restart'.padEnd(30)}${ms(r.netplane.resyncMs).padStart(12)}${''.padStart(12)}${'n/a'.padStart(14)}${''.padStart(25)}${ms(n.resyncMs).padStart(10)}`,
      `${''.padEnd(22)}netplane: ${r.netplane.rules} rules, ${r.netplane.elements} elements; a change ${r.netplane.changeLines} lines, the resync ${r.netplane.resyncLines}` +
        (k ? `; kube-proxy style: ${k.chains} chains, ${k.rules} rules` : ''),
    );
  }
  return out.join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  const opt = (name: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const rows = await benchNftables({
    ...(opt('sizes') ? { sizes: opt('sizes')!.split(',').map(Number) } : {}),
    ...(opt('endpoints') ? { endpoints: Number(opt('endpoints')) } : {}),
    quick: args.includes('--quick'),
    log: (line) => process.stderr.write(`${line}\n`),
  });
  process.stdout.write(`${formatNftablesBench(rows)}\n`);
  if (args.includes('--json')) process.stdout.write(`${JSON.stringify({ benchmark: 'proxy/nftables', targets, rows })}\n`);
}
