// flanneld's command line read as netplane overlay's (pure): Flannel's DaemonSet line and Go's forms of it, what is
// warned of and what is refused (its etcd subnet manager); then the agent started on two nodes with a flanneld
// command line as Flannel's DaemonSet writes it, the pods reaching each other over the device it builds.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { overlayComponent as overlay } from '../../overlay/component.ts';
import { flanneldFlags } from '../../overlay/flanneld-flags.ts';
import { translateAnchorFlags } from '../../runtime/anchor-flags.ts';
import { commonFlags } from '../../runtime/component.ts';
import { UsageError } from '../../runtime/errors.ts';
import { parseFlags } from '../../runtime/flags.ts';
import { buildOverlayTopology, type OverlayTopology } from './topology.ts';

const bin = fileURLToPath(new URL('../../bin/netplane.ts', import.meta.url));
const specs = { ...commonFlags(overlay.defaultAdmin), ...overlay.flags };
const translate = (argv: string[]) => translateAnchorFlags('netplane overlay', specs, flanneldFlags, argv);

describe("flanneld's command line", () => {
  it.each<[string, string[], string[]]>([
    ["kube-flannel.yml's", ['--ip-masq', '--kube-subnet-mgr'], ['--ip-masq', '--kube-subnet-mgr']],
    ['with an interface and klog verbosity', ['--ip-masq', '--kube-subnet-mgr', '--iface=eth1', '--v=2'], ['--ip-masq', '--kube-subnet-mgr', '--iface=eth1', '--log-level=info']],
    ["in Go's one-dash forms", ['-ip-masq', '-kube-subnet-mgr=true', '-iface', 'eth1', '-iface', '192.168.60.1', '-iface-regex=^ens', '-v', '5'], ['--ip-masq', '--kube-subnet-mgr', '--iface=eth1', '--iface=192.168.60.1', '--iface-regex=^ens', '--log-level=debug']],
    ['its kubeconfig, resync period and files', ['--kube-subnet-mgr', '--kubeconfig-file=/etc/kube-flannel/kubeconfig', '--iptables-resync=10', '--net-config-path', '/etc/kube-flannel/net-conf.json', '--subnet-file=/run/flannel/subnet.env'], ['--kube-subnet-mgr', '--kubeconfig=/etc/kube-flannel/kubeconfig', '--resync-period=10s', '--net-config-path=/etc/kube-flannel/net-conf.json', '--subnet-file=/run/flannel/subnet.env']],
    ['its /healthz port on its IP', ['--kube-subnet-mgr', '--healthz-ip=127.0.0.1', '--healthz-port=10300'], ['--kube-subnet-mgr', '--admin=127.0.0.1:10300']],
    ['its /healthz port alone, on every address as flanneld', ['--kube-subnet-mgr', '--healthz-port', '10300'], ['--kube-subnet-mgr', '--admin=0.0.0.0:10300']],
    ['its addresses for other nodes', ['--kube-subnet-mgr', '--public-ip=192.168.60.1', '--public-ipv6=fd00:60::1', '--iface-can-reach=192.168.60.100'], ['--kube-subnet-mgr', '--public-ip=192.168.60.1', '--public-ipv6=fd00:60::1', '--iface-can-reach=192.168.60.100']],
    ['the Node condition as a Go boolean', ['--kube-subnet-mgr', '--set-node-network-unavailable=False'], ['--kube-subnet-mgr', '--set-node-network-unavailable=false']],
    ['the Node condition as a bare Go boolean', ['--set-node-network-unavailable', '--kube-subnet-mgr'], ['--set-node-network-unavailable=true', '--kube-subnet-mgr']],
    ["the Node condition as netplane's value", ['--set-node-network-unavailable', 'false'], ['--set-node-network-unavailable=false']],
    ["what netplane does anyway asks for nothing: flanneld's defaults", ['--kube-subnet-mgr', '--iptables-forward-rules=true', '--kube-annotation-prefix=flannel.alpha.coreos.com', '--healthz-port=0', '--healthz-ip=0.0.0.0'], ['--kube-subnet-mgr']],
  ])('%s', (_what, argv, want) => {
    const got = translate(argv);
    expect(got.argv).toEqual(want);
    expect(parseFlags('netplane overlay', specs, got.argv)).not.toBeNull();
  });

  it('warns of what netplane does not do, naming the flag and why', () => {
    const argv = ['--kube-subnet-mgr', '--etcd-endpoints=http://127.0.0.1:2379', '--etcd-prefix=/coreos.com/network', '--kube-api-url=https://10.96.0.1', '--persistent-mac', '-vmodule=main=4', '--healthz-ip=10.0.0.1'];
    expect(translate(argv).notes).toEqual([
      `flanneld's --etcd-endpoints "http://127.0.0.1:2379": only flanneld's etcd subnet manager reads it, and with --kube-subnet-mgr flanneld ignores it too; ignored`,
      `flanneld's --etcd-prefix "/coreos.com/network": only flanneld's etcd subnet manager reads it, and with --kube-subnet-mgr flanneld ignores it too; ignored`,
      `flanneld's --kube-api-url "https://10.96.0.1": netplane talks to the API server its kubeconfig names (--kubeconfig, else $KUBECONFIG, else in-cluster); ignored`,
      "flanneld's --persistent-mac: netplane derives the VXLAN device's MAC from this node's address, so it stays the same across reboots anyway; ignored",
      `flanneld's -vmodule "main=4": netplane writes its logs as JSON lines on stdout (--log-level says how many); ignored`,
      `flanneld's --healthz-ip "10.0.0.1": without --healthz-port, flanneld serves no /healthz; ignored`,
    ]);
  });

  const etcdMode = "flanneld's etcd subnet manager, which runs without --kube-subnet-mgr, and netplane overlay takes each node's pod network from its Node's podCIDR, as flanneld --kube-subnet-mgr does; give --kube-subnet-mgr";
  it.each<[string, string[], string]>([
    ['its etcd subnet manager', ['--ip-masq', '--etcd-endpoints=http://10.0.0.5:2379', '--etcd-prefix=/coreos.com/network'], `--etcd-endpoints "http://10.0.0.5:2379": it is for ${etcdMode}`],
    ['its etcd subnet manager, one dash', ['-etcd-endpoints', 'http://10.0.0.5:2379', '-iface', 'eth0'], `-etcd-endpoints "http://10.0.0.5:2379": it is for ${etcdMode}`],
    ['--kube-subnet-mgr=false', ['--kube-subnet-mgr=false'], `--kube-subnet-mgr "false": flanneld then takes each node's subnet from etcd, and netplane overlay takes each node's pod network from its Node's podCIDR, as flanneld --kube-subnet-mgr does; give --kube-subnet-mgr`],
    ['--ip-masq=false', ['--kube-subnet-mgr', '--ip-masq=false'], '--ip-masq "false": netplane overlay always masquerades pod traffic that leaves the pod network, and cannot leave it as it is; leave --ip-masq=false out'],
    ['--iptables-forward-rules=false', ['--kube-subnet-mgr', '--iptables-forward-rules=false'], `--iptables-forward-rules "false": netplane overlay accepts pod traffic in FORWARD wherever the host's firewall could drop it (its chain NETPLANE-OVERLAY-FWD, as Flannel's FLANNEL-FWD), and cannot leave FORWARD alone`],
    ['another annotation prefix', ['--kube-subnet-mgr', '--kube-annotation-prefix=example.com/flannel'], `--kube-annotation-prefix "example.com/flannel": netplane overlay reads Flannel's annotations under flannel.alpha.coreos.com only (and writes them there with --flannel-annotations), so Flannel nodes annotated under another prefix would not be reached`],
    ['a resync period that is none', ['--iptables-resync=0'], '--iptables-resync "0": must be a whole number of seconds, at least 1'],
    ['an interface name the kernel cannot have', ['-iface', 'a/b'], '-iface "a/b": must be an IP address or an interface name of 1 to 15 characters without "/", ":" or spaces'],
    ['the admin address in both spellings', ['--healthz-port=10300', '--admin', '127.0.0.1:10247'], "--admin is given twice (flanneld's --healthz-port, --admin); give it once"],
  ])('refuses %s: one sentence', (_what, argv, why) => {
    expect(() => translate(argv)).toThrow(new UsageError(`netplane overlay: ${why}`));
  });
});

describe('netplane overlay started with a Flannel DaemonSet command line (two nodes, in namespaces)', () => {
  let t: OverlayTopology;

  beforeAll(async () => {
    t = await buildOverlayTopology(2, 1, false, 4, `fdf${randomBytes(2).toString('hex')}`);
    await t.writeNodes();
  }, 60_000);
  afterAll(async () => {
    await t?.destroy();
  });

  it("builds the device on the interface it names, logs at its -v, warns of what it ignores, and the pods reach each other", async () => {
    const file = join(t.dir, 'net-conf.json');
    await writeFile(file, JSON.stringify({ Network: '10.244.0.0/16', Backend: { Type: 'vxlan', VNI: 7 } }));
    for (const node of t.nodes) {
      // flanneld's flags as a DaemonSet writes them, with Go's one-dash forms; --subnet-file kept off the host's /run/flannel.
      await t.startAgent(node, ['--ip-masq', '--kube-subnet-mgr', '-iface', 'eth0', '-v=2', '--net-config-path', file, '--subnet-file', join(t.dir, `${node.name}-subnet.env`), '--etcd-prefix=/coreos.com/network', '--iptables-resync=5']);
    }
    for (const node of t.nodes) {
      const logs = t.agents.get(node.name)!.logs;
      expect(logs.find((l) => l.msg === 'overlay running')).toMatchObject({ iface: ['eth0'], vni: 7 });
      expect(logs.filter((l) => l.level === 40).map((l) => l.msg)).toEqual(expect.arrayContaining([
        `flanneld's --etcd-prefix "/coreos.com/network": only flanneld's etcd subnet manager reads it, and with --kube-subnet-mgr flanneld ignores it too; ignored`,
      ]));
      // -v=2 is info: nothing below it is logged.
      expect(logs.every((l) => l.stderr || (l.level as number) >= 30)).toBe(true);
    }
    const [a, b] = [t.nodes[0]!.pods[0]!, t.nodes[1]!.pods[0]!];
    expect((await t.probe(a.ns, 'tcp', b.ip))[0]).toMatchObject({ ok: true });
    expect((await t.probe(b.ns, 'tcp', a.ip))[0]).toMatchObject({ ok: true });
  });

  it("refuses flanneld's etcd subnet manager: exit code 2, one sentence, the device left as it was", async () => {
    const node = t.nodes[0]!;
    await t.stopAgent(node, 'SIGTERM');
    const before = await t.sh(node.ns, 'ip', ['-d', 'link', 'show', 'netplane.1']);
    const r = spawnSync('ip', ['netns', 'exec', node.ns, process.execPath, bin, 'overlay', '--etcd-endpoints=http://192.168.60.100:2379', '--ip-masq', '--iface=eth0', '--manifests', t.dir, '--node-name', node.name], { encoding: 'utf8', timeout: 15_000 });
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toEqual([
      `netplane overlay: --etcd-endpoints "http://192.168.60.100:2379": it is for flanneld's etcd subnet manager, which runs without --kube-subnet-mgr, and netplane overlay takes each node's pod network from its Node's podCIDR, as flanneld --kube-subnet-mgr does; give --kube-subnet-mgr`,
    ]);
    expect(await t.sh(node.ns, 'ip', ['-d', 'link', 'show', 'netplane.1'])).toBe(before);
  });
});
