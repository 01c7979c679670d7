// netplane proxy: kube-proxy's job. Every Service is reachable at its virtual addresses on this node, and
// connections are spread over its endpoints, by nftables, iptables or a userspace proxy.
import { watchConfigFile } from './config-watch.ts';
import { findNode, nodeZone, parseNodeName, primaryAddresses } from '../cluster/node.ts';
import { writeFile } from 'node:fs/promises';
import { readKubeProxyConfig } from './kube-proxy-config.ts';
import { kubeProxyFlags } from './kube-proxy-flags.ts';
import type { Node } from '../cluster/model/index.ts';
import { defineComponent, type ComponentContext } from '../runtime/component.ts';
import { UsageError } from '../runtime/errors.ts';
import { HostRunner } from '../runtime/exec.ts';
import { durationFlag, flagGiven, intInRange, listFlag, nonEmpty, oneOf, parseCIDRList, parseHostPort, parseIPAddress, positiveInt, switchFlag, valueFlag } from '../runtime/flags.ts';
import { ProxyHealthz } from './healthz.ts';
import { applyConntrack, conntrackDefaults } from './conntrack-tuning.ts';
import { availableParallelism, networkInterfaces } from 'node:os';
import type { Logger } from '../runtime/logger.ts';
import { createBackend, otherKernelMode, privilegeProbe, proxyModes, variantChoices, type ProxyMode, type VariantChoice } from './backends.ts';
import type { IptablesVariant } from './iptables/backend.ts';
import type { ProxyBackend } from './backend.ts';
import { cleanStaleFlows } from './conntrack.ts';
import { HealthCheckServers, healthCheckHosts } from './healthcheck.ts';
import { registerProxyMetrics } from './metrics.ts';
import { ProxySyncer } from './sync.ts';
import { clusterCIDRWarning, detectLocalModes, detectLocalProblem, parseInterfaceName, resolveDetectLocal, type DetectLocalFlags, type DetectLocalMode } from './plan/local.ts';

/** A whole number, 0 included. */
function wholeNumber(raw: string): number {
  if (!/^\d{1,9}$/.test(raw.trim())) throw new Error('must be a whole number');
  return Number(raw.trim());
}

/** The value of `--nodeport-addresses primary`. */
const primaryKeyword = 'primary';

const flags = {
  mode: valueFlag({ value: 'MODE', help: `how Services are programmed: ${proxyModes.join(', ')}`, parse: oneOf(proxyModes), default: 'nftables' as ProxyMode }),
  'cluster-cidr': listFlag({ value: 'CIDRS', help: 'pod network CIDRs, comma-separated; traffic from outside them to a Service is masqueraded', parse: parseCIDRList }),
  'nodeport-addresses': listFlag({
    value: 'CIDRS|primary',
    help: "accept NodePorts only on local addresses in these CIDRs, or with 'primary' only on the Node's InternalIP of each family; a family without any accepts them on every local address but loopback (the default)",
    parse: (raw) => (raw.trim() === 'primary' ? [primaryKeyword] : parseCIDRList(raw)),
  }),
  'masquerade-all': switchFlag('masquerade every connection to a Service'),
  'detect-local-mode': valueFlag({
    value: 'MODE',
    help: "kernel modes: how traffic from this node's pods is told apart (kube-proxy's --detect-local-mode): ClusterCIDR (sources in --cluster-cidr), NodeCIDR (sources in the Node's spec.podCIDRs), BridgeInterface (in on --pod-bridge-interface), InterfaceNamePrefix (in on interfaces named --pod-interface-name-prefix*)",
    parse: oneOf(detectLocalModes),
    default: 'ClusterCIDR' as DetectLocalMode,
  }),
  'pod-bridge-interface': valueFlag({ value: 'NAME', help: "with --detect-local-mode BridgeInterface: the bridge this node's pods are attached to, e.g. cni0", parse: parseInterfaceName }),
  'pod-interface-name-prefix': valueFlag({ value: 'PREFIX', help: "with --detect-local-mode InterfaceNamePrefix: how this node's pod interfaces are named, e.g. veth", parse: (v) => parseInterfaceName(v, true) }),
  zone: valueFlag({ value: 'ZONE', help: "this node's zone for topology-aware routing (default: the node's topology.kubernetes.io/zone label)", parse: nonEmpty }),
  'bind-address': valueFlag({ value: 'ADDR', help: 'userspace mode: the address Service ports listen on', parse: parseIPAddress, default: '127.0.0.1' }),
  'userspace-threads': valueFlag({ value: 'N', help: 'userspace mode: threads accepting TCP connections (SO_REUSEPORT), 1 to 64', parse: intInRange(1, 64), default: 1 }),
  'udp-timeout': durationFlag({ help: "userspace mode: a UDP flow idle this long is closed (kube-proxy's --udp-timeout)", default: '250ms', min: '1ms' }),
  'udp-max-flows': valueFlag({ value: 'N', help: 'userspace mode: UDP flows per Service port; past it the least recently used is evicted', parse: positiveInt, default: 4096 }),
  'udp-max-flows-total': valueFlag({
    value: 'N',
    help: "userspace mode: UDP flows over all Service ports (each holds a socket and an ephemeral port); past it a new client evicts its port's least recently used flow, or is refused when its port has none",
    parse: positiveInt,
    default: 16384,
  }),
  'healthz-bind-address': valueFlag({
    value: 'ADDR:PORT',
    listens: true,
    help: "serve kube-proxy's /healthz and /livez here, which cloud load balancers probe (an ADDR alone, as kube-proxy takes it, on its port 10256); 0.0.0.0 takes IPv6 too (default: 0.0.0.0:10256 in the kernel modes, none in userspace mode)",
    parse: parseHostPort,
  }),
  'health-check-address': valueFlag({ value: 'ADDR', help: 'kernel modes: the address health-check node ports listen on (default: the node addresses --nodeport-addresses names, else 0.0.0.0, which takes IPv6 too; userspace mode uses --bind-address)', parse: parseIPAddress }),
  'conntrack-max-per-core': valueFlag({ value: 'N', help: 'kernel modes: raise nf_conntrack_max to at least N per core (0: leave it)', parse: wholeNumber, default: conntrackDefaults.maxPerCore }),
  'conntrack-min': valueFlag({ value: 'N', help: 'kernel modes: raise nf_conntrack_max to at least N in any case (0: no floor)', parse: wholeNumber, default: conntrackDefaults.min }),
  'conntrack-tcp-timeout-established': durationFlag({ help: 'kernel modes: how long an idle established TCP entry is kept (0s: leave it)', default: '24h' }),
  'conntrack-tcp-timeout-close-wait': durationFlag({ help: 'kernel modes: how long a TCP entry in CLOSE_WAIT is kept (0s: leave it)', default: '1h' }),
  'conntrack-tcp-be-liberal': switchFlag('kernel modes: set nf_conntrack_tcp_be_liberal (out-of-window TCP packets are not marked INVALID)'),
  'conntrack-udp-timeout': durationFlag({ help: 'kernel modes: how long an idle UDP entry that has seen no reply is kept (0s: leave it)', default: '0s' }),
  'conntrack-udp-timeout-stream': durationFlag({ help: 'kernel modes: how long an idle UDP entry that has seen replies is kept (0s: leave it)', default: '0s' }),
  'oom-score-adj': valueFlag({ value: 'N', help: "this process's oom_score_adj, -1000 to 1000 (kube-proxy's --oom-score-adj; default: leave it)", parse: intInRange(-1000, 1000) }),
  config: valueFlag({
    value: 'FILE',
    help: "kube-proxy's configuration file (kubeproxy.config.k8s.io/v1alpha1 KubeProxyConfiguration, as in kubeadm's kube-proxy ConfigMap); flags given here win over it; read again every 5 s, and a change of what it sets restarts the process in place (same PID, rules kept)",
    parse: nonEmpty,
  }),
  'hostname-override': valueFlag({ value: 'NAME', help: "kube-proxy's name for --node-name", parse: nonEmpty }),
  'min-sync-period': durationFlag({ help: 'least time between two syncs; changes in between are batched', default: '1s', max: '1h' }),
  'sync-period': durationFlag({ help: 'a sync runs at least this often; /healthz fails when a change waits twice this', default: '30s', min: '1s', max: '24h' }),
  'iptables-variant': valueFlag({
    value: 'VARIANT',
    help: "iptables mode: which iptables the host uses, auto (kubelet's KUBE-IPTABLES-HINT as kube-proxy's images read it, else where the host's rules are), nft or legacy",
    parse: oneOf(variantChoices),
    default: 'auto' as VariantChoice,
  }),
  cleanup: switchFlag('remove every rule netplane made (nftables and iptables) and exit'),
};

/** The proxy component. */
export const proxyComponent = defineComponent({
  name: 'proxy',
  summary: "Makes every Service reachable at its virtual IPs on this node (kube-proxy's job): nftables, iptables or userspace.",
  kinds: ['Service', 'EndpointSlice', 'Node'],
  // kube-proxy's metrics port, so scrape configs written for it keep working.
  defaultAdmin: '127.0.0.1:10249',
  flags,
  // A kube-proxy DaemonSet's command line, as it is.
  anchor: kubeProxyFlags,
  readsNoCluster: (f) => f.cleanup,
  async settings(f, given) {
    const line = { given, mode: f.mode };
    const file = f.config === undefined ? undefined : await readKubeProxyConfig(f.config, line);
    const alias = f['hostname-override'];
    if (alias === undefined) return file;
    if (given('node-name') && parseNodeName(alias) !== f['node-name']) throw new UsageError('netplane proxy: --hostname-override and --node-name name different nodes; give one');
    const out = file ?? { settings: [], notes: [] };
    if (!given('node-name')) out.settings.unshift({ flag: 'node-name', value: alias, from: '--hostname-override' });
    return out;
  },
  async before(f, log) {
    checkProxyFlags(f);
    if (f.mode === 'userspace' && f['detect-local-mode'] !== 'ClusterCIDR') {
      log.warn(`--detect-local-mode ${f['detect-local-mode']} has no effect in userspace mode: its sockets cannot see the interface a connection came in on, and its Local-policy NodePorts take every endpoint for clients from this node and --cluster-cidr`);
    }
    if (f.mode !== 'userspace' && flagGiven(f, 'bind-address')) log.warn(`--bind-address ${f['bind-address']} has no effect in ${f.mode} mode: Services are programmed in the kernel, not listened on`);
    if (f.mode !== 'iptables' && flagGiven(f, 'iptables-variant')) log.warn(`--iptables-variant ${f['iptables-variant']} has no effect in ${f.mode} mode`);
    if (f.mode === 'userspace' && f['health-check-address'] !== undefined) {
      log.warn(`--health-check-address ${f['health-check-address']} has no effect in userspace mode: its health-check node ports listen on --bind-address ${f['bind-address']}`);
    }
    const runner = new HostRunner();
    if (f.cleanup) return cleanup(runner, log);
    if (f.mode === 'userspace') return undefined;
    const [cmd, args] = privilegeProbe[f.mode];
    try {
      await runner.run(cmd, args);
    } catch (e) {
      log.fatal({ err: (e as Error).message }, `--mode ${f.mode} cannot program the kernel here (it needs root or CAP_NET_ADMIN, and ${cmd}); --mode userspace needs no privileges`);
      return 1;
    }
    return undefined;
  },
  async run(ctx, f) {
    if (f['oom-score-adj'] !== undefined) await setOomScoreAdj(f['oom-score-adj'], ctx.log);
    await runProxy(ctx, f);
    if (f.config !== undefined) watchConfigFile(ctx, f.config, f, { check: (next) => checkProxyFlags(next as ProxyFlags) });
  },
});

/** Sets this process's oom_score_adj, as kube-proxy does at start; a refusal (lowering it needs CAP_SYS_RESOURCE) is logged. */
async function setOomScoreAdj(value: number, log: Logger): Promise<void> {
  try {
    await writeFile('/proc/self/oom_score_adj', `${value}\n`);
    log.info({ oomScoreAdj: value }, 'oom_score_adj set');
  } catch (e) {
    log.warn({ oomScoreAdj: value, err: (e as Error).message }, 'cannot set oom_score_adj; leaving it as it is');
  }
}

/** Removes what a kernel mode programmed: for iptables, in each variant that is installed (an earlier run may have used either). */
async function cleanMode(mode: Exclude<ProxyMode, 'userspace'>, runner: HostRunner, log: Logger): Promise<void> {
  const variants = mode === 'iptables' ? await (await import('./iptables/variant.ts')).installedVariants(runner) : [undefined];
  let failure: unknown;
  for (const iptablesVariant of variants) {
    try {
      await (await createBackend(mode, { runner, log, bindAddress: '127.0.0.1', threads: 1, ...(iptablesVariant ? { iptablesVariant } : {}) })).cleanup();
    } catch (e) {
      failure ??= e;
    }
  }
  if (failure !== undefined) throw failure;
}

async function cleanup(runner: HostRunner, log: Logger): Promise<number> {
  let failed = false;
  for (const mode of ['nftables', 'iptables'] as const) {
    try {
      await cleanMode(mode, runner, log);
      log.info({ mode }, 'removed what netplane programmed');
    } catch (e) {
      failed = true;
      log.error({ mode, err: (e as Error).message }, 'clean-up failed');
    }
  }
  return failed ? 1 : 0;
}

/** Removes what the other kernel mode programmed (a --mode switch); a failure is logged, not fatal. */
async function removeOtherMode(mode: Exclude<ProxyMode, 'userspace'>, runner: HostRunner, log: Logger): Promise<void> {
  try {
    await cleanMode(mode, runner, log);
    log.debug({ mode }, 'removed what the other proxy mode programmed, if anything');
  } catch (e) {
    log.warn({ mode, err: (e as Error).message }, 'could not remove the rules of the other proxy mode; they may keep removed Services reachable');
  }
}

/**
 * Whether the kernel holds rules an earlier run programmed that this run's first sync would replace or remove:
 * this backend's, the other kernel mode's (after a switch of --mode, removeOtherMode removes them) and, in iptables
 * mode, another variant's (after a switch of variant, cleanOtherVariants does). A kernel that cannot be read counts
 * as holding none. Userspace mode: never (it removes nothing).
 */
async function rulesOfLastRun(mode: ProxyMode, backend: ProxyBackend, iptablesVariant: IptablesVariant | undefined, runner: HostRunner, log: Logger): Promise<boolean> {
  if (mode === 'userspace') return false;
  const holds = (b: ProxyBackend) => b.inherited?.().catch(() => false) ?? Promise.resolve(false);
  if (await holds(backend)) return true;
  const variant = await import('./iptables/variant.ts');
  if (mode === 'iptables') {
    if ((await variant.otherVariantsWithRules(iptablesVariant ?? 'default', runner, log)).length > 0) return true;
    return holds(await createBackend('nftables', { runner, log, bindAddress: '127.0.0.1', threads: 1 }));
  }
  for (const v of await variant.installedVariants(runner)) {
    if (await holds(await createBackend('iptables', { runner, log, bindAddress: '127.0.0.1', threads: 1, iptablesVariant: v }))) return true;
  }
  return false;
}

type ProxyFlags = Parameters<NonNullable<typeof proxyComponent.run>>[1];

/** The --detect-local-mode flags; userspace mode always takes ClusterCIDR (it has no kernel rules to match with). */
function detectLocalFlags(f: Pick<ProxyFlags, 'mode' | 'detect-local-mode' | 'pod-bridge-interface' | 'pod-interface-name-prefix'>, forRules = false): DetectLocalFlags {
  if (forRules && f.mode === 'userspace') return { mode: 'ClusterCIDR' };
  return { mode: f['detect-local-mode'], bridge: f['pod-bridge-interface'], prefix: f['pod-interface-name-prefix'] };
}

async function runProxy(ctx: ComponentContext, f: ProxyFlags): Promise<void> {
  const runner = new HostRunner();
  const metrics = registerProxyMetrics(ctx.registry, f.mode);
  let iptablesVariant: IptablesVariant | undefined;
  if (f.mode === 'iptables') {
    const chosen = await (await import('./iptables/variant.ts')).resolveVariant(f['iptables-variant'], runner);
    iptablesVariant = chosen.variant;
    ctx.log.info({ variant: chosen.variant, why: chosen.why }, `iptables mode programs ${chosen.variant === 'default' ? 'the host\'s iptables' : `iptables-${chosen.variant}`}`);
  }
  const backend = await createBackend(f.mode, {
    ...(iptablesVariant ? { iptablesVariant } : {}),
    runner,
    netlink: process.env.NETPLANE_NFT_NETLINK !== '0',
    log: ctx.log,
    bindAddress: f['bind-address'],
    threads: f['userspace-threads'],
    udpIdleMs: f['udp-timeout'],
    udpMaxFlows: f['udp-max-flows'],
    udpMaxFlowsTotal: f['udp-max-flows-total'],
    onUdpEviction: () => metrics.udpFlowEvictions.inc(),
    onUdpDrop: (reason) => metrics.udpDatagramsDropped.inc({ reason }),
  });
  // Rules from an earlier run are what works now: a first view that lacks what a broken manifest held must not
  // remove them (below), nor may the first sync's clean-ups after a switch of mode or iptables variant. A kernel that
  // cannot be read here is taken to hold none; the first sync then says why.
  const lastRunRules = () => rulesOfLastRun(f.mode, backend, iptablesVariant, runner, ctx.log);
  let inherited = await lastRunRules();
  // While the first sync is held for them, the kernel is asked again at each held attempt: rules removed meanwhile
  // (`netplane proxy --cleanup`, a reboot of the firewall) leave nothing to keep, and the hold would only keep the
  // node without rules.
  let rechecking = false;
  const recheckInherited = () => {
    if (rechecking || f.mode === 'userspace') return;
    rechecking = true;
    lastRunRules().then(
      (still) => {
        rechecking = false;
        if (still || !inherited) return;
        inherited = false;
        ctx.log.info('the rules of the last run are gone from the kernel; programming what the view holds');
        syncer.requestSync();
      },
      () => {
        rechecking = false;
      },
    );
  };
  const serviceMap = ctx.serviceMap();
  const tracker = serviceMap.tracker();
  const health = new HealthCheckServers({
    host: f.mode === 'userspace' ? f['bind-address'] : (f['health-check-address'] ?? '0.0.0.0'),
    // As kube-proxy's service health server: on the node addresses --nodeport-addresses names, read at each sync.
    ...(f.mode !== 'userspace' && f['health-check-address'] === undefined && f['nodeport-addresses'].flat().length > 0
      ? { hosts: () => healthCheckHosts(nodePortCIDRs(f['nodeport-addresses'].flat(), findNode(ctx.store, ctx.nodeName), () => {}), networkInterfaces()) }
      : {}),
    log: ctx.log,
    proxyHealthy: () => syncer.health().ok,
  });
  // Removed only once this mode's rules are in place, so that the node is never without working rules.
  let leftovers = f.mode === 'userspace' ? undefined : otherKernelMode[f.mode];
  let warned = '';
  const warnOnce = (message: string) => {
    if (message !== warned) ctx.log.warn(message);
    warned = message;
  };
  let localWarned: string | undefined;
  const syncer: ProxySyncer = new ProxySyncer({
    backend,
    serviceMap,
    tracker,
    metrics,
    log: ctx.log,
    minSyncPeriodMs: f['min-sync-period'],
    syncPeriodMs: f['sync-period'],
    fullSyncPeriodMs: 3_600_000,
    config: () => {
      // Never flush what is working: while a manifest that was never read could hold Services the earlier run
      // programmed, the first sync waits (those rules keep serving; the change is programmed once it is fixed or
      // removed). A manifest broken later keeps its last good version in the view, so this holds only at start.
      const unread = inherited && syncer.lastPlan === undefined ? (ctx.source.neverRead?.() ?? []) : [];
      if (unread.length > 0) {
        recheckInherited();
        return { waitFor: `manifests never read: ${unread.join('; ')}; the rules of the last run stay as they are until these are fixed or removed` };
      }
      const zone = f.zone ?? nodeZone(ctx.store, ctx.nodeName);
      const node = findNode(ctx.store, ctx.nodeName);
      const local = resolveDetectLocal(detectLocalFlags(f, true), ctx.nodeName, node, syncer.lastPlan);
      if ('waitFor' in local) return local;
      if (local.warning !== undefined && local.warning !== localWarned) ctx.log.warn(local.warning);
      localWarned = local.warning;
      if (local.notice) ctx.log.info(local.notice);
      return {
        nodeName: ctx.nodeName,
        ...(zone !== undefined ? { zone } : {}),
        clusterCIDRs: f['cluster-cidr'].flat(),
        masqueradeAll: f['masquerade-all'],
        nodePortAddresses: nodePortCIDRs(f['nodeport-addresses'].flat(), node, warnOnce),
        nodeIPs: primaryAddresses(node),
        detectLocal: local.detect,
      };
    },
    onGiveUp(reason, waitedMs) {
      // kube-proxy stops with "timeout waiting for PodCIDR allocation" and is restarted by its DaemonSet.
      ctx.log.fatal({ waited: reason, waitedS: Math.round(waitedMs / 1000) }, `gave up after ${Math.round(waitedMs / 1000)} s ${reason.split(':')[0]}, as kube-proxy does; exiting`);
      void ctx.shutdown.run(1);
    },
    async afterSync(prev, next) {
      if (leftovers) {
        const mode = leftovers;
        leftovers = undefined;
        await removeOtherMode(mode, runner, ctx.log);
        // And what a run with the other iptables variant left (--iptables-variant changed, or auto decided otherwise).
        if (iptablesVariant) await (await import('./iptables/variant.ts')).cleanOtherVariants(iptablesVariant, runner, ctx.log);
      }
      if (f.mode !== 'userspace') {
        const deleted = await cleanStaleFlows(runner, prev, next, ctx.log);
        metrics.conntrackDeletions.inc(deleted);
      }
      await health.update(next.healthChecks);
    },
  });
  ctx.admin.addHealthCheck('proxy-sync', syncer.health);
  // A never-read manifest removed (not fixed) changes no Service: without this, the held first sync would wait for
  // the sync period.
  ctx.source.onNeverReadChange?.(() => syncer.requestSync());
  // kube-proxy answers its mode on its metrics port, and scripts ask it there.
  ctx.admin.addPage('/proxyMode', () => f.mode);
  const noLocal = f.mode === 'userspace' ? undefined : clusterCIDRWarning(f['detect-local-mode'], f['cluster-cidr'].flat());
  if (noLocal) ctx.log.warn(noLocal);
  ctx.admin.addReadinessCheck('proxy-rules', syncer.readiness);
  if (f.mode !== 'userspace') {
    await applyConntrack(
      {
        maxPerCore: f['conntrack-max-per-core'],
        min: f['conntrack-min'],
        tcpEstablishedSeconds: Math.round(f['conntrack-tcp-timeout-established'] / 1000),
        tcpCloseWaitSeconds: Math.round(f['conntrack-tcp-timeout-close-wait'] / 1000),
        tcpBeLiberal: f['conntrack-tcp-be-liberal'],
        udpSeconds: Math.round(f['conntrack-udp-timeout'] / 1000),
        udpStreamSeconds: Math.round(f['conntrack-udp-timeout-stream'] / 1000),
      },
      availableParallelism(),
      ctx.log,
    );
  }
  const healthzAddr = f['healthz-bind-address'] ?? (f.mode === 'userspace' ? undefined : parseHostPort('0.0.0.0:10256'));
  const healthz = healthzAddr && new ProxyHealthz({ health: syncer.health, lastSyncedAt: () => syncer.lastSyncedAt, node: () => findNode(ctx.store, ctx.nodeName) });
  if (healthz && healthzAddr) {
    // Not fatal: the rules matter more than the probe (another kube-proxy may still hold the port during a migration).
    await healthz.listen(healthzAddr).then(
      (port) => ctx.log.info({ address: `${healthzAddr.host}:${port}` }, 'serving kube-proxy /healthz and /livez'),
      (e: Error) => ctx.log.warn({ err: e.message, address: `${healthzAddr.host}:${healthzAddr.port}` }, 'cannot serve /healthz for load balancers; the rules are programmed all the same'),
    );
  }
  // The node's zone comes from its Node object; a change to it re-plans.
  ctx.store.subscribe((changes) => {
    if (changes.some((c) => c.kind === 'Node' && c.key === ctx.nodeName)) syncer.requestSync();
  });
  // Never program an empty view: on a restart that would delete every Service's rules until the view loads.
  const startWhenSynced = () => {
    if (ctx.store.status.synced) syncer.start();
  };
  ctx.store.onStatus(startWhenSynced);
  startWhenSynced();
  ctx.shutdown.add('proxy', async () => {
    await syncer.stop();
    await health.close();
    await healthz?.close();
    // The rules stay programmed: a restart must not cut traffic. Userspace listeners close with the process.
    await backend.close();
  });
  ctx.log.info({ mode: f.mode, clusterCIDRs: f['cluster-cidr'].flat(), nodePortAddresses: f['nodeport-addresses'].flat(), detectLocal: detectLocalFlags(f, true) }, 'proxy running');
}

/** The checks of flags that go together, at start and for a rewritten --config. Throws UsageError. */
function checkProxyFlags(f: ProxyFlags): void {
  // As kube-proxy's configuration validation: a sync period shorter than the least time between syncs could not hold.
  if (f['min-sync-period'] > f['sync-period']) throw new UsageError(`netplane proxy: --min-sync-period (${f['min-sync-period'] / 1000} s) must not be longer than --sync-period (${f['sync-period'] / 1000} s)`);
  const np = f['nodeport-addresses'].flat();
  if (np.includes(primaryKeyword) && np.length > 1) throw new UsageError(`netplane proxy: --nodeport-addresses ${primaryKeyword} takes no CIDRs beside it`);
  const localProblem = detectLocalProblem(detectLocalFlags(f));
  if (localProblem) throw new UsageError(`netplane proxy: ${localProblem}`);
}

/**
 * The NodePort CIDRs: the flag's as given, or for `primary` (alone: checked at start) the node's primary addresses
 * (a /32 or /128 each), loopback ones skipped as kube-proxy does (`!nodeIP.IsLoopback()`); a family left without
 * one accepts NodePorts on every local address (nodePortAddressesOf). Without any (the Node is not in the view, or
 * has no usable address) `[]`, which means every local address but loopback, after `warn`.
 */
export function nodePortCIDRs(flag: readonly string[], node: Node | undefined, warn: (message: string) => void): string[] {
  if (!flag.includes(primaryKeyword)) return [...flag];
  const ips = primaryAddresses(node);
  const usable = (ip: string | undefined) => ip !== undefined && !isLoopback(ip);
  const out = [...(usable(ips[4]) ? [`${ips[4]}/32`] : []), ...(usable(ips[6]) ? [`${ips[6]}/128`] : [])];
  if (out.length > 0) return out;
  warn(`--nodeport-addresses primary: the Node ${node ? 'has no InternalIP or ExternalIP but loopback' : 'is not in the cluster view'}; NodePorts are accepted on every local address but loopback`);
  return [];
}

/** Whether an address is loopback: 127.0.0.0/8 or ::1. */
function isLoopback(ip: string): boolean {
  return ip.startsWith('127.') || /^(0{0,4}:){2,7}0{0,3}1$/.test(ip) || ip === '::1';
}
