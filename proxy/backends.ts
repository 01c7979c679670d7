// Choosing a backend by --mode. Each is loaded only when chosen.
import type { CommandRunner } from '../runtime/exec.ts';
import type { Logger } from '../runtime/logger.ts';
import type { ProxyBackend } from './backend.ts';
import type { IptablesVariant } from './iptables/backend.ts';
import type { UdpDropReason } from './userspace/flow-budget.ts';

/** The proxy modes. */
export const proxyModes = ['nftables', 'iptables', 'userspace'] as const;
export type ProxyMode = (typeof proxyModes)[number];

/** What --iptables-variant takes (proxy/iptables/variant.ts decides `auto`). */
export const variantChoices = ['auto', 'nft', 'legacy'] as const;
export type VariantChoice = (typeof variantChoices)[number];

/** Creates the backend of a mode. */
export async function createBackend(
  mode: ProxyMode,
  options: { runner: CommandRunner; netlink?: boolean; log: Logger; bindAddress: string; threads: number; udpIdleMs?: number; udpMaxFlows?: number; udpMaxFlowsTotal?: number; onUdpEviction?: () => void; onUdpDrop?: (reason: UdpDropReason) => void; iptablesVariant?: IptablesVariant },
): Promise<ProxyBackend> {
  switch (mode) {
    case 'nftables': {
      const { NftablesBackend } = await import('./nftables/backend.ts');
      // netlink: the runner runs nft in this process's network namespace, where the socket opens. Without the
      // `netlink` package's native part (a platform it has no build for), nft does everything.
      let open: (() => import('./nftables/netlink/socket.ts').NetfilterSocket) | undefined;
      if (options.netlink) {
        try {
          const { NetfilterSocket } = await import('./nftables/netlink/socket.ts');
          open = () => new NetfilterSocket();
        } catch (e) {
          options.log.warn({ err: (e as Error).message }, 'the netlink package cannot load; nft writes nftables set elements');
        }
      }
      return new NftablesBackend(options.runner, { log: options.log, ...(open ? { elements: open } : {}) });
    }
    case 'iptables': {
      const { IptablesBackend } = await import('./iptables/backend.ts');
      return new IptablesBackend(options.runner, { log: options.log, ...(options.iptablesVariant ? { variant: options.iptablesVariant } : {}) });
    }
    case 'userspace': {
      const { UserspaceBackend } = await import('./userspace/backend.ts');
      const { runner: _runner, iptablesVariant: _variant, netlink: _netlink, ...rest } = options;
      return new UserspaceBackend(rest);
    }
  }
}

/** How to check, before starting, that a kernel mode can program the kernel: the command and its arguments. */
export const privilegeProbe: Record<Exclude<ProxyMode, 'userspace'>, [string, string[]]> = {
  // Not `list tables`: nft 1.0.6 reads every set element for it (seconds on a node with 10,000 Services programmed).
  nftables: ['nft', ['-t', 'list', 'ruleset']],
  // Table-less: where `iptables` is the legacy variant, `iptables-save -t nat` makes the nat table where there was none.
  iptables: ['iptables-save', []],
};

/**
 * The kernel mode whose rules a kernel mode removes once its own first sync has succeeded, as kube-proxy's
 * platformCleanup does at start: after a switch of --mode the old rules would keep deleted Services reachable.
 */
export const otherKernelMode = { nftables: 'iptables', iptables: 'nftables' } as const satisfies Record<Exclude<ProxyMode, 'userspace'>, ProxyMode>;
