// Flannel's network configuration (net-conf.json, what the kube-flannel-cfg ConfigMap holds) read as netplane
// overlay's flags, so that Flannel's DaemonSet command line (`--ip-masq --kube-subnet-mgr`, the file at Flannel's
// path) works as it is. Keys are matched without regard to case, as Go's encoding/json matches them for flanneld.
// What netplane does not do is said in a note (a warning at start); a value that cannot be used is a usage error
// naming the key.
import { isIP } from 'node:net';
import { UsageError } from '../runtime/errors.ts';
import { isMapping, readSettingsFile, typedReader, type FileSettings, type Setting } from '../runtime/settings.ts';

/** Where flanneld reads it with --kube-subnet-mgr when --net-config-path is not given. */
export const flannelNetConfPath = '/etc/kube-flannel/net-conf.json';

/** Where flanneld writes subnet.env for the flannel CNI plugin unless told otherwise. */
export const flannelSubnetFile = '/run/flannel/subnet.env';


// Keys flanneld reads from the file with its Kubernetes subnet manager, besides those mapped to flags: the subnet
// allocation ones only matter to its etcd subnet manager (with Kubernetes, each Node's podCIDR is its subnet).
const allocation = ['subnetlen', 'subnetmin', 'subnetmax', 'ipv6subnetlen', 'ipv6subnetmin', 'ipv6subnetmax'];
const knownTop = ['network', 'ipv6network', 'enableipv4', 'enableipv6', 'enablenftables', 'backend', ...allocation];
const knownBackend = ['type', 'vni', 'port', 'mtu', 'directrouting', 'gbp', 'learning', 'macprefix'];

/** Reads FILE and returns its settings; a file that cannot be read or used is a UsageError. */
export async function readNetConf(file: string): Promise<FileSettings> {
  const text = await readSettingsFile('netplane overlay', 'net-config-path', file);
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
  if (!isMapping(doc)) throw new UsageError(`netplane overlay: --net-config-path ${file}: not Flannel's network configuration (a JSON object)`);
  const settings: Setting[] = [];
  const notes: string[] = [];
  const at = (key: string) => `${file}: ${key}`;
  const set = (key: string, flag: string, value: string | true) => settings.push({ flag, value, from: at(key) });
  const top = fold(doc);
  const read = typedReader((k) => top.values.get(k.toLowerCase()), fail);
  for (const [key, name] of top.names) if (!knownTop.includes(key)) notes.push(`${at(name)}: not a key of Flannel's network configuration; ignored`);

  const enable4 = read.bool('EnableIPv4') ?? true;
  const enable6 = read.bool('EnableIPv6') ?? false;
  const cidrs: string[] = [];
  if (enable4) {
    const net = cidr(read.string('Network'), 'Network', 4, fail);
    if (net === undefined) throw fail('Network', 'missing, and EnableIPv4 is not false: the IPv4 pod network, such as 10.244.0.0/16');
    cidrs.push(net);
  }
  if (enable6) {
    const net = cidr(read.string('IPv6Network'), 'IPv6Network', 6, fail);
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
  if (!isMapping(backendValue)) throw fail('Backend', 'must be an object such as {"Type": "vxlan"}');
  const backend = fold(backendValue);
  const b = typedReader((k) => backend.values.get(k.toLowerCase()), (k, why) => fail(`Backend.${k}`, why));
  const type = b.string('Type') ?? '';
  if (type.toLowerCase() !== 'vxlan') {
    throw fail('Backend.Type', `${JSON.stringify(type)} is not netplane's: it builds VXLAN (with --direct-routing, Flannel's DirectRouting, for nodes on one network)`);
  }
  for (const [key, name] of backend.names) if (!knownBackend.includes(key)) notes.push(`${at(`Backend.${name}`)}: not a key of Flannel's VXLAN backend; ignored`);
  const vni = b.int('VNI');
  if (vni !== undefined && vni !== 0) set('Backend.VNI', 'vni', String(vni));
  const port = b.int('Port');
  if (port !== undefined && port !== 0) set('Backend.Port', 'port', String(port));
  const mtu = b.int('MTU');
  if (mtu !== undefined && mtu !== 0) set('Backend.MTU', 'mtu', String(mtu));
  if (b.bool('DirectRouting') === true) set('Backend.DirectRouting', 'direct-routing', true);
  if (b.bool('GBP') === true) notes.push(`${at('Backend.GBP')}: VXLAN group policy is not supported; the device is built without it`);
  if (b.bool('Learning') === true) notes.push(`${at('Backend.Learning')}: the device is built without learning; its entries are programmed from the Nodes`);
  const prefix = b.string('MacPrefix');
  if (prefix) notes.push(`${at('Backend.MacPrefix')}: not used; the device's MAC is derived from this node's address`);
  return { settings, notes };
}

/** An object's keys lower-cased (Go's encoding/json matches them so), with the names as written. */
function fold(o: Record<string, unknown>): { values: Map<string, unknown>; names: Map<string, string> } {
  const values = new Map<string, unknown>();
  const names = new Map<string, string>();
  for (const [k, v] of Object.entries(o)) {
    values.set(k.toLowerCase(), v);
    names.set(k.toLowerCase(), k);
  }
  return { values, names };
}

type Fail = (key: string, why: string) => Error;

/** A CIDR of one family, as Flannel's IP4Net and IP6Net read it; the flag's parser checks it further. */
function cidr(v: string | undefined, key: string, family: 4 | 6, fail: Fail): string | undefined {
  if (v === undefined || v === '') return undefined;
  const addr = v.split('/')[0]!;
  if (isIP(addr) !== family) throw fail(key, `${JSON.stringify(v)} is not an IPv${family} CIDR such as ${family === 4 ? '10.244.0.0/16' : 'fd00:10:244::/56'}`);
  return v;
}
