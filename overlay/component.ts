// netplane overlay: Flannel's VXLAN job. One VXLAN device per node (and with --ipv6-device auto a second one over
// IPv6 for the IPv6 pods, as Flannel's flannel-v6.1); for every other node a neighbour entry, an FDB entry and a route, programmed over netlink from the Node objects (or, with --direct-routing, a plain route
// to a node on this node's underlay network); pod traffic leaving the cluster is masqueraded with nftables. The
// data plane stays as it is when the agent stops or crashes.
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { defineComponent, type ComponentContext } from '../runtime/component.ts';
import { UsageError } from '../runtime/errors.ts';
import { HostRunner, type CommandRunner } from '../runtime/exec.ts';
import { durationFlag, intInRange, listFlag, nonEmpty, oneOf, parseCIDRList, switchFlag, valueFlag } from '../runtime/flags.ts';
import type { Logger } from '../runtime/logger.ts';
import { OverlayAgent } from './agent.ts';
import { directRouteProtocol, type OverlayKernel } from './kernel/types.ts';
import type { EntryChange, EntryWatchOptions } from './kernel/entry-watch.ts';
import type { AddressChange, HostWatch, LinkChange } from './kernel/watch.ts';
import { ForwardAccept, forwardChain } from './forward.ts';
import { Masquerade } from './masquerade.ts';
import { podCIDRs, unusableUnderlay } from './plan/node.ts';
import { canonicalIP } from '../proxy/nftables/model.ts';
import type { OverlayPlan, SelfVtep } from './plan/types.ts';
import { coveringCIDRs, renderSubnetEnv, SubnetFile } from './subnet-file.ts';
import { registerOverlayMetrics } from './metrics.ts';
import { flannelNetConfPath, flannelSubnetFile, readNetConf } from './net-conf.ts';
import { flanneldFlags } from './flanneld-flags.ts';
import { kubernetesStatusPatcher, NetworkConditionReporter, type PatchNodeStatus } from './node-status.ts';
import { kubernetesPatcher, VtepPublisher, type PatchAnnotations } from './publish.ts';

/** Parses an interface name as the kernel accepts it. */
function ifName(raw: string): string {
  if (!/^[^/:\s]{1,15}$/.test(raw) || raw === '.' || raw === '..') throw new Error('must be an interface name of 1 to 15 characters without "/", ":" or spaces');
  return raw;
}

/** Parses an --iface value: an IP address, or an interface name as the kernel accepts it. */
function ifNameOrIP(raw: string): string {
  if (isIP(raw)) return raw;
  try {
    return ifName(raw);
  } catch (e) {
    throw new Error(`must be an IP address or an ${(e as Error).message.replace(/^must be an /, '')}`);
  }
}

/** Parses an address other nodes could have (--iface-can-reach, --public-ip): unicast, not loopback or link-local; canonical. */
function nodeAddress(family?: 4 | 6): (raw: string) => string {
  return (raw) => {
    const ip = raw.trim();
    const want = family === undefined ? 'an IP address' : `an IPv${family} address`;
    if (family === undefined ? isIP(ip) === 0 : isIP(ip) !== family) throw new Error(`must be ${want} such as ${family === 6 ? 'fd00:60::1' : '192.168.60.1'}`);
    const unusable = unusableUnderlay(ip);
    if (unusable) throw new Error(`must be ${want} another node can reach, and ${ip} ${unusable}`);
    return canonicalIP(ip);
  };
}

const flags = {
  device: valueFlag({ value: 'NAME', help: 'the VXLAN device', parse: ifName, default: 'netplane.1' }),
  vni: valueFlag({ value: 'N', help: 'the VXLAN network identifier', parse: intInRange(0, 16_777_215), default: 1 }),
  port: valueFlag({ value: 'PORT', help: "the VXLAN UDP port (Flannel's default; 4789 is the IANA one)", parse: intInRange(1, 65535), default: 8472 }),
  mtu: valueFlag({ value: 'BYTES', help: "the device's MTU (default: the underlay interface's MTU less 50, less 70 over IPv6); the IPv6 device's (--ipv6-device) is 20 less", parse: intInRange(68, 65535) }),
  'iface-regex': listFlag({
    value: 'REGEX',
    help: "when no --iface fits: the first interface whose IPv4 (else global IPv6) address, else whose name, matches, each regex tried in order, as Flannel's --iface-regex",
    parse: (raw: string) => {
      try {
        return new RegExp(raw);
      } catch {
        throw new Error('must be a regular expression such as ^(eth|ens)');
      }
    },
  }),
  'iface-can-reach': valueFlag({
    value: 'IP',
    help: "when no --iface or --iface-regex fits: the interface of this host's route to IP, and the source address the kernel picks for it, as Flannel's --iface-can-reach (ip route get IP)",
    parse: nodeAddress(),
  }),
  'public-ip': valueFlag({
    value: 'IPv4',
    help: "the IPv4 address other nodes reach this one at (behind NAT, say), announced on its Node in place of the VXLAN source; without --iface, --iface-regex or --iface-can-reach, an interface holding it is the underlay; Flannel's public-ip-overwrite annotation wins, as in Flannel (default: the VXLAN source address)",
    parse: nodeAddress(4),
  }),
  'public-ipv6': valueFlag({
    value: 'IPv6',
    help: "the same for IPv6: the address of an IPv6 underlay, or of the IPv6 device (--ipv6-device), announced as netplane.io/public-ipv6 and Flannel's public-ipv6",
    parse: nodeAddress(6),
  }),
  iface: listFlag({
    value: 'NAME|IP',
    help: "the underlay interface, by name (its IPv4, else global IPv6, address is this node's underlay address) or by IP address; the first that is here is used, as Flannel's (default: the interface holding the Node's address)",
    parse: ifNameOrIP,
  }),
  'cluster-cidr': listFlag({
    value: 'CIDRS',
    help: "pod network CIDRs, comma-separated; pod traffic to anywhere else is masqueraded (default: the podCIDRs of the nodes in use, none left out)",
    parse: parseCIDRList,
  }),
  'subnet-file': valueFlag({
    value: 'PATH',
    help: `write Flannel's subnet.env here for the flannel CNI plugin (default: none, or with --kube-subnet-mgr Flannel's ${flannelSubnetFile})`,
    parse: nonEmpty,
  }),
  'direct-routing': switchFlag(
    `route a node's pod network straight to its address when that is on a network of this node's underlay interface, and use VXLAN only for the other nodes (Flannel's VXLAN DirectRouting; per pod family; routes of protocol ${directRouteProtocol})`,
  ),
  'flannel-annotations': switchFlag("also publish Flannel's Node annotations (kubernetes mode), so that Flannel nodes reach this one during a migration"),
  'set-node-network-unavailable': valueFlag({
    value: 'true|false',
    help: "once the overlay is up, set this node's NetworkUnavailable condition to False (kubernetes mode; Flannel's flag and default)",
    parse: oneOf(['true', 'false']),
    default: 'true',
  }),
  'ipv6-device': valueFlag({
    value: 'auto|off',
    help: "auto: with an IPv6 podCIDR and a global IPv6 address on the IPv4 underlay interface, build a second VXLAN device over IPv6 for the IPv6 pods, as Flannel's VXLAN backend does with IPv6 enabled (flannel-v6.1), so that Flannel nodes' IPv6 pod traffic arrives; off removes it; set it on every node",
    parse: oneOf(['auto', 'off']),
    default: 'off',
  }),
  'ipv6-device-name': valueFlag({ value: 'NAME', help: 'the IPv6 VXLAN device (--ipv6-device auto)', parse: ifName, default: 'netplane-v6.1' }),
  'resync-period': durationFlag({ help: 'read the kernel again and repair what differs at least this often', default: '30s', min: '1s', max: '24h' }),
  'net-config-path': valueFlag({
    value: 'FILE',
    help: `Flannel's network configuration (net-conf.json: Network, IPv6Network, EnableIPv6, Backend VXLAN settings), read at start; flags given here win over it (default: none, or with --kube-subnet-mgr Flannel's ${flannelNetConfPath})`,
    parse: nonEmpty,
  }),
  'kube-subnet-mgr': switchFlag(`Flannel's flag, accepted so that its command line works: each node's pod network is always its Node's podCIDR; it makes --net-config-path default to ${flannelNetConfPath} and --subnet-file to ${flannelSubnetFile}, as flanneld's`),
  'ip-masq': switchFlag("Flannel's flag, accepted so that its command line works: pod traffic leaving the pod network is always masqueraded"),
  cleanup: switchFlag('remove the VXLAN devices (with their routes and entries; --device and --ipv6-device-name), the direct routes, the masquerade tables and the forward-accept chain, and exit'),
};

/** The overlay component. */
export const overlayComponent = defineComponent({
  name: 'overlay',
  summary: "Connects the pod networks of all nodes through a VXLAN overlay programmed over netlink (Flannel's VXLAN job).",
  kinds: ['Node'],
  defaultAdmin: '127.0.0.1:10247',
  flags,
  // A Flannel DaemonSet's command line, as it is.
  anchor: flanneldFlags,
  // --cleanup reads no cluster: without a source flag it needs none (in-cluster config may not even exist there).
  readsNoCluster: (f) => f.cleanup,
  async settings(f, given) {
    if (f.cleanup) return undefined;
    const file = f['net-config-path'] ?? (f['kube-subnet-mgr'] ? flannelNetConfPath : undefined);
    const out = file === undefined ? undefined : await readNetConf(file);
    // flanneld writes its subnet.env unless told otherwise, and the flannel CNI plugin on the node reads it.
    if (out !== undefined && f['kube-subnet-mgr'] && !given('subnet-file')) out.settings.push({ flag: 'subnet-file', value: flannelSubnetFile, from: '--kube-subnet-mgr' });
    return out;
  },
  async before(f, log) {
    if (f['ipv6-device-name'] === f.device) throw new UsageError(`netplane overlay: --ipv6-device-name ${f.device} is also --device; give the IPv6 device a name of its own`);
    if ((f['public-ip'] ?? f['public-ipv6']) !== undefined && f.manifests !== undefined) {
      log.warn("--public-ip and --public-ipv6 announce nothing with --manifests: the other nodes read this node's address from its manifest (Flannel's public-ip-overwrite); they only choose the underlay interface that holds them");
    }
    if (f['flannel-annotations'] && f.manifests !== undefined) log.warn('--flannel-annotations has no effect with --manifests: annotations are published only to an API server (--kubeconfig)');
    if (!f.cleanup) return undefined;
    return cleanup([f.device, f['ipv6-device-name']], log);
  },
  async run(ctx, f) {
    await runOverlay(ctx, f);
  },
});

/** The parsed flags of `netplane overlay`. */
export type OverlayFlags = Parameters<NonNullable<typeof overlayComponent.run>>[1];

/** What the overlay reaches the host through; tests give a FakeKernel and a recording runner. */
export interface OverlayDeps {
  openKernel: () => Promise<OverlayKernel>;
  runner: CommandRunner;
  /** In kubernetes mode: how the VTEP annotations are written (default: a merge patch through the kubeconfig). */
  patch?: PatchAnnotations;
  /** In kubernetes mode: how the Node's status is patched (default: a strategic merge patch of nodes/status). */
  patchStatus?: PatchNodeStatus;
  /** Loads what announces this host's address and interface changes (default: rtnetlink's); without it they are seen at the resync. */
  loadHostWatch?: () => Promise<HostWatches>;
}

/** Opens the kernel layer; loaded only when used (it loads a native module). */
async function openKernel(): Promise<OverlayKernel> {
  const { NetlinkKernel } = await import('./kernel/netlink.ts');
  return NetlinkKernel.open();
}

/** The watches of this host's address and interface changes. */
export interface HostWatches {
  watchAddresses: (onChange: (change: AddressChange) => void) => HostWatch;
  watchLinks: (onChange: (change: LinkChange) => void) => HostWatch;
  watchEntries: (onChange: (change: EntryChange) => void, options?: EntryWatchOptions) => HostWatch;
}

/** Loads the rtnetlink watches; loaded only when used (they load a native module). */
async function loadHostWatch(): Promise<HostWatches> {
  const { watchAddresses, watchLinks } = await import('./kernel/watch.ts');
  const { watchEntries } = await import('./kernel/entry-watch.ts');
  return { watchAddresses, watchLinks, watchEntries };
}

/**
 * Deletes the devices (their routes, neighbour and FDB entries go with them), the direct routes (netplane's route
 * protocol, whatever the device), both masquerade tables and the forward-accept chain.
 */
async function cleanup(devices: readonly string[], log: Logger): Promise<number> {
  let failed = false;
  const device = devices.join(',');
  try {
    const kernel = await openKernel();
    try {
      for (const device of devices) {
        const link = await kernel.link(device);
        if (link && link.kind === 'vxlan') {
          await kernel.deleteLink(link.index);
          log.info({ device }, 'removed the VXLAN device with its routes and entries');
        } else if (link) {
          log.warn({ device, kind: link.kind ?? 'none' }, `${device} is not a VXLAN device; left alone`);
        }
      }
      const direct = await kernel.routesByProtocol(directRouteProtocol);
      for (const r of direct) await kernel.deleteRoute({ ...r, protocol: directRouteProtocol });
      if (direct.length > 0) log.info({ routes: direct.length, protocol: directRouteProtocol }, 'removed the direct routes');
    } finally {
      kernel.close();
    }
  } catch (e) {
    failed = true;
    log.error({ device, err: (e as Error).message }, 'cannot remove the VXLAN device');
  }
  try {
    await new Masquerade(new HostRunner()).cleanup();
    log.info('removed the masquerade tables');
  } catch (e) {
    failed = true;
    log.error({ err: (e as Error).message }, 'cannot remove the masquerade tables');
  }
  try {
    const removed = await new ForwardAccept(new HostRunner()).cleanup();
    if (removed > 0) log.info({ tables: removed }, `removed the forward-accept chain ${forwardChain}`);
    else log.info(`there was no forward-accept chain ${forwardChain} to remove`);
  } catch (e) {
    failed = true;
    log.error({ err: (e as Error).message }, `cannot remove the forward-accept chain ${forwardChain}`);
  }
  return failed ? 1 : 0;
}

/**
 * Starts the agent (once the cluster view is loaded), its health check, metrics, and in kubernetes mode the
 * annotation publisher; stops them on shutdown, leaving the kernel as it is. Logs and exits 1 when rtnetlink
 * cannot be opened.
 */
export async function runOverlay(ctx: ComponentContext, f: OverlayFlags, deps: OverlayDeps = { openKernel, runner: new HostRunner(), loadHostWatch }): Promise<OverlayAgent | undefined> {
  let kernel: OverlayKernel;
  try {
    kernel = await deps.openKernel();
  } catch (e) {
    ctx.log.fatal({ err: (e as Error).message }, 'cannot open rtnetlink');
    await ctx.shutdown.run(1);
    return undefined;
  }
  const clusterCIDRs = f['cluster-cidr'].flat();
  const kube = ctx.source.name === 'kubernetes';
  const publisher = kube ? await makePublisher(ctx, f, deps.patch) : undefined;
  const reporter = kube && f['set-node-network-unavailable'] === 'true' ? await makeReporter(ctx, f, deps.patchStatus) : undefined;
  const onSelf = (self: SelfVtep) => {
    publisher?.publish(self);
    reporter?.up();
  };
  const agent = new OverlayAgent({
    kernel,
    store: ctx.store,
    overlay: {
      nodeName: ctx.nodeName,
      device: f.device,
      vni: f.vni,
      port: f.port,
      ...(f.mtu !== undefined ? { mtu: f.mtu } : {}),
      ...(f.iface.length > 0 ? { ifaces: f.iface } : {}),
      ...(f['iface-regex'].length > 0 ? { ifaceRegex: f['iface-regex'] } : {}),
      ...(f['iface-can-reach'] !== undefined ? { ifaceCanReach: f['iface-can-reach'] } : {}),
      ...(f['public-ip'] !== undefined || f['public-ipv6'] !== undefined ? { publicIP: { ...(f['public-ip'] !== undefined ? { 4: f['public-ip'] } : {}), ...(f['public-ipv6'] !== undefined ? { 6: f['public-ipv6'] } : {}) } } : {}),
      publishes: publisher !== undefined,
      directRouting: f['direct-routing'],
      ipv6Device: { name: f['ipv6-device-name'], auto: f['ipv6-device'] === 'auto' },
    },
    clusterCIDRs,
    masquerade: new Masquerade(deps.runner),
    forward: new ForwardAccept(deps.runner, ctx.log),
    metrics: registerOverlayMetrics(ctx.registry),
    log: ctx.log,
    resyncPeriodMs: f['resync-period'],
    neverRead: () => ctx.source.neverRead?.() ?? [],
    ...(deps.loadHostWatch ? await deps.loadHostWatch() : {}),
    ...(kube ? { onSelf } : {}),
    ...(f['subnet-file'] ? { onPlan: subnetEnvWriter(ctx, f['subnet-file'], clusterCIDRs) } : {}),
  });
  ctx.admin.addHealthCheck('overlay', agent.health);
  // A never-read manifest removed (not fixed) changes no Node: sync at once, so that stale entries go.
  ctx.source.onNeverReadChange?.(() => agent.requestSync());
  ctx.admin.addReadinessCheck('overlay', agent.readiness);
  // Never program an empty view: on a restart that would delete every other node's entries until it loads.
  const startWhenSynced = () => {
    if (ctx.store.status.synced) agent.start();
  };
  ctx.store.onStatus(startWhenSynced);
  startWhenSynced();
  ctx.shutdown.add('overlay', async () => {
    publisher?.stop();
    reporter?.stop();
    await agent.stop();
    // The device and its entries stay: pods keep reaching each other while the agent is away.
    kernel.close();
  });
  if (clusterCIDRs.length === 0) ctx.log.info("no --cluster-cidr: pod traffic leaving the podCIDRs of the nodes in use is masqueraded");
  if ((await readFile('/proc/sys/net/ipv4/ip_forward', 'utf8').catch(() => '1')).trim() === '0') {
    ctx.log.warn('net.ipv4.ip_forward is 0: this node will not forward pod traffic to or from the overlay');
  }
  ctx.log.info({ device: f.device, vni: f.vni, port: f.port, mtu: f.mtu ?? 'auto', iface: f.iface.length > 0 ? f.iface : 'auto', ifaceRegex: f['iface-regex'].map((r) => r.source), ifaceCanReach: f['iface-can-reach'] ?? 'none', publicIP: f['public-ip'] ?? 'auto', publicIPv6: f['public-ipv6'] ?? 'auto', clusterCIDRs, publishes: publisher !== undefined, directRouting: f['direct-routing'], ipv6Device: f['ipv6-device'] === 'auto' ? f['ipv6-device-name'] : 'off' }, 'overlay running');
  return agent;
}

/** Keeps subnet.env in step with each plan; a failed write is logged and tried again at the next sync. */
function subnetEnvWriter(ctx: ComponentContext, path: string, clusterCIDRs: readonly string[]): (plan: OverlayPlan) => void {
  const file = new SubnetFile(path);
  let failing = false;
  return (plan) => {
    const self = ctx.store.get('Node', ctx.nodeName);
    if (!self || !plan.device) return;
    const own = podCIDRs(self);
    const text = renderSubnetEnv({ networks: clusterCIDRs.length > 0 ? clusterCIDRs : coveringCIDRs(plan.podCIDRs), subnet4: own.v4, subnet6: own.v6, mtu: plan.device.mtu, ipMasq: true });
    file.update(text).then(
      (wrote) => {
        if (wrote) ctx.log.info({ path, subnet: own.v4 ?? own.v6, mtu: plan.device?.mtu }, 'wrote subnet.env');
        failing = false;
      },
      (e: Error) => {
        if (!failing) ctx.log.warn({ path, err: e.message }, 'cannot write subnet.env; trying again at the next sync');
        failing = true;
      },
    );
  };
}

async function makeReporter(ctx: ComponentContext, f: OverlayFlags, patch: PatchNodeStatus | undefined): Promise<NetworkConditionReporter> {
  return new NetworkConditionReporter({ nodeName: ctx.nodeName, patch: patch ?? (await kubernetesStatusPatcher(await patchConfig(ctx, f))), store: ctx.store, log: ctx.log });
}

/** The kubeconfig the overlay's writes use. */
async function patchConfig(ctx: ComponentContext, f: OverlayFlags) {
  const { writerConfig } = await import('../cluster/kubernetes/source.ts');
  return writerConfig(ctx.source, f.kubeconfig, ctx.log);
}

async function makePublisher(ctx: ComponentContext, f: OverlayFlags, patch: PatchAnnotations | undefined): Promise<VtepPublisher> {
  return new VtepPublisher({
    nodeName: ctx.nodeName,
    patch: patch ?? (await kubernetesPatcher(await patchConfig(ctx, f))),
    current: () => ctx.store.get('Node', ctx.nodeName)?.metadata.annotations,
    log: ctx.log,
    ...(f['flannel-annotations'] ? { flannelVni: f.vni } : {}),
  });
}
