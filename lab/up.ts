// `netplane lab up`: claims a state directory and an underlay subnet, builds the namespaces and links, writes the
// cluster's manifests, starts every backend and component detached, and returns once all of them are ready. On any
// failure (or abort) everything made so far is removed again.
import { existsSync } from 'node:fs';
import { cp, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HostRunner } from '../runtime/exec.ts';
import { labDown } from './down.ts';
import { labManifests, podResolvConf } from './manifests.ts';
import { NetnsLab, type LinkEnd } from './netns.ts';
import { cidrsOverlap, labCluster, labPods, planLab, type LabNode, type LabPlan } from './plan.ts';
import { backendProcess, componentProcess, ingressAnswer, LabNotReadyError, startProcess, waitProcessesReady } from './processes.ts';
import { claimState, saveState, type LabState } from './state.ts';

const host = new HostRunner();

/** What `lab up` is asked for. */
export interface UpOptions {
  nodes: number;
  stateDir: string;
  /** A directory of extra manifests, copied into the lab's manifests under `extra/`. */
  extraManifests?: string;
  readyTimeoutMs?: number;
  /** Called with one line per step. */
  progress?: (line: string) => void;
  signal?: AbortSignal;
}

/** No underlay subnet 192.168.200-219.0/24 is free on this host. */
export class NoSubnetError extends Error {
  override readonly name = 'NoSubnetError';
  readonly code = 'NETPLANE_LAB_NO_SUBNET';
}

/** Builds and starts a lab; resolves with its state once everything is ready. Rejects after removing what it made. */
export async function labUp(o: UpOptions): Promise<LabState> {
  const t0 = performance.now();
  const say = o.progress ?? (() => {});
  const state = await claimState(o.stateDir);
  try {
    const { lab, plan } = await claimSubnet(o.nodes);
    state.plan = plan;
    state.hostLinks = [plan.hostLink];
    await saveState(state);
    await buildNetwork(lab, plan, o.signal);
    state.namespaces = [...lab.namespaces];
    say(`network built: ${lab.namespaces.length} namespaces on ${plan.underlayCIDR}, host link ${plan.hostLink} ${plan.hostIP} (${Math.round(performance.now() - t0)} ms)`);
    await writeManifests(state, plan, o.extraManifests);
    await mkdir(state.logs, { recursive: true });
    o.signal?.throwIfAborted();
    const backends = labPods(plan).map((pod) => startProcess(lab, backendProcess(state, plan, pod)));
    const components = plan.nodes.flatMap((n) => n.components.map((c) => startProcess(lab, componentProcess(state, plan, n, c))));
    state.processes = [...backends, ...components];
    await saveState(state);
    say(`started ${backends.length} pod backends and ${components.length} components; logs in ${state.logs}`);
    await waitProcessesReady(state.processes, o.readyTimeoutMs ?? 60_000, o.signal);
    await waitIngress(plan, 10_000, o.signal);
    state.phase = 'running';
    await saveState(state);
    say(`ready in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    return state;
  } catch (e) {
    await labDown(o.stateDir).catch((err: Error) => say(`cleaning up after the failure failed too: ${err.message}`));
    throw e;
  }
}

/** Picks the first underlay subnet no host route or address overlaps whose namespaces do not exist yet. */
async function claimSubnet(nodes: number): Promise<{ lab: NetnsLab; plan: LabPlan }> {
  const taken = [
    ...(await host.run('ip', ['-4', '-o', 'addr', 'show'])).stdout.split('\n').map((l) => /\sinet\s+(\S+)/.exec(l)?.[1]),
    ...(await host.run('ip', ['-4', 'route', 'show'])).stdout.split('\n').map((l) => l.split(' ')[0]),
  ].filter((c): c is string => !!c && c !== 'default' && /^\d/.test(c));
  const links = (await host.run('ip', ['-o', 'link', 'show'])).stdout;
  for (let s = labCluster.firstSubnet; s < labCluster.firstSubnet + labCluster.subnets; s++) {
    const plan = planLab(nodes, s);
    if (taken.some((c) => cidrsOverlap(c, plan.underlayCIDR)) || links.includes(` ${plan.hostLink}:`)) continue;
    const lab = NetnsLab.create({ id: plan.id });
    const claimed = join('/run/netns', `${lab.prefix}underlay`);
    if (existsSync(claimed)) continue;
    try {
      // Creating the first namespace is the claim: it fails when another lab took this subnet meanwhile.
      await lab.ns('underlay');
    } catch (e) {
      if (existsSync(claimed)) continue;
      throw e;
    }
    return { lab, plan };
  }
  const last = labCluster.firstSubnet + labCluster.subnets - 1;
  throw new NoSubnetError(`no underlay subnet is free: 192.168.${labCluster.firstSubnet}.0/24 to 192.168.${last}.0/24 are all used on this host or by other labs`);
}

async function buildNetwork(lab: NetnsLab, plan: LabPlan, signal?: AbortSignal): Promise<void> {
  const underlay = `${lab.prefix}underlay`;
  const br: LinkEnd = { ns: underlay, ifname: 'br0' };
  await lab.bridge(br);
  // Ports forward at once (no STP listening delay), so the first packets are not lost.
  await lab.exec(underlay, 'ip', ['link', 'set', 'br0', 'type', 'bridge', 'forward_delay', '0', 'stp_state', '0']);
  await lab.hostVeth(plan.hostLink, [`${plan.hostIP}/24`], { ns: underlay, ifname: 'host' });
  await lab.exec(underlay, 'ip', ['link', 'set', 'host', 'master', 'br0']);
  await Promise.all(plan.nodes.map((n) => buildNode(lab, plan, br, n, signal)));
}

async function buildNode(lab: NetnsLab, plan: LabPlan, br: LinkEnd, node: LabNode, signal?: AbortSignal): Promise<void> {
  signal?.throwIfAborted();
  const ns = await lab.ns(node.name);
  await lab.attach(br, { ns, ifname: 'eth0', addrs: [`${node.ip}/24`] }, `n${node.index}`);
  await lab.exec(ns, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
  // Traffic for outside the cluster goes to the host's end of the underlay (the overlay masquerades pods' traffic).
  await lab.exec(ns, 'ip', ['route', 'add', 'default', 'via', plan.hostIP]);
  const cni: LinkEnd = { ns, ifname: 'cni0', addrs: [`${node.gateway}/24`] };
  await lab.bridge(cni);
  await lab.exec(ns, 'ip', ['link', 'set', 'cni0', 'type', 'bridge', 'forward_delay', '0', 'stp_state', '0', 'mcast_snooping', '0']);
  await Promise.all(
    node.pods.map(async (pod) => {
      const podNs = await lab.ns(pod.name);
      await lab.attach(cni, { ns: podNs, ifname: 'eth0', addrs: [`${pod.ip}/24`] }, `v${pod.name}`);
      await lab.exec(podNs, 'ip', ['link', 'set', 'eth0', 'mtu', String(labCluster.podMTU)]);
      await lab.exec(podNs, 'ip', ['route', 'add', 'default', 'via', node.gateway]);
      // A pod reaching itself through a Service gets its packet back out of the bridge port it came in by
      // (kubelet and the bridge CNI plugin set hairpin mode for this).
      await lab.exec(ns, 'ip', ['link', 'set', 'dev', `v${pod.name}`, 'type', 'bridge_slave', 'hairpin', 'on']);
      // `ip netns exec` bind-mounts /etc/netns/NS/resolv.conf over /etc/resolv.conf: names resolve via cluster DNS.
      const etc = join('/etc/netns', podNs);
      await mkdir(etc, { recursive: true });
      await writeFile(join(etc, 'resolv.conf'), podResolvConf());
    }),
  );
}

async function writeManifests(state: LabState, plan: LabPlan, extra: string | undefined): Promise<void> {
  await rm(state.manifests, { recursive: true, force: true });
  await mkdir(state.manifests, { recursive: true });
  for (const [file, text] of labManifests(plan)) await writeFile(join(state.manifests, file), text);
  if (extra) await cp(extra, join(state.manifests, 'extra'), { recursive: true, dereference: true });
}

async function waitIngress(plan: LabPlan, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while ((await ingressAnswer(plan)) === undefined) {
    signal?.throwIfAborted();
    if (performance.now() > deadline) throw new LabNotReadyError(`the ingress on ${plan.nodes[0]!.ip} did not answer for ${labCluster.ingressHost} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
