// A node namespace's overlay entries as sorted lines, for tests that compare them: direct routes (protocol 110) and
// the VXLAN device's permanent neighbour entries, FDB entries and routes via a gateway.
import type { NetnsLab } from '../../lab/netns.ts';

type Route = { dst: string; gateway?: string; dev: string };

/** `ns`'s direct routes and the entries on `device` (none when the device is missing), as sorted lines. */
export async function overlayEntries(lab: NetnsLab, ns: string, device = 'netplane.1'): Promise<string[]> {
  const json = async <T>(args: string[]): Promise<T[]> => JSON.parse((await lab.exec(ns, args[0]!, ['-j', ...args.slice(1)])).stdout || '[]') as T[];
  const routes = await json<Route>(['ip', 'route', 'show', 'proto', '110']);
  const hasDevice = await lab.exec(ns, 'ip', ['link', 'show', device]).then(() => true, () => false);
  const neigh = hasDevice ? await json<{ dst: string; lladdr: string }>(['ip', 'neigh', 'show', 'dev', device, 'nud', 'permanent']) : [];
  const fdb = hasDevice ? await json<{ mac: string; dst: string }>(['bridge', 'fdb', 'show', 'dev', device]) : [];
  const onDevice = hasDevice ? (await json<Route>(['ip', 'route', 'show', 'dev', device])).filter((r) => r.gateway) : [];
  return [
    ...routes.map((r) => `direct ${r.dst} via ${r.gateway} dev ${r.dev}`),
    ...neigh.map((n) => `neigh ${n.dst} ${n.lladdr}`),
    ...fdb.filter((f) => f.dst).map((f) => `fdb ${f.mac} ${f.dst}`),
    ...onDevice.map((r) => `route ${r.dst} via ${r.gateway}`),
  ].sort();
}
