// Flannel's net-conf.json read as netplane overlay's flags (pure), then the agent started with Flannel's own command
// line (`--ip-masq --kube-subnet-mgr --net-config-path FILE`) on two nodes: the device gets the file's VNI, port and
// MTU, pods reach each other across it; a file that cannot be used ends the start in one sentence, exit code 2.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { overlayComponent } from '../../overlay/component.ts';
import { netConfSettings } from '../../overlay/net-conf.ts';
import { commonFlags } from '../../runtime/component.ts';
import { flagGiven, parseFlags } from '../../runtime/flags.ts';
import { UsageError } from '../../runtime/errors.ts';
import { buildOverlayTopology, type OverlayTopology } from './topology.ts';

const bin = fileURLToPath(new URL('../../bin/netplane.ts', import.meta.url));
/** kube-flannel.yml's net-conf.json. */
const flannelDefault = { Network: '10.244.0.0/16', EnableNFTables: false, Backend: { Type: 'vxlan' } };
const flat = (doc: object) => netConfSettings(doc, 'net-conf.json').settings.map((s) => `--${s.flag}${s.value === true ? '' : `=${s.value}`}`);

describe('netConfSettings', () => {
  it("reads kube-flannel.yml's file: the pod network, nothing else to say", () => {
    expect(netConfSettings(flannelDefault, 'net-conf.json')).toEqual({ settings: [{ flag: 'cluster-cidr', value: '10.244.0.0/16', from: 'net-conf.json: Network' }], notes: [] });
  });

  it('maps dual stack and the VXLAN settings, with keys in any case as flanneld reads them', () => {
    const doc = { network: '10.244.0.0/16', ipv6network: 'fd00:10:244::/56', enableIPv6: true, backend: { type: 'VXLAN', vni: 4096, port: 4789, mtu: 1400, directrouting: true } };
    expect(flat(doc)).toEqual(['--ipv6-device=auto', '--cluster-cidr=10.244.0.0/16,fd00:10:244::/56', '--vni=4096', '--port=4789', '--mtu=1400', '--direct-routing']);
    expect(flat({ EnableIPv4: false, EnableIPv6: true, IPv6Network: 'fd00:10:244::/56', Backend: { Type: 'vxlan', VNI: 0, Port: 0 } })).toEqual(['--ipv6-device=auto', '--cluster-cidr=fd00:10:244::/56']);
  });

  it('says what it does not do: allocation keys, GBP, learning, a MAC prefix, unknown keys', () => {
    const doc = { ...flannelDefault, SubnetLen: 24, SubnetMin: '10.244.10.0', Extra: 1, Backend: { Type: 'vxlan', GBP: true, Learning: true, MacPrefix: '0E:2A', Foo: 2 } };
    expect(netConfSettings(doc, 'net-conf.json').notes).toEqual([
      "net-conf.json: Extra: not a key of Flannel's network configuration; ignored",
      "net-conf.json: SubnetLen, SubnetMin: not used; each node's pod network is its Node's podCIDR, as with flanneld --kube-subnet-mgr",
      "net-conf.json: Backend.Foo: not a key of Flannel's VXLAN backend; ignored",
      'net-conf.json: Backend.GBP: VXLAN group policy is not supported; the device is built without it',
      'net-conf.json: Backend.Learning: the device is built without learning; its entries are programmed from the Nodes',
      "net-conf.json: Backend.MacPrefix: not used; the device's MAC is derived from this node's address",
    ]);
  });

  it.each<[string, object, string]>([
    ['another backend', { ...flannelDefault, Backend: { Type: 'host-gw' } }, `Backend.Type: "host-gw" is not netplane's: it builds VXLAN (with --direct-routing, Flannel's DirectRouting, for nodes on one network)`],
    ['no backend (udp)', { Network: '10.244.0.0/16' }, 'Backend: missing, which is Flannel\'s udp backend; netplane builds VXLAN: write "Backend": {"Type": "vxlan"}'],
    ['no network', { Backend: { Type: 'vxlan' } }, 'Network: missing, and EnableIPv4 is not false: the IPv4 pod network, such as 10.244.0.0/16'],
    ['an IPv6 Network', { ...flannelDefault, Network: 'fd00::/56' }, 'Network: "fd00::/56" is not an IPv4 CIDR such as 10.244.0.0/16'],
    ['IPv6 without its network', { ...flannelDefault, EnableIPv6: true }, 'IPv6Network: missing, and EnableIPv6 is true: the IPv6 pod network, such as fd00:10:244::/56'],
    ['no family', { ...flannelDefault, EnableIPv4: false }, 'EnableIPv4: false, and EnableIPv6 is not true: no pod network is left'],
    ['a string VNI', { ...flannelDefault, Backend: { Type: 'vxlan', VNI: '1' } }, 'Backend.VNI: must be a whole number'],
  ])('refuses %s in one sentence naming the key', (_what, doc, why) => {
    expect(() => netConfSettings(doc, 'net-conf.json')).toThrow(new UsageError(`netplane overlay: --net-config-path net-conf.json: ${why}`));
  });
});

describe("Flannel's command line", () => {
  it('with --kube-subnet-mgr writes subnet.env where flanneld does unless --subnet-file says otherwise', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'netplane-netconf-'));
    try {
      const file = join(dir, 'net-conf.json');
      await writeFile(file, JSON.stringify(flannelDefault));
      const specs = { ...commonFlags(overlayComponent.defaultAdmin), ...overlayComponent.flags };
      const settings = async (argv: string[]) => {
        const f = parseFlags('netplane overlay', specs, argv)!;
        return (await overlayComponent.settings!(f as never, (n) => flagGiven(f, n)))?.settings.map((s) => `${s.flag}=${s.value}`);
      };
      expect(await settings(['--ip-masq', '--kube-subnet-mgr', '--net-config-path', file])).toEqual(['cluster-cidr=10.244.0.0/16', 'subnet-file=/run/flannel/subnet.env']);
      expect(await settings(['--kube-subnet-mgr', '--net-config-path', file, '--subnet-file', join(dir, 's.env')])).toEqual(['cluster-cidr=10.244.0.0/16']);
      expect(await settings(['--net-config-path', file])).toEqual(['cluster-cidr=10.244.0.0/16']);
      expect(await settings([])).toBeUndefined();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("netplane overlay with Flannel's command line and net-conf.json (two nodes, in namespaces)", () => {
  let t: OverlayTopology;

  beforeAll(async () => {
    t = await buildOverlayTopology(2, 1, false, 4, `netconf${randomBytes(2).toString('hex')}`);
    await t.writeNodes();
  }, 60_000);
  afterAll(async () => {
    await t?.destroy();
  });

  it("builds the device the file describes, and the pods reach each other over it; the command line's --cluster-cidr wins", async () => {
    const file = join(t.dir, 'net-conf.json');
    await writeFile(file, JSON.stringify({ Network: '10.244.0.0/16', Backend: { Type: 'vxlan', VNI: 42, Port: 4789, MTU: 1400 } }));
    // --subnet-file given: with --kube-subnet-mgr it would be Flannel's /run/flannel/subnet.env, the host's own.
    for (const node of t.nodes) await t.startAgent(node, ['--ip-masq', '--kube-subnet-mgr', '--net-config-path', file, '--subnet-file', join(t.dir, `${node.name}-subnet.env`)]);
    for (const node of t.nodes) {
      const link = (JSON.parse(await t.sh(node.ns, 'ip', ['-d', '-j', 'link', 'show', 'netplane.1'])) as Array<{ mtu: number; linkinfo: { info_data: { id: number; port: number } } }>)[0]!;
      expect({ mtu: link.mtu, vni: link.linkinfo.info_data.id, port: link.linkinfo.info_data.port }).toEqual({ mtu: 1400, vni: 42, port: 4789 });
      expect(t.agents.get(node.name)!.logs.find((l) => l.level === 40)?.msg).toBe(`${file}: Network is overridden by --cluster-cidr on the command line`);
    }
    expect(await readFile(join(t.dir, 'node1-subnet.env'), 'utf8')).toMatch(/^FLANNEL_NETWORK=10\.244\.0\.0\/16\nFLANNEL_SUBNET=10\.244\.1\.1\/24\nFLANNEL_MTU=1400\n/);
    const [a, b] = [t.nodes[0]!.pods[0]!, t.nodes[1]!.pods[0]!];
    expect((await t.probe(a.ns, 'tcp', b.ip))[0]).toMatchObject({ ok: true });
    expect((await t.probe(b.ns, 'tcp', a.ip))[0]).toMatchObject({ ok: true });
  });

  it('refuses a file for another backend: exit code 2, one sentence, the device left as it was', async () => {
    const file = join(t.dir, 'host-gw.json');
    await writeFile(file, JSON.stringify({ Network: '10.244.0.0/16', Backend: { Type: 'host-gw' } }));
    const node = t.nodes[0]!;
    const before = await t.sh(node.ns, 'ip', ['-d', 'link', 'show', 'netplane.1']);
    const r = spawnSync('ip', ['netns', 'exec', node.ns, process.execPath, bin, 'overlay', '--kube-subnet-mgr', '--net-config-path', file, '--manifests', t.dir, '--node-name', node.name], { encoding: 'utf8', timeout: 15_000 });
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toEqual([`netplane overlay: --net-config-path ${file}: Backend.Type: "host-gw" is not netplane's: it builds VXLAN (with --direct-routing, Flannel's DirectRouting, for nodes on one network)`]);
    expect(await t.sh(node.ns, 'ip', ['-d', 'link', 'show', 'netplane.1'])).toBe(before);
  });
});
