// Choosing a backend by --mode. Each is loaded only when chosen.
import type { CommandRunner } from '../runtime/exec.ts';
import type { Logger } from '../runtime/logger.ts';
import type { ProxyBackend } from './backend.ts';

/** The proxy modes. */
export const proxyModes = ['nftables', 'iptables', 'userspace'] as const;
export type ProxyMode = (typeof proxyModes)[number];

/** Creates the backend of a mode. */
export async function createBackend(
  mode: ProxyMode,
  options: { runner: CommandRunner; log: Logger; bindAddress: string; threads: number; udpIdleMs?: number; udpMaxFlows?: number; onUdpEviction?: () => void },
): Promise<ProxyBackend> {
  switch (mode) {
    case 'nftables': {
      const { NftablesBackend } = await import('./nftables/backend.ts');
      return new NftablesBackend(options.runner, { log: options.log });
    }
    case 'iptables': {
      const { IptablesBackend } = await import('./iptables/backend.ts');
      return new IptablesBackend(options.runner, { log: options.log });
    }
    case 'userspace': {
      const { UserspaceBackend } = await import('./userspace/backend.ts');
      const { runner: _runner, ...rest } = options;
      return new UserspaceBackend(rest);
    }
  }
}

/** How to check, before starting, that a kernel mode can program the kernel: the command and its arguments. */
export const privilegeProbe: Record<Exclude<ProxyMode, 'userspace'>, [string, string[]]> = {
  nftables: ['nft', ['list', 'tables']],
  iptables: ['iptables-save', ['-t', 'nat']],
};

/**
 * The kernel mode whose rules a kernel mode removes once its own first sync has succeeded, as kube-proxy's
 * platformCleanup does at start: after a switch of --mode the old rules would keep deleted Services reachable.
 */
export const otherKernelMode = { nftables: 'iptables', iptables: 'nftables' } as const satisfies Record<Exclude<ProxyMode, 'userspace'>, ProxyMode>;
