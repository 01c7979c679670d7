// The thin layer between the differ and the kernel: read the host and the overlay's device into a view, and send
// a set of changes through an OverlayKernel, keeping the view in step with what succeeded.
import { isIPv6 } from 'node:net';
import { canonicalIP } from '../proxy/nftables/model.ts';
import { isKernelError } from './kernel/errors.ts';
import { directRouteProtocol, type LinkState, type OverlayKernel } from './kernel/types.ts';
import { networkCIDR } from './plan/cidr.ts';
import { devicePlans } from './plan/device6.ts';
import { diffOverlay, diffSteps, entryOwner, opText, recordOp } from './plan/diff.ts';
import { emptyView, type DeviceSpec, type DeviceView, type HostView, type OverlayChanges, type OverlayOp, type OverlayPlan } from './plan/types.ts';

/** Operations in flight at once inside a phase: enough to hide the round trips, few enough for the socket buffer. */
const inFlight = 64;

/** The host's interfaces and addresses, and with `canReach` the route to that address. Rejects with the kernel's error. */
export async function readHost(kernel: OverlayKernel, canReach?: string): Promise<HostView> {
  const [links, addresses, route] = await Promise.all([kernel.links(), kernel.addresses(), canReach !== undefined ? kernel.routeTo(canReach) : undefined]);
  return { links, addresses, ...(canReach !== undefined ? { reach: { ip: canReach, ...route } } : {}) };
}

/**
 * The device called `name` and everything on it (an empty view when it does not exist), and netplane's direct
 * routes, which are read whether or not the device exists or --direct-routing is on: a restart without the flag
 * removes them.
 */
export async function readDevice(kernel: OverlayKernel, name: string, links?: readonly LinkState[], withDirect = true): Promise<DeviceView> {
  const [link, direct] = await Promise.all([links ? links.find((l) => l.name === name) : kernel.link(name), withDirect ? kernel.routesByProtocol(directRouteProtocol) : []]);
  const view = emptyView();
  for (const r of direct) view.direct.set(networkCIDR(r.dst) ?? r.dst, { gateway: canonicalIP(r.gateway), index: r.index });
  if (!link) return view;
  view.link = link;
  const [addresses, neighbours, fdb, routes] = await Promise.all([
    kernel.addresses(link.index),
    kernel.neighbours(link.index),
    kernel.fdb(link.index),
    kernel.routes(link.index),
  ]);
  for (const a of addresses) {
    const [ip = '', len] = a.cidr.split('/');
    // The kernel gives every IPv6-enabled device a link-local address; it is not netplane's.
    if (isIPv6(ip) && /^fe[89ab]/i.test(ip)) continue;
    view.addresses.add(`${canonicalIP(ip)}/${len}`);
  }
  for (const n of neighbours) view.neighbours.set(canonicalIP(n.ip), { mac: n.mac.toLowerCase(), permanent: n.permanent });
  for (const f of fdb) {
    if (!f.dst) continue;
    const mac = f.mac.toLowerCase();
    const dst = canonicalIP(f.dst);
    // An entry with a port, VNI or interface of its own is not netplane's: under another key, the plan's is put back.
    view.fdb.set(f.extras ? `${mac} ${dst} ${f.extras}` : `${mac} ${dst}`, { mac, dst });
  }
  for (const r of routes) {
    // Routes without a gateway (the kernel's own, an IPv6 link-local prefix) are not netplane's.
    if (!r.gateway) continue;
    const dst = networkCIDR(r.dst) ?? r.dst;
    // A route of another metric is not one netplane made (its have the default): kept apart, to be deleted.
    if (r.metric !== undefined) view.routes.set(`${dst} metric ${r.metric}`, { gateway: canonicalIP(r.gateway), onlink: r.onlink, metric: r.metric });
    else view.routes.set(dst, { gateway: canonicalIP(r.gateway), onlink: r.onlink });
  }
  return view;
}

/** One operation the kernel refused. */
export interface FailedOp {
  op: OverlayOp;
  error: Error;
}

/** What an apply did: operations that succeeded, and those that failed. */
export interface ApplyResult {
  applied: number;
  failed: FailedOp[];
}

/**
 * Applies changes phase by phase, keeping `view` equal to what the kernel holds. A failed entry operation does not
 * stop the others (what works is kept); a failed link operation stops the apply, since nothing else can follow.
 */
export async function applyChanges(kernel: OverlayKernel, view: DeviceView, changes: OverlayChanges): Promise<ApplyResult> {
  const result: ApplyResult = { applied: 0, failed: [] };
  for (const phase of changes.phases) {
    if (phase[0]?.kind === 'link') {
      for (const op of phase) {
        try {
          if (op.kind !== 'link') throw new Error(`${opText(op)}: not a link operation`);
          recordOp(view, op, await applyLink(kernel, view, op));
          result.applied++;
        } catch (e) {
          result.failed.push({ op, error: e as Error });
          return result;
        }
      }
      continue;
    }
    const index = view.link?.index;
    if (index === undefined) return result;
    let next = 0;
    const worker = async () => {
      while (next < phase.length) {
        const op = phase[next++]!;
        try {
          await applyEntry(kernel, index, op);
          recordOp(view, op);
          result.applied++;
        } catch (e) {
          result.failed.push({ op, error: e as Error });
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(inFlight, phase.length) }, worker));
  }
  return result;
}

/** One device's view and the phases to apply to it (diffSteps). */
export interface DeviceWork {
  view: DeviceView;
  steps: readonly OverlayOp[][];
}

/**
 * Applies the phases of several devices side by side: phase i of every device before phase i+1 of any, so that a
 * route moving between devices is deleted from one before it is added to the other. A device whose link phase
 * fails stops there (nothing else can follow on it); the others go on. One result per device.
 */
export async function applyDevices(kernel: OverlayKernel, work: readonly DeviceWork[]): Promise<ApplyResult[]> {
  const results = work.map((): ApplyResult => ({ applied: 0, failed: [] }));
  const stopped = new Set<number>();
  const phases = Math.max(0, ...work.map((w) => w.steps.length));
  for (let i = 0; i < phases; i++) {
    for (const [j, w] of work.entries()) {
      const phase = w.steps[i];
      if (stopped.has(j) || !phase || phase.length === 0) continue;
      const r = await applyChanges(kernel, w.view, { phases: [phase] });
      results[j]!.applied += r.applied;
      results[j]!.failed.push(...r.failed);
      if (phase[0]?.kind === 'link' && r.failed.length > 0) stopped.add(j);
    }
  }
  return results;
}

/** What programPlan did: operations that succeeded, those that failed (with a line naming the device and node), and the views after. */
export interface PlanResult {
  applied: number;
  failed: Array<FailedOp & { text: string }>;
  views: { main: DeviceView; v6?: DeviceView };
}

/**
 * Makes the kernel hold a plan on the first device (`views.main`, named `names.main`) and, when `views.v6` is given,
 * the IPv6 device: its plan's, or none when the plan (with a device) has no IPv6 device — a VXLAN device of that name
 * left in the kernel goes, its routes with it, before the first device takes its pod networks back. A device that
 * lost an address is read again and what the kernel dropped with it put back at once (the last IPv4 address takes
 * the device's IPv4 routes and ARP entries: the view models that, the kernel has the last word). With `keepStale`,
 * entries no remote wants stay (diffSteps).
 */
export async function programPlan(kernel: OverlayKernel, plan: OverlayPlan, views: PlanResult['views'], names: { main: string; v6?: string }, keepStale = false): Promise<PlanResult> {
  const parts = devicePlans(plan);
  const devices: Array<{ plan: OverlayPlan; work: DeviceWork; name: string; v6: boolean }> = [{ plan: parts.main, work: { view: views.main, steps: diffSteps(parts.main, views.main, keepStale) }, name: names.main, v6: false }];
  const v6 = views.v6;
  if (v6 && names.v6 !== undefined) {
    const gone: OverlayOp[][] = plan.device !== undefined && v6.link?.kind === 'vxlan' ? [[{ kind: 'link', op: 'delete' }]] : [];
    devices.push({ plan: parts.v6 ?? plan, work: { view: v6, steps: parts.v6 ? diffSteps(parts.v6, v6, keepStale) : gone }, name: names.v6, v6: true });
  }
  const results = await applyDevices(kernel, devices.map((d) => d.work));
  const out: PlanResult = { applied: 0, failed: [], views: { ...views } };
  for (const [j, d] of devices.entries()) {
    const result = results[j]!;
    // After a failure the retry reads everything anyway.
    if (result.failed.length === 0 && d.work.steps.some((phase) => phase.some((op) => op.kind === 'address' && op.op === 'delete'))) {
      const view = await readDevice(kernel, d.name, undefined, !d.v6);
      if (d.v6) out.views.v6 = view;
      else out.views.main = view;
      const again = await applyChanges(kernel, view, diffOverlay(d.plan, view, keepStale));
      result.applied += again.applied;
      result.failed.push(...again.failed);
    }
    out.applied += result.applied;
    for (const f of result.failed) {
      const node = entryOwner(d.plan, f.op);
      out.failed.push({ ...f, text: `${d.v6 ? `${d.name}: ` : ''}${opText(f.op)}${node ? ` (node ${node})` : ''}` });
    }
  }
  return out;
}

/**
 * The VXLAN device cannot be created because another one (a leftover flannel.1) has its VNI and port: the kernel
 * allows one device per VNI, UDP port and address family in a network namespace. `device` names the other one.
 */
export class VniInUseError extends Error {
  override readonly name = 'VniInUseError';
  readonly code = 'NETPLANE_OVERLAY_VNI_IN_USE';
  /** The device that has the VNI and port. */
  readonly device: string;

  constructor(spec: DeviceSpec, other: LinkState, options?: ErrorOptions) {
    super(
      `cannot create ${spec.name}: device ${other.name} already has VXLAN VNI ${spec.vni} on port ${spec.port}, and the kernel allows one device per VNI and port; ` +
        `if it is Flannel's, stop flanneld and delete it (ip link delete ${other.name}), else give netplane another --vni or --port`,
      options,
    );
    this.device = other.name;
  }
}

/**
 * The overlay's device name is taken by an interface that is not a VXLAN device (a veth, a dummy, a NIC): netplane
 * never deletes it, and cannot make its device until it is renamed or deleted, or another --device is given.
 */
export class DeviceTakenError extends Error {
  override readonly name = 'DeviceTakenError';
  readonly code = 'NETPLANE_OVERLAY_DEVICE_TAKEN';
  /** The interface's name (the overlay's device name). */
  readonly device: string;
  /** Its kind (IFLA_INFO_KIND), or 'non-virtual' for a plain device. */
  readonly kind: string;

  constructor(link: LinkState) {
    const kind = link.kind ?? 'non-virtual';
    super(`the device name ${link.name} is taken by a ${kind} device, which netplane does not delete; rename or delete it (ip link delete ${link.name}), or give another --device (or --ipv6-device-name)`);
    this.device = link.name;
    this.kind = kind;
  }
}

async function applyLink(kernel: OverlayKernel, view: DeviceView, op: OverlayOp & { kind: 'link' }): Promise<LinkState | undefined> {
  // Only a VXLAN device is the overlay's to delete and make again: any other interface of that name is someone else's.
  if (op.op === 'delete' && view.link && view.link.kind !== 'vxlan') throw new DeviceTakenError(view.link);
  if (op.op === 'create') {
    const s = op.spec;
    try {
      return await kernel.createVxlan({ name: s.name, vni: s.vni, port: s.port, local: s.local, underlayIndex: s.underlayIndex, learning: false, mtu: s.mtu, mac: s.mac });
    } catch (e) {
      // EEXIST is also the answer for a VNI in use, where the kernel's own words ("A VXLAN device with the specified
      // VNI already exists") come only as an extended ACK, which the netlink package cannot ask for (it exposes no
      // setsockopt for NETLINK_EXT_ACK): find the device that has it.
      if (!isKernelError(e, 'EEXIST')) throw e;
      const other = (await kernel.links().catch(() => [])).find((l) => l.name !== s.name && vniClash(l, s));
      throw other ? new VniInUseError(s, other, { cause: e }) : e;
    }
  }
  const index = view.link?.index;
  if (index === undefined) throw new Error(`${opText(op)}: there is no device`);
  if (op.op === 'delete') await kernel.deleteLink(index);
  else await kernel.setLink(index, op.change);
  return undefined;
}

/** Whether a link is a VXLAN device the kernel would not let `spec` live beside: same VNI, port and address family. */
function vniClash(link: LinkState, spec: DeviceSpec): boolean {
  const x = link.vxlan;
  return link.kind === 'vxlan' && x !== undefined && x.vni === spec.vni && x.port === spec.port && isIPv6(x.local) === isIPv6(spec.local);
}

function applyEntry(kernel: OverlayKernel, index: number, op: OverlayOp): Promise<void> {
  switch (op.kind) {
    case 'address':
      return op.op === 'add' ? kernel.addAddress({ index, cidr: op.cidr }) : kernel.deleteAddress({ index, cidr: op.cidr });
    case 'neighbour': {
      const e = { index, ip: op.ip, mac: op.mac, permanent: true };
      return op.op === 'replace' ? kernel.replaceNeighbour(e) : kernel.deleteNeighbour(e);
    }
    case 'fdb': {
      const e = { index, mac: op.mac, dst: op.dst, permanent: true };
      return op.op === 'replace' ? kernel.replaceFdb(e) : kernel.deleteFdb(e);
    }
    case 'route': {
      const e = { index, dst: op.dst, gateway: op.gateway, onlink: op.onlink, ...(op.metric !== undefined ? { metric: op.metric } : {}) };
      return op.op === 'add' ? kernel.addRoute(e) : kernel.deleteRoute(e);
    }
    case 'direct': {
      // Not onlink: the kernel checks that the gateway is on a network of the interface, as the plan expects.
      const e = { index: op.index, dst: op.dst, gateway: op.gateway, onlink: false, protocol: directRouteProtocol };
      return op.op === 'add' ? kernel.addRoute(e) : kernel.deleteRoute(e);
    }
    case 'link':
      throw new Error(`${opText(op)}: link operations run alone`);
  }
}
