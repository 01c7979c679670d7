// `netplane dns --autopath --pods verified` as users run it: Pods and Services in a manifest directory, a scripted
// upstream, a node resolv.conf with search domains (bind-mounted over /etc/resolv.conf for this process only), and dig
// sending from the Pods' addresses (127.0.x.y, local on lo without any setup). A Pod's first search-path query is
// answered with what its resolver would find after the whole walk, the node's search domains included; other clients,
// and the same bytes from another namespace, get their own answers, never a replayed one.
import { createSocket } from 'node:dgram';
import dnsPacket from 'dns-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { service } from '../fixtures/objects.ts';
import { pod } from '../fixtures/pods.ts';
import { freePort } from '../helpers/ports.ts';
import { waitFor } from '../helpers/wait.ts';
import { a, soa, startUpstream, type FakeUpstream } from './forward/fake-upstream.ts';
import { dig, startDns, type DnsProcess } from './process.ts';
import { aQuery } from './server/helpers.ts';

const shopPod = '127.0.1.5';
const jobsPod = '127.0.2.5';
const notAPod = '127.0.0.1';
const running = (ip: string) => ({ phase: 'Running', podIP: ip, podIPs: [{ ip }] });
const objects = [
  service('cart', { clusterIP: '10.96.0.11', ports: [{ port: 80 }] }, { namespace: 'shop' }),
  service('api', { clusterIP: '10.96.0.20', ports: [{ port: 80 }] }, { namespace: 'jobs' }),
  pod('client', 'shop', running(shopPod)),
  pod('worker', 'jobs', running(jobsPod)),
];
// As the kubelet reads it for a ClusterFirst Pod: the last search line only, and no domain line. The zone and a
// duplicate are not walked twice; shop.svc.cluster.local is walked for the jobs Pod (its resolv.conf has it too);
// "a..b" is no name and is logged.
const nodeResolvConf = [
  'nameserver 192.0.2.53',
  'domain stale.example',
  'search old.example',
  'search corp.example Cluster.Local. lab.example shop.svc.cluster.local corp.example a..b',
  'options ndots:2',
  '',
].join('\n');

/** Sends these bytes from `source` and resolves with the rcode and the answer records as "owner TYPE data". */
async function rawFrom(port: number, source: string, msg: Buffer): Promise<string> {
  const s = createSocket('udp4');
  try {
    await new Promise<void>((resolve) => s.bind(0, source, () => resolve()));
    const reply = await new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no reply from ${source}`)), 3000);
      s.once('message', (m) => {
        clearTimeout(timer);
        resolve(m);
      });
      s.send(msg, port, '127.0.0.1');
    });
    const p = dnsPacket.decode(reply) as dnsPacket.DecodedPacket & { rcode: string };
    return [p.rcode, ...(p.answers ?? []).map((r) => `${r.name} ${r.type} ${String((r as { data: unknown }).data)}`)].join(' | ');
  } finally {
    s.close();
  }
}

describe('netplane dns --autopath', () => {
  let up: FakeUpstream;
  let dns: DnsProcess;
  let port: number;
  beforeAll(async () => {
    up = await startUpstream((q) => {
      const name = q.name.toLowerCase();
      if (name === 'example.com') return { answers: [a(q.name, '192.0.2.7', 60)] };
      // Names only under the node's search domains, and one also as it is (the search domain comes first).
      if (name === 'intranet.corp.example') return { answers: [a(q.name, '192.0.2.80', 60)] };
      if (name === 'wiki.lab.example') return { answers: [a(q.name, '192.0.2.81', 60)] };
      if (name === 'wiki') return { answers: [a(q.name, '192.0.2.82', 60)] };
      if (name === 'broken.example') return { rcode: 'SERVFAIL' };
      return { rcode: 'NXDOMAIN', authorities: [{ ...soa('example', 60, 60), name: '.' }] };
    });
    port = await freePort();
    dns = await startDns(['--listen', `127.0.0.1:${port}`, '--upstream', up.hostPort.text, '--pods', 'verified', '--autopath', '--lameduck', '0s'], objects, { resolvConf: nodeResolvConf });
    await waitFor('dns answering', async () => (await dig(port, 'cart.shop.svc.cluster.local')).status === 'NOERROR', 15_000);
  }, 30_000);
  afterAll(async () => {
    await dns?.stop();
    await up?.close();
  });

  const rows: Array<[string, string, string, string]> = [
    // [client, name, what, status and answers]
    [shopPod, 'cart.shop.svc.cluster.local', 'own namespace, found at once: the plain answer', 'NOERROR cart.shop.svc.cluster.local. IN A 10.96.0.11'],
    [shopPod, 'api.jobs.shop.svc.cluster.local', 'another namespace, found at svc.<zone>', 'NOERROR api.jobs.shop.svc.cluster.local. IN CNAME api.jobs.svc.cluster.local. | api.jobs.svc.cluster.local. IN A 10.96.0.20'],
    [shopPod, 'example.com.shop.svc.cluster.local', 'an external name, forwarded', 'NOERROR example.com.shop.svc.cluster.local. IN CNAME example.com. | example.com. IN A 192.0.2.7'],
    [shopPod, 'nowhere.shop.svc.cluster.local', 'NXDOMAIN everywhere', 'NXDOMAIN'],
    [shopPod, 'broken.example.shop.svc.cluster.local', 'upstream SERVFAIL for the bare name', 'SERVFAIL'],
    [shopPod, 'cart.shop', 'not a search-path name', 'NXDOMAIN'],
    [notAPod, 'api.jobs.shop.svc.cluster.local', 'not a Pod: no autopath', 'NXDOMAIN'],
    [notAPod, 'cart.shop.svc.cluster.local', 'not a Pod, an existing name', 'NOERROR cart.shop.svc.cluster.local. IN A 10.96.0.11'],
    [jobsPod, 'api.jobs.shop.svc.cluster.local', "a Pod of another namespace: not its search path", 'NXDOMAIN'],
    [jobsPod, 'cart.shop.jobs.svc.cluster.local', 'its own search path', 'NOERROR cart.shop.jobs.svc.cluster.local. IN CNAME cart.shop.svc.cluster.local. | cart.shop.svc.cluster.local. IN A 10.96.0.11'],
    // The node's search domains, after <zone> and before the name itself.
    [shopPod, 'intranet.shop.svc.cluster.local', "only under the node's first search domain, answered upstream", 'NOERROR intranet.shop.svc.cluster.local. IN CNAME intranet.corp.example. | intranet.corp.example. IN A 192.0.2.80'],
    [shopPod, 'wiki.shop.svc.cluster.local', 'under a later node search domain, before the name itself', 'NOERROR wiki.shop.svc.cluster.local. IN CNAME wiki.lab.example. | wiki.lab.example. IN A 192.0.2.81'],
    [jobsPod, 'intranet.jobs.svc.cluster.local', 'the same from a Pod of another namespace', 'NOERROR intranet.jobs.svc.cluster.local. IN CNAME intranet.corp.example. | intranet.corp.example. IN A 192.0.2.80'],
    [jobsPod, 'cart.jobs.svc.cluster.local', "the node's search domain inside the zone, another namespace's", 'NOERROR cart.jobs.svc.cluster.local. IN CNAME cart.shop.svc.cluster.local. | cart.shop.svc.cluster.local. IN A 10.96.0.11'],
    [notAPod, 'intranet.shop.svc.cluster.local', 'not a Pod: no walk', 'NXDOMAIN'],
  ];
  it.each(rows)('from %s: %s (%s)', async (client, name, _, want) => {
    const r = await dig(port, name, 'A', client);
    expect(`${r.status} ${r.answer.join(' | ')}`.trim()).toBe(want);
  });

  it("asks the upstream the node's search domains in order, then the bare name, once the zone names were NXDOMAIN", () => {
    const seen = up.seen.map((q) => q.name.toLowerCase());
    expect(seen.filter((n) => n.startsWith('nowhere'))).toEqual(['nowhere.corp.example', 'nowhere.lab.example', 'nowhere']);
    expect(seen.filter((n) => n.startsWith('example.com'))).toEqual(['example.com.corp.example', 'example.com.lab.example', 'example.com']);
    // The last search line only, the zone never forwarded, and what is no name never asked.
    expect(seen.filter((n) => /(^|\.)(old|stale)\.example$|cluster\.local$|a\.\.b/.test(n))).toEqual([]);
  });

  it('logs the search domains it walks, and the one that is no domain name', () => {
    expect(dns.logs()).toMatch(/"autopathSearch":\["corp\.example","lab\.example","shop\.svc\.cluster\.local"\]/);
    expect(dns.logs()).toMatch(/autopath does not walk search domain \\"a\.\.b\\" of \/etc\/resolv\.conf: not a domain name/);
  });

  it('gives the same query bytes from Pods of different namespaces and from a non-Pod their own answers, in any order', async () => {
    const msg = aQuery('api.jobs.shop.svc.cluster.local', 4242);
    const walked = 'NOERROR | api.jobs.shop.svc.cluster.local CNAME api.jobs.svc.cluster.local | api.jobs.svc.cluster.local A 10.96.0.20';
    const plain = 'NXDOMAIN';
    const order: Array<[string, string]> = [[notAPod, plain], [shopPod, walked], [jobsPod, plain], [shopPod, walked], [notAPod, plain], [notAPod, plain], [shopPod, walked], [shopPod, walked], [jobsPod, plain]];
    const got: string[] = [];
    for (const [client] of order) got.push(await rawFrom(port, client, msg));
    expect(got).toEqual(order.map(([, want]) => want));

    // And the other way round: a name that the jobs Pod walks and the shop Pod does not.
    const other = aQuery('cart.shop.jobs.svc.cluster.local', 4243);
    const both = [await rawFrom(port, jobsPod, other), await rawFrom(port, shopPod, other), await rawFrom(port, jobsPod, other), await rawFrom(port, shopPod, other)];
    expect(both.map((r) => r.split(' | ')[0])).toEqual(['NOERROR', 'NXDOMAIN', 'NOERROR', 'NXDOMAIN']);
  });

  it('counts the queries answered from a later name in coredns_autopath_success_total', async () => {
    const count = async () => Number(/^coredns_autopath_success_total\{server="dns:\/\/127\.0\.0\.1:\d+"\} (\d+)$/m.exec((await dns.admin('/metrics')).body)?.[1]);
    const before = await count();
    expect(before).toBeGreaterThan(0);
    await dig(port, 'api.jobs.shop.svc.cluster.local', 'A', shopPod);
    await dig(port, 'cart.shop.svc.cluster.local', 'A', shopPod);
    await dig(port, 'nowhere.shop.svc.cluster.local', 'A', shopPod);
    expect(await count()).toBe(before + 1);
  });
});

describe('netplane dns --autopath without --pods verified', () => {
  it.each([[[]], [['--pods', 'insecure']]])('%j is a usage error (exit 2)', async (pods) => {
    const dns = await startDns(['--listen', '127.0.0.1:0', '--upstream', '127.0.0.1:9', '--autopath', ...pods]);
    try {
      expect(await dns.exited).toBe(2);
      expect(dns.logs()).toMatch(/--autopath finds a client's namespace from the Pod with its address, so it needs --pods verified, not --pods (disabled|insecure)/);
    } finally {
      await dns.stop();
    }
  }, 20_000);
});
