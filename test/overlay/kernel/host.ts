// A namespace with an underlay (veth eth0 10.0.0.1/24, its peer eth0p) for the NetlinkKernel tests, the driver run
// inside it, and `ip`/`bridge` JSON output to check the kernel's state with a tool that is not the code under test.
import { fileURLToPath } from 'node:url';
import { NetnsLab } from '../../../lab/netns.ts';
import type { VxlanSpec } from '../../../overlay/kernel/types.ts';
import type { KernelOp, OpResult } from './ops.ts';

const DRIVER = fileURLToPath(new URL('./driver.ts', import.meta.url));

/** The VXLAN device most tests create; `underlayIndex` is resolved by the driver. */
export const SPEC: Omit<VxlanSpec, 'underlayIndex'> & { underlayIndex: string } = {
  name: 'netplane.1', vni: 1, port: 8472, local: '10.0.0.1', underlayIndex: '$index:eth0', learning: false, mtu: 1450, mac: '0a:58:0a:f4:01:00',
};

/** `SPEC.mac`'s EUI-64 IPv6 link-local address, which the kernel gives the device when it goes up. */
export const SPEC_LINK_LOCAL = 'fe80::858:aff:fef4:100/64';

/** "$index:netplane.1" for driver arguments. */
export const VX = '$index:netplane.1';

/** A namespace with the underlay; `destroy()` removes it. */
export class KernelHost {
  readonly lab: NetnsLab;
  readonly ns: string;

  private constructor(lab: NetnsLab, ns: string) {
    this.lab = lab;
    this.ns = ns;
  }

  /** Creates the namespace and the underlay; removes what it made if that fails. */
  static async create(): Promise<KernelHost> {
    const lab = NetnsLab.create();
    try {
      const ns = await lab.ns('kernel');
      const ip = (...args: string[]) => lab.exec(ns, 'ip', args);
      await ip('link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0p');
      await ip('addr', 'add', '10.0.0.1/24', 'dev', 'eth0');
      await ip('link', 'set', 'eth0', 'up');
      await ip('link', 'set', 'eth0p', 'up');
      return new KernelHost(lab, ns);
    } catch (e) {
      await lab.destroy();
      throw e;
    }
  }

  /** Runs the operations with NetlinkKernel in a child process inside the namespace. */
  async drive(ops: readonly KernelOp[]): Promise<OpResult[]> {
    const { stdout } = await this.lab.exec(this.ns, process.execPath, [DRIVER, JSON.stringify(ops)]);
    return JSON.parse(stdout) as OpResult[];
  }

  /** `ip -j ARGS` (with `-d` first when asked) in the namespace, parsed. */
  async ip<T = Record<string, unknown>[]>(...args: string[]): Promise<T> {
    const { stdout } = await this.lab.exec(this.ns, 'ip', ['-j', ...args]);
    return JSON.parse(stdout || '[]') as T;
  }

  /** `bridge -j fdb show dev DEV` in the namespace, parsed. */
  async fdb(dev: string): Promise<{ mac: string; dst?: string; flags?: string[]; state?: string }[]> {
    const { stdout } = await this.lab.exec(this.ns, 'bridge', ['-j', 'fdb', 'show', 'dev', dev]);
    return JSON.parse(stdout || '[]') as { mac: string; dst?: string }[];
  }

  /** Deletes the namespace with everything in it. Never throws. */
  destroy(): Promise<void> {
    return this.lab.destroy();
  }
}

/** The value of a successful result; throws with the error message otherwise. */
export function value<T = unknown>(r: OpResult | undefined): T {
  if (!r) throw new Error('no result');
  if (!r.ok) throw new Error(`expected success, got ${r.error.message}`);
  return r.value as T;
}

/** The errno of a failed result, 'ok' for a successful one. */
export function errno(r: OpResult | undefined): string {
  if (!r) throw new Error('no result');
  return r.ok ? 'ok' : (r.error.errno ?? r.error.message);
}
