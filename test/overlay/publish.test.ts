// Kubernetes mode: the agent's VTEP annotations reach its Node through the real client and the test API server,
// once per change, restored when someone else overwrites them, and retried while the Node is missing.
import { isIPv4, isIPv6 } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadKubeConfig } from '../../cluster/kubernetes/config.ts';
import { KubernetesSource } from '../../cluster/kubernetes/source.ts';
import { Store } from '../../cluster/store.ts';
import { annotationsFor, kubernetesPatcher, VtepPublisher, type PatchAnnotations } from '../../overlay/publish.ts';
import { TestApiServer } from '../apiserver/server.ts';
import { captureLogger, waitFor } from '../helpers/wait.ts';
import { rawNode } from './fixtures.ts';

describe('VtepPublisher against the API server', () => {
  let api: TestApiServer;
  let source: KubernetesSource;
  let store: Store;
  let publisher: VtepPublisher;
  let patches: Array<Record<string, string | null>>;
  let records: Array<Record<string, unknown>>;

  beforeEach(async () => {
    api = await TestApiServer.start();
    const kc = loadKubeConfig(await api.kubeconfigPath());
    const captured = captureLogger();
    records = captured.records;
    store = new Store(['Node']);
    source = new KubernetesSource(kc, { log: captured.log, initialBackoffMs: 50, maxBackoffMs: 200 });
    const real = await kubernetesPatcher(kc);
    patches = [];
    const patch: PatchAnnotations = async (name, annotations) => {
      patches.push(annotations);
      await real(name, annotations);
    };
    publisher = new VtepPublisher({
      nodeName: 'node1',
      patch,
      current: () => store.get('Node', 'node1')?.metadata.annotations,
      log: captured.log,
      retryBaseMs: 20,
      retryMaxMs: 50,
    });
  });
  afterEach(async () => {
    publisher.stop();
    await source.stop();
    await api.close();
  });

  const annotations = () => store.get('Node', 'node1')?.metadata.annotations ?? {};
  const vtep = { mac: '0a:00:00:00:00:01', ip: '192.168.60.1' };
  const published = { 'netplane.io/vtep-mac': vtep.mac, 'netplane.io/public-ip': vtep.ip };

  it('patches the annotations once, keeps the others, and restores them when overwritten', async () => {
    api.apply(rawNode('node1', { podCIDRs: ['10.244.1.0/24'], ip: '192.168.60.1', annotations: { keep: 'me' } }));
    await source.start(store);
    publisher.publish(vtep);
    publisher.publish(vtep);
    await publisher.settled();
    await waitFor('the annotations in the view', () => annotations()['netplane.io/vtep-mac'] === vtep.mac);
    expect(annotations()).toEqual({ keep: 'me', ...published });
    publisher.publish(vtep);
    await publisher.settled();
    expect(patches).toEqual([published]);

    api.apply(rawNode('node1', { podCIDRs: ['10.244.1.0/24'], ip: '192.168.60.1', annotations: { keep: 'me', 'netplane.io/vtep-mac': '0a:00:00:00:00:99' } }));
    await waitFor('the overwrite in the view', () => annotations()['netplane.io/vtep-mac'] === '0a:00:00:00:00:99');
    publisher.publish(vtep);
    await publisher.settled();
    await waitFor('the annotations restored', () => annotations()['netplane.io/vtep-mac'] === vtep.mac);
    expect(patches).toHaveLength(2);
  });

  it('writes through the nodes/status subresource, the only patch the node agent is granted (as Flannel writes its annotations), and leaves spec and status alone', async () => {
    api.apply(rawNode('node1', { podCIDRs: ['10.244.1.0/24'], ip: '192.168.60.1' }));
    await source.start(store);
    publisher.publish(vtep);
    await publisher.settled();
    await waitFor('the annotations in the view', () => annotations()['netplane.io/vtep-mac'] === vtep.mac);
    expect(api.requests.filter((r) => r.method !== 'GET').map((r) => `${r.method} ${r.path}`)).toEqual(['PATCH /api/v1/nodes/node1/status']);
    const stored = (await (await fetch(`${api.url}/api/v1/nodes/node1`)).json()) as Record<string, any>;
    expect(stored.metadata.annotations).toEqual(published);
    expect({ spec: stored.spec, status: stored.status }).toEqual({ spec: { podCIDRs: ['10.244.1.0/24'] }, status: { addresses: [{ type: 'InternalIP', address: '192.168.60.1' }] } });
  });

  it('retries while the Node does not exist yet, and publishes the latest value', async () => {
    await source.start(store);
    publisher.publish(vtep);
    await waitFor('a failed patch', () => records.some((r) => r.msg === "cannot publish this node's VTEP annotations; other nodes use the address and a MAC derived from it meanwhile"));
    const moved = { mac: vtep.mac, ip: '192.168.60.11' };
    publisher.publish(moved);
    api.apply(rawNode('node1', { podCIDRs: ['10.244.1.0/24'], ip: '192.168.60.11' }));
    await waitFor('the annotations in the view', () => annotations()['netplane.io/public-ip'] === moved.ip, 5000);
    expect(annotations()).toEqual({ 'netplane.io/vtep-mac': vtep.mac, 'netplane.io/public-ip': moved.ip });
  });

  it("also publishes Flannel's annotations with --flannel-annotations, and keeps them when a Flannel agent rewrites them", async () => {
    publisher.stop();
    const flannelled = new VtepPublisher({ nodeName: 'node1', patch: await kubernetesPatcher(loadKubeConfig(await api.kubeconfigPath())), current: () => store.get('Node', 'node1')?.metadata.annotations, log: captureLogger().log, flannelVni: 1, retryBaseMs: 20, retryMaxMs: 50 });
    api.apply(rawNode('node1', { podCIDRs: ['10.244.1.0/24'], ip: '192.168.60.1' }));
    await source.start(store);
    flannelled.publish(vtep);
    await flannelled.settled();
    const want = {
      ...published,
      'flannel.alpha.coreos.com/backend-type': 'vxlan',
      'flannel.alpha.coreos.com/backend-data': '{"VNI":1,"VtepMAC":"0a:00:00:00:00:01"}',
      'flannel.alpha.coreos.com/kube-subnet-manager': 'true',
      'flannel.alpha.coreos.com/public-ip': '192.168.60.1',
    };
    await waitFor('the annotations in the view', () => annotations()['flannel.alpha.coreos.com/public-ip'] === vtep.ip);
    expect(annotations()).toEqual(want);
    api.apply(rawNode('node1', { podCIDRs: ['10.244.1.0/24'], ip: '192.168.60.1', annotations: { ...want, 'flannel.alpha.coreos.com/backend-data': '{"VNI":1,"VtepMAC":"0a:00:00:00:00:99"}' } }));
    await waitFor('the overwrite in the view', () => annotations()['flannel.alpha.coreos.com/backend-data']!.includes(':99'));
    flannelled.publish(vtep);
    await flannelled.settled();
    await waitFor('the annotations restored', () => annotations()['flannel.alpha.coreos.com/backend-data'] === want['flannel.alpha.coreos.com/backend-data']);
    flannelled.stop();
  });

  it("publishes Flannel's IPv6 annotations for a dual-stack node too, so a dual-stack Flannel node accepts it", async () => {
    publisher.stop();
    const flannelled = new VtepPublisher({ nodeName: 'node1', patch: await kubernetesPatcher(loadKubeConfig(await api.kubeconfigPath())), current: () => store.get('Node', 'node1')?.metadata.annotations, log: captureLogger().log, flannelVni: 1, retryBaseMs: 20, retryMaxMs: 50 });
    api.apply(rawNode('node1', { podCIDRs: ['10.244.1.0/24', 'fd00:244:1::/64'], ip: '192.168.60.1' }));
    await source.start(store);
    flannelled.publish({ ...vtep, ip4: vtep.ip, ip6: 'fd00:60::1' });
    await flannelled.settled();
    await waitFor('the annotations in the view', () => annotations()['flannel.alpha.coreos.com/public-ipv6'] !== undefined);
    expect(annotations()).toMatchObject({
      'flannel.alpha.coreos.com/backend-v6-data': '{"VNI":1,"VtepMAC":"0a:00:00:00:00:01"}',
      'flannel.alpha.coreos.com/public-ipv6': 'fd00:60::1',
      'flannel.alpha.coreos.com/public-ip': '192.168.60.1',
    });
    const n = (await (await fetch(`${api.url}/api/v1/nodes/node1`)).json()) as Parameters<typeof flannelNodeToLease>[0];
    expect(flannelNodeToLease(n, { ipv4: true, ipv6: true })).toEqual({ publicIP: '192.168.60.1', publicIPv6: 'fd00:60::1', subnet: '10.244.1.0/24', ipv6Subnet: 'fd00:244:1::/64' });
    flannelled.stop();
  });

  it("publishes the IPv6 device's MAC and address (netplane's and Flannel's backend-v6-data), and removes netplane's when the device goes", async () => {
    publisher.stop();
    const patched: Array<Record<string, string | null>> = [];
    const real = await kubernetesPatcher(loadKubeConfig(await api.kubeconfigPath()));
    const flannelled = new VtepPublisher({
      nodeName: 'node1', current: () => store.get('Node', 'node1')?.metadata.annotations, log: captureLogger().log, flannelVni: 1, retryBaseMs: 20, retryMaxMs: 50,
      patch: async (name, a) => {
        patched.push(a);
        await real(name, a);
      },
    });
    api.apply(rawNode('node1', { podCIDRs: ['10.244.1.0/24', 'fd00:244:1::/64'], ip: '192.168.60.1' }));
    await source.start(store);
    const v6 = { mac: '0a:00:00:00:06:01', ip: 'fd00:60::1' };
    flannelled.publish({ ...vtep, ip4: vtep.ip, ip6: v6.ip, v6 });
    await flannelled.settled();
    await waitFor('the annotations in the view', () => annotations()['netplane.io/vtep-v6-mac'] !== undefined);
    expect(annotations()).toMatchObject({
      'netplane.io/vtep-mac': vtep.mac,
      'netplane.io/vtep-v6-mac': v6.mac,
      'netplane.io/public-ipv6': v6.ip,
      'flannel.alpha.coreos.com/backend-data': '{"VNI":1,"VtepMAC":"0a:00:00:00:00:01"}',
      'flannel.alpha.coreos.com/backend-v6-data': '{"VNI":1,"VtepMAC":"0a:00:00:00:06:01"}',
      'flannel.alpha.coreos.com/public-ipv6': v6.ip,
    });
    // Other netplane nodes would go on sending to a device that is gone: its annotations go with it.
    flannelled.publish({ ...vtep, ip4: vtep.ip, ip6: v6.ip });
    await flannelled.settled();
    await waitFor('the IPv6 device annotations removed', () => annotations()['netplane.io/vtep-v6-mac'] === undefined);
    expect(annotations()['netplane.io/public-ipv6']).toBeUndefined();
    expect(annotations()['flannel.alpha.coreos.com/backend-v6-data']).toBe('{"VNI":1,"VtepMAC":"0a:00:00:00:00:01"}');
    // Removed once: the next publish finds nothing to do.
    flannelled.publish({ ...vtep, ip4: vtep.ip, ip6: v6.ip });
    await flannelled.settled();
    expect(patched).toHaveLength(2);
    expect(patched[1]).toMatchObject({ 'netplane.io/vtep-v6-mac': null, 'netplane.io/public-ipv6': null });
    flannelled.stop();
  });
});

describe('VtepPublisher notes', () => {
  it('logs what the announcement could not use once per change, and Flannel-only notes only with --flannel-annotations', () => {
    const self = { mac: '0a:00:00:00:00:01', ip: '192.168.60.1', notes: ['annotation flannel.alpha.coreos.com/public-ip-overwrite "x" is not an IPv4 address; publishing 192.168.60.1'], flannelNotes: ['has an IPv6 podCIDR but no IPv6 underlay address'] };
    for (const [flannelVni, want] of [[undefined, 1], [1, 2]] as const) {
      const { log, records } = captureLogger();
      const p = new VtepPublisher({ nodeName: 'node1', patch: async () => {}, current: () => undefined, log, ...(flannelVni !== undefined ? { flannelVni } : {}) });
      p.publish(self);
      p.publish(self);
      p.stop();
      const warned = records.filter((r) => Number(r.level) === 40 && String(r.msg).startsWith('node node1 '));
      expect(warned.map((r) => r.msg)).toEqual([`node node1 ${self.notes[0]}`, ...(want === 2 ? [`node node1 ${self.flannelNotes[0]}`] : [])]);
    }
  });
});

describe('annotationsFor', () => {
  const self = { mac: '0a:00:00:00:00:01', ip: '192.168.60.1' };
  const data = '{"VNI":1,"VtepMAC":"0a:00:00:00:00:01"}';
  const flannel = { 'flannel.alpha.coreos.com/backend-type': 'vxlan', 'flannel.alpha.coreos.com/kube-subnet-manager': 'true' };
  it.each<[string, Parameters<typeof annotationsFor>[0], number | undefined, Record<string, string>]>([
    ["netplane's only", self, undefined, { 'netplane.io/vtep-mac': self.mac, 'netplane.io/public-ip': self.ip }],
    ["an IPv4 node with Flannel's", { ...self, ip4: self.ip }, 1, {
      'netplane.io/vtep-mac': self.mac, 'netplane.io/public-ip': self.ip, ...flannel, 'flannel.alpha.coreos.com/backend-data': data, 'flannel.alpha.coreos.com/public-ip': self.ip,
    }],
    ['a dual-stack node: both families', { ...self, ip4: self.ip, ip6: 'fd00:60::1' }, 1, {
      'netplane.io/vtep-mac': self.mac, 'netplane.io/public-ip': self.ip, ...flannel,
      'flannel.alpha.coreos.com/backend-data': data, 'flannel.alpha.coreos.com/public-ip': self.ip,
      'flannel.alpha.coreos.com/backend-v6-data': data, 'flannel.alpha.coreos.com/public-ipv6': 'fd00:60::1',
    }],
    ['behind NAT: the overwrite is the public IP', { ...self, ip: '203.0.113.1', ip4: '203.0.113.1' }, 1, {
      'netplane.io/vtep-mac': self.mac, 'netplane.io/public-ip': '203.0.113.1', ...flannel, 'flannel.alpha.coreos.com/backend-data': data, 'flannel.alpha.coreos.com/public-ip': '203.0.113.1',
    }],
    ['an IPv6 underlay', { mac: self.mac, ip: 'fd00:60::1' }, 1, {
      'netplane.io/vtep-mac': self.mac, 'netplane.io/public-ip': 'fd00:60::1', ...flannel, 'flannel.alpha.coreos.com/backend-v6-data': data, 'flannel.alpha.coreos.com/public-ipv6': 'fd00:60::1',
    }],
  ])('%s', (_name, s, vni, want) => {
    expect(annotationsFor(s, vni)).toEqual(want);
  });
});

/**
 * What Flannel's kube subnet manager reads from a Node (pkg/subnet/kube/kube.go, handleAddLeaseEvent and
 * nodeToLease), for the families its net-conf enables: the node is dropped (an Error) unless kube-subnet-manager is
 * "true" and each enabled family's public IP parses as an address of that family.
 */
function flannelNodeToLease(n: { metadata: { annotations?: Record<string, string> }; spec: { podCIDRs?: string[] } }, enable: { ipv4: boolean; ipv6: boolean }): Record<string, string> | Error {
  const a = n.metadata.annotations ?? {};
  if (a['flannel.alpha.coreos.com/kube-subnet-manager'] !== 'true') return new Error('not a Flannel-managed node');
  const out: Record<string, string> = {};
  const cidrs = n.spec.podCIDRs ?? [];
  if (enable.ipv4) {
    const ip = a['flannel.alpha.coreos.com/public-ip'] ?? '';
    if (!isIPv4(ip)) return new Error(`public-ip ${JSON.stringify(ip)} is not IPv4`);
    out.publicIP = ip;
    out.subnet = cidrs.find((c) => isIPv4(c.split('/')[0]!)) ?? '';
  }
  if (enable.ipv6) {
    const ip = a['flannel.alpha.coreos.com/public-ipv6'] ?? '';
    if (!isIPv6(ip)) return new Error(`public-ipv6 ${JSON.stringify(ip)} is not IPv6`);
    out.publicIPv6 = ip;
    out.ipv6Subnet = cidrs.find((c) => isIPv6(c.split('/')[0]!)) ?? '';
  }
  return out;
}
