// Traffic from outside the pod networks that a node routes into the overlay, as Flannel treats it: a client (the
// outside host, which routes the pod networks through node1) reaching a pod on node2 is masqueraded to node1's VTEP
// address, so that node2 answers back through node1 (Flannel's "masquerade anything headed towards flannel from the
// host"); reaching a pod on node1 itself, it keeps its address. Without that, node2 answered the client straight
// over the underlay, and node1, which saw only the client's half of the flow, took the rest of it as INVALID: with
// the drop of INVALID packets in FORWARD that kube-proxy (and netplane proxy's iptables mode) install, the
// connection hung. Real packets, IPv4 and IPv6, between namespaces removed at the end.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOverlayTopology, type OverlayTopology } from './topology.ts';

describe('netplane overlay: a client routed into the overlay through a node', () => {
  let t: OverlayTopology;

  beforeAll(async () => {
    t = await buildOverlayTopology(2, 1, true, 'dual', 's22emr');
    await t.writeNodes();
    const [n1] = t.nodes;
    await t.lab.exec(t.outside.ns, 'ip', ['route', 'add', '10.244.0.0/16', 'via', n1!.ip]);
    await t.lab.exec(t.outside.ns, 'ip', ['-6', 'route', 'add', 'fd00:244::/32', 'via', n1!.ip6!]);
    // As kube-proxy's KUBE-FORWARD (and netplane proxy --mode iptables without --conntrack-tcp-be-liberal) does.
    for (const cmd of ['iptables-nft', 'ip6tables-nft']) await t.lab.exec(n1!.ns, cmd, ['-A', 'FORWARD', '-m', 'conntrack', '--ctstate', 'INVALID', '-j', 'DROP']);
    await Promise.all(t.nodes.map((n) => t.startAgent(n)));
  }, 60_000);
  afterAll(async () => {
    await t?.destroy();
  });

  it("reaches a pod on another node seen as the routing node's VTEP address, and one on the routing node as itself", async () => {
    const [n1, n2] = t.nodes;
    const [remote, local] = [n2!.pods[0]!, n1!.pods[0]!];
    for (const [target, seenAs] of [[remote.ip, '10.244.1.0'], [remote.ip6!, 'fd00:244:1::'], [local.ip, t.outside.ip], [local.ip6!, 'fd00:60::100']] as const) {
      expect(await t.probe(t.outside.ns, 'tcp', target), `outside → ${target}`).toEqual([expect.objectContaining({ ok: true, seenAs })]);
    }
    // Pod to pod and pod to the outside are as before: kept, and masqueraded to the node's address.
    expect(await t.probe(local.ns, 'tcp', remote.ip)).toEqual([expect.objectContaining({ ok: true, seenAs: local.ip })]);
    expect(await t.probe(local.ns, 'tcp', remote.ip6!)).toEqual([expect.objectContaining({ ok: true, seenAs: local.ip6 })]);
    expect(await t.probe(remote.ns, 'tcp', t.outside.ip)).toEqual([expect.objectContaining({ ok: true, seenAs: n2!.ip })]);
  }, 40_000);
});
