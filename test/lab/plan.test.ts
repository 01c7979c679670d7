// The lab's pure parts: its address plan, the command lines it gives each component (checked against the
// components' own flags), and its manifests (checked with the cluster's own parser).
import { describe, expect, it } from 'vitest';
import { parseManifestText } from '../../cluster/manifests/parse.ts';
import { dnsComponent } from '../../dns/component.ts';
import { ingressComponent } from '../../ingress/component.ts';
import { labManifests, webEndpointsFile, webEndpointsText } from '../../lab/manifests.ts';
import { cidrsOverlap, componentArgs, labPods, planLab } from '../../lab/plan.ts';
import { overlayComponent } from '../../overlay/component.ts';
import { proxyComponent } from '../../proxy/component.ts';
import { commonFlags, type Component } from '../../runtime/component.ts';
import { parseFlags } from '../../runtime/flags.ts';

describe('planLab', () => {
  it('lays out nodes, pods and components', () => {
    const plan = planLab(3, 201);
    expect({ id: plan.id, underlay: plan.underlayCIDR, link: plan.hostLink, host: plan.hostIP }).toEqual({ id: 'lab201', underlay: '192.168.201.0/24', link: 'nplab201', host: '192.168.201.254' });
    expect(plan.nodes.map((n) => [n.name, n.ip, n.podCIDR, n.gateway, n.pods.map((p) => `${p.name} ${p.ip}`).join(', '), n.components.join(' ')])).toEqual([
      ['node1', '192.168.201.1', '10.244.1.0/24', '10.244.1.1', 'web-11 10.244.1.11, web-12 10.244.1.12', 'overlay proxy dns ingress'],
      ['node2', '192.168.201.2', '10.244.2.0/24', '10.244.2.1', 'web-21 10.244.2.11, web-22 10.244.2.12', 'overlay proxy dns'],
      ['node3', '192.168.201.3', '10.244.3.0/24', '10.244.3.1', 'web-31 10.244.3.11, web-32 10.244.3.12', 'overlay proxy dns'],
    ]);
  });

  it.each([
    ['192.168.200.0/24', '192.168.200.0/24', true],
    ['192.168.200.0/24', '192.168.200.7/32', true],
    ['192.168.0.0/16', '192.168.200.0/24', true],
    ['0.0.0.0/0', '192.168.200.0/24', true],
    ['192.168.201.0/24', '192.168.200.0/24', false],
    ['10.0.0.1', '192.168.200.0/24', false],
  ])('cidrsOverlap(%s, %s) is %s', (a, b, want) => {
    expect(cidrsOverlap(a, b)).toBe(want);
    expect(cidrsOverlap(b, a)).toBe(want);
  });
});

describe('the command lines the lab runs', () => {
  const plan = planLab(3, 200);
  const components: Record<string, Component> = { proxy: proxyComponent, dns: dnsComponent, ingress: ingressComponent, overlay: overlayComponent };
  const rows = plan.nodes.flatMap((n) => n.components.map((c) => [n.name, c] as const));

  it.each(rows)('%s %s: accepted by the component, admin on the node address', (nodeName, c) => {
    const node = plan.nodes.find((n) => n.name === nodeName)!;
    const [name, ...args] = componentArgs(plan, node, c, '/run/x/manifests');
    const comp = components[name!]!;
    const flags = parseFlags(`netplane ${name}`, { ...commonFlags(comp.defaultAdmin), ...comp.flags }, args) as Record<string, unknown>;
    expect(flags['node-name']).toBe(nodeName);
    expect(flags.manifests).toBe('/run/x/manifests');
    expect((flags.admin as { host: string }).host).toBe(node.ip);
  });

  it.each([
    ['proxy', ['--mode', 'nftables', '--cluster-cidr', '10.244.0.0/16', '--min-sync-period', '100ms']],
    ['dns', ['--listen', '10.244.2.1:53', '--upstream', '192.168.200.254:53', '--reverse-cidr', '10.244.0.0/16']],
    ['overlay', ['--cluster-cidr', '10.244.0.0/16', '--iface', 'eth0']],
  ] as const)('%s on node2 gets its own flags', (c, own) => {
    expect(componentArgs(plan, plan.nodes[1]!, c, '/m').slice(7)).toEqual(own);
  });
});

describe('labManifests', () => {
  const plan = planLab(2, 200);
  const files = labManifests(plan);
  const parsed = [...files].map(([file, text]) => ({ file, result: parseManifestText(file, text) }));

  it('writes files the cluster parser accepts', () => {
    expect(parsed.filter((p) => !p.result.ok)).toEqual([]);
    const kinds = parsed.flatMap((p) => (p.result.ok ? p.result.objects.map((o) => `${p.file} ${o.kind} ${'namespace' in o.object.metadata ? `${o.object.metadata.namespace}/` : ''}${o.object.metadata.name}`) : []));
    expect(kinds).toEqual([
      'nodes.yaml Node node1',
      'nodes.yaml Node node2',
      'web.yaml Service default/web',
      'web.yaml IngressClass netplane',
      'web.yaml Ingress default/web',
      'web-endpoints.yaml EndpointSlice default/web-lab',
      'dns.yaml Service kube-system/kube-dns',
      'dns.yaml EndpointSlice kube-system/kube-dns-lab',
    ]);
  });

  it('lists every pod as a web endpoint, and any subset when rewritten', () => {
    const addrs = (text: string) => {
      const r = parseManifestText(webEndpointsFile, text);
      return r.ok && r.objects[0]!.kind === 'EndpointSlice' ? r.objects[0]!.object.endpoints.map((e) => `${e.addresses[0]} ${e.nodeName} ${e.targetRef?.name}`) : r;
    };
    expect(addrs(files.get(webEndpointsFile)!)).toEqual(['10.244.1.11 node1 web-11', '10.244.1.12 node1 web-12', '10.244.2.11 node2 web-21', '10.244.2.12 node2 web-22']);
    expect(addrs(webEndpointsText(labPods(plan).slice(3)))).toEqual(['10.244.2.12 node2 web-22']);
    expect(addrs(webEndpointsText([]))).toEqual([]);
  });

  it("sends each node's pods to their own node's dns", () => {
    const r = parseManifestText('dns.yaml', files.get('dns.yaml')!);
    const svc = r.ok ? r.objects.find((o) => o.kind === 'Service') : undefined;
    expect(svc?.kind === 'Service' && svc.object.spec).toMatchObject({ clusterIPs: ['10.96.0.10'], internalTrafficPolicy: 'Local' });
  });
});
