// Flannel's subnet.env, for the flannel CNI plugin: the plugin reads this node's pod subnet, the cluster networks,
// the MTU and whether the overlay masquerades from it (default /run/flannel/subnet.env) and configures the bridge
// plugin with them. Writing it lets clusters keep their `"type": "flannel"` CNI configuration when netplane
// replaces flanneld. The file is replaced whole (a temporary file renamed over it), and only when it changes.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join, basename } from 'node:path';
import { isIPv6 } from 'node:net';
import { firstHost } from '../proxy/nftables/model.ts';
import { networkCIDR } from './plan/cidr.ts';
import { cidrRange } from './plan/node.ts';

/** What subnet.env says. */
export interface SubnetEnv {
  /** The cluster's pod networks (both families; each family's line lists its own). */
  networks: readonly string[];
  /** This node's podCIDRs, canonical. */
  subnet4?: string;
  subnet6?: string;
  mtu: number;
  ipMasq: boolean;
}

/**
 * The file's text, in Flannel's order: FLANNEL_NETWORK and FLANNEL_SUBNET (the subnet's first host address with its
 * prefix length: the bridge's gateway address) for IPv4, FLANNEL_IPV6_NETWORK and FLANNEL_IPV6_SUBNET for IPv6,
 * FLANNEL_MTU, FLANNEL_IPMASQ. A family this node has no subnet of is left out. Pure.
 */
export function renderSubnetEnv(e: SubnetEnv): string {
  const lines: string[] = [];
  const family = (six: boolean) => e.networks.filter((n) => isIPv6(n.split('/')[0]!) === six);
  const gateway = (cidr: string) => `${firstHost(cidr)}/${cidr.split('/')[1]}`;
  if (e.subnet4) lines.push(`FLANNEL_NETWORK=${family(false).join(',') || e.subnet4}`, `FLANNEL_SUBNET=${gateway(e.subnet4)}`);
  if (e.subnet6) lines.push(`FLANNEL_IPV6_NETWORK=${family(true).join(',') || e.subnet6}`, `FLANNEL_IPV6_SUBNET=${gateway(e.subnet6)}`);
  lines.push(`FLANNEL_MTU=${e.mtu}`, `FLANNEL_IPMASQ=${e.ipMasq}`);
  return `${lines.join('\n')}\n`;
}

/**
 * The smallest CIDR of each family that holds all of `cidrs` (every Node's podCIDRs, when no --cluster-cidr says
 * what the cluster network is): one line entry instead of one per node. Pure.
 */
export function coveringCIDRs(cidrs: readonly string[]): string[] {
  const out: string[] = [];
  for (const six of [false, true]) {
    const mine = cidrs.filter((c) => isIPv6(c.split('/')[0]!) === six);
    if (mine.length === 0) continue;
    let lo = cidrRange(mine[0]!).lo;
    let hi = cidrRange(mine[0]!).hi;
    for (const c of mine) {
      const r = cidrRange(c);
      if (r.lo < lo) lo = r.lo;
      if (r.hi > hi) hi = r.hi;
    }
    const [ip = '', len = ''] = mine[0]!.split('/');
    for (let l = Number(len); l >= 0; l--) {
      const candidate = networkCIDR(`${ip}/${l}`)!;
      const r = cidrRange(candidate);
      if (r.lo <= lo && r.hi >= hi) {
        out.push(candidate);
        break;
      }
    }
  }
  return out;
}

/** Keeps one subnet.env file equal to the last text given. */
export class SubnetFile {
  readonly path: string;
  #written: string | undefined;
  #chain: Promise<unknown> = Promise.resolve();

  constructor(path: string) {
    this.path = path;
  }

  /**
   * Writes `text` if the file does not hold it already (updates run one after another); returns whether it wrote.
   * Rejects on I/O errors.
   */
  update(text: string): Promise<boolean> {
    const next = this.#chain.then(() => this.#update(text));
    this.#chain = next.catch(() => {});
    return next;
  }

  async #update(text: string): Promise<boolean> {
    if (this.#written === text) return false;
    const current = await readFile(this.path, 'utf8').catch(() => undefined);
    if (current !== text) {
      await mkdir(dirname(this.path), { recursive: true });
      const tmp = join(dirname(this.path), `.${basename(this.path)}.${process.pid}.tmp`);
      await writeFile(tmp, text, { mode: 0o644 });
      await rename(tmp, this.path);
    }
    this.#written = text;
    return current !== text;
  }
}
