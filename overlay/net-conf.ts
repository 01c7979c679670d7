// Flannel's network configuration (net-conf.json, what the kube-flannel-cfg ConfigMap holds) read as netplane
// overlay's flags, so that Flannel's DaemonSet command line (`--ip-masq --kube-subnet-mgr`, the file at Flannel's
// path) works as it is. Keys are matched without regard to case, as Go's encoding/json matches them for flanneld.
// What netplane does not do is said in a note (a warning at start); a value that cannot be used is a usage error
// naming the key.
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { UsageError } from '../runtime/errors.ts';
import type { FileSettings, Setting } from '../runtime/settings.ts';

/** Where flanneld reads it with --kube-subnet-mgr when --net-config-path is not given. */
export const flannelNetConfPath = '/etc/kube-flannel/net-conf.json';

/** Where flanneld writes subnet.env for the flannel CNI plugin unless told otherwise. */
export const flannelSubnetFile = '/run/flannel/subnet.env';

type Fields = Record<string, unknown>;

// Keys flanneld reads from the file with its Kubernetes subnet manager, besides those mapped to flags: the subnet
// allocation ones only matter to its etcd subnet manager (with Kubernetes, each Node's podCIDR is its subnet).
const allocation = ['subnetlen', 'subnetmin', 'subnetmax', 'ipv6subnetlen', 'ipv6subnetmin', 'ipv6subnetmax'];
const knownTop = ['network', 'ipv6network', 'enableipv4', 'enableipv6', 'enablenftables', 'backend', ...allocation];
const knownBackend = ['type', 'vni', 'port', 'mtu', 'directrouting', 'gbp', 'learning', 'macprefix'];

/** Reads FILE and returns its settings; a file that cannot be read or used is a UsageError. */
export async function readNetConf(file: string): Promise<FileSettings> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new UsageError(`netplane overlay: --net-config-path ${JSON.stringify(file)}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { cause: e });
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`netplane overlay: --net-config-path ${JSON.stringify(file)}: not JSON: ${(e as Error).message}`, { cause: e });
  }
  return netConfSettings(doc, file);
}

/** The settings of a parsed net-conf.json. Pure. Throws UsageError naming the key that cannot be used. */
export function netConfSettings(doc: unknown, file: string): FileSettings {
  const fail = (key: string, why: string) => new UsageError(`netplane overlay: --net-config-path ${file}: ${key}: ${why}`);
  if (!isFields(doc)) throw new UsageError(`netplane overlay: --net-config-path ${file}: not Flannel's network configuration (a JSON object)`);
  const settings: Setting[] = [];
  const notes: string[] = [];
  const at = (key: string) => `${file}: ${key}`;
  const set = (key: string, flag: string, value: string | true) => settings.push({ flag, value, from: at(key) });
  const top = fold(doc);
  for (const [key, name] of top.names) if (!knownTop.includes(key)) notes.push(`${at(name)}: not a key of Flannel's network configuration; ignored`);

  const enable4 = bool(top, 'EnableIPv4', fail) ?? true;
  const enable6 = bool(top, 'EnableIPv6', fail) ?? false;
  const cidrs: string[] = [];
  if (enable4) {
    const net = cidr(top, 'Network', 4, fail);
    if (net === undefined) throw fail('Network', 'missing, and EnableIPv4 is not false: the IPv4 pod network, such as 10.244.0.0/16');
    cidrs.push(net);
  }
  if (enable6) {
    const net = cidr(top, 'IPv6Network', 6, fail);
    if (net === undefined) throw fail('IPv6Network', 'missing, and EnableIPv6 is true: the IPv6 pod network, such as fd00:10:244::/56');
    cidrs.push(net);
    // Flannel's second device over an IPv4 underlay; over an IPv6 underlay the one device carries IPv6 pods anyway.
    set('EnableIPv6', 'ipv6-device', 'auto');
  }
  if (cidrs.length === 0) throw fail('EnableIPv4', 'false, and EnableIPv6 is not true: no pod network is left');
  set(enable4 && enable6 ? 'Network, IPv6Network' : enable4 ? 'Network' : 'IPv6Network', 'cluster-cidr', cidrs.join(','));
  const given = allocation.filter((k) => top.values.has(k)).map((k) => top.names.get(k)!);
  if (given.length > 0) notes.push(`${at(given.join(', '))}: not used; each node's pod network is its Node's podCIDR, as with flanneld --kube-subnet-mgr`);

  const backendValue = top.values.get('backend');
  if (backendValue === undefined) throw fail('Backend', "missing, which is Flannel's udp backend; netplane builds VXLAN: write \"Backend\": {\"Type\": \"vxlan\"}");
  if (!isFields(backendValue)) throw fail('Backend', 'must be an object such as {"Type": "vxlan"}');
  const backend = fold(backendValue);
  const type = str(backend, 'Type', (k, why) => fail(`Backend.${k}`, why)) ?? '';
  if (type.toLowerCase() !== 'vxlan') {
    throw fail('Backend.Type', `${JSON.stringify(type)} is not netplane's: it builds VXLAN (with --direct-routing, Flannel's DirectRouting, for nodes on one network)`);
  }
  for (const [key, name] of backend.names) if (!knownBackend.includes(key)) notes.push(`${at(`Backend.${name}`)}: not a key of Flannel's VXLAN backend; ignored`);
  const bfail = (k: string, why: string) => fail(`Backend.${k}`, why);
  const vni = int(backend, 'VNI', bfail);
  if (vni !== undefined && vni !== 0) set('Backend.VNI', 'vni', String(vni));
  const port = int(backend, 'Port', bfail);
  if (port !== undefined && port !== 0) set('Backend.Port', 'port', String(port));
  const mtu = int(backend, 'MTU', bfail);
  if (mtu !== undefined && mtu !== 0) set('Backend.MTU', 'mtu', String(mtu));
  if (bool(backend, 'DirectRouting', bfail) === true) set('Backend.DirectRouting', 'direct-routing', true);
  if (bool(backend, 'GBP', bfail) === true) notes.push(`${at('Backend.GBP')}: VXLAN group policy is not supported; the device is built without it`);
  if (bool(backend, 'Learning', bfail) === true) notes.push(`${at('Backend.Learning')}: the device is built without learning; its entries are programmed from the Nodes`);
  const prefix = str(backend, 'MacPrefix', bfail);
  if (prefix) notes.push(`${at('Backend.MacPrefix')}: not used; the device's MAC is derived from this node's address`);
  return { settings, notes };
}

function isFields(v: unknown): v is Fields {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** An object's keys lower-cased (Go's encoding/json matches them so), with the names as written. */
function fold(o: Fields): { values: Map<string, unknown>; names: Map<string, string> } {
  const values = new Map<string, unknown>();
  const names = new Map<string, string>();
  for (const [k, v] of Object.entries(o)) {
    values.set(k.toLowerCase(), v);
    names.set(k.toLowerCase(), k);
  }
  return { values, names };
}

type Folded = ReturnType<typeof fold>;
type Fail = (key: string, why: string) => Error;

function value(o: Folded, key: string): unknown {
  return o.values.get(key.toLowerCase()) ?? undefined;
}

function str(o: Folded, key: string, fail: Fail): string | undefined {
  const v = value(o, key);
  if (v !== undefined && typeof v !== 'string') throw fail(key, 'must be a string');
  return v;
}

function bool(o: Folded, key: string, fail: Fail): boolean | undefined {
  const v = value(o, key);
  if (v !== undefined && typeof v !== 'boolean') throw fail(key, 'must be true or false');
  return v;
}

function int(o: Folded, key: string, fail: Fail): number | undefined {
  const v = value(o, key);
  if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v))) throw fail(key, 'must be a whole number');
  return v;
}

/** A CIDR of one family, as Flannel's IP4Net and IP6Net read it; the flag's parser checks it further. */
function cidr(o: Folded, key: string, family: 4 | 6, fail: Fail): string | undefined {
  const v = str(o, key, fail);
  if (v === undefined || v === '') return undefined;
  const addr = v.split('/')[0]!;
  if (isIP(addr) !== family) throw fail(key, `${JSON.stringify(v)} is not an IPv${family} CIDR such as ${family === 4 ? '10.244.0.0/16' : 'fd00:10:244::/56'}`);
  return v;
}
