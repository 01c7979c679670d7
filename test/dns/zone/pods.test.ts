// --pods verified (CoreDNS's `pods verified`), as a table against the real zone handler and record index fed from a
// store: a pod name answers only while a Pod of that namespace has that address; then Pods coming, changing and going.
import { describe, expect, it } from 'vitest';
import { parseObject } from '../../../cluster/model/index.ts';
import { ServiceMap } from '../../../cluster/servicemap/index.ts';
import { Store } from '../../../cluster/store.ts';
import type { DnsQuery } from '../../../dns/types.ts';
import { ClusterZoneHandler } from '../../../dns/zone/handler.ts';
import { followPods, podAddresses } from '../../../dns/zone/pods.ts';
import { followNamespaces, RecordIndex } from '../../../dns/zone/records.ts';
import { service } from '../../fixtures/objects.ts';
import { pod } from '../../fixtures/pods.ts';

const running = (...ips: string[]) => ({ phase: 'Running', podIPs: ips.map((ip) => ({ ip })) });

function setup(pods: 'insecure' | 'verified') {
  const store = new Store(['Service', 'EndpointSlice', 'Namespace', 'Pod']);
  store.apply([
    ...parseObject(service('db', { clusterIP: '10.96.0.7', ports: [{ port: 5432 }] }, { namespace: 'shop' })),
    ...parseObject({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'quiet' } }),
    ...parseObject(pod('a', 'shop', running('10.244.1.5', 'fd00:244::5'))),
    ...parseObject(pod('b', 'shop', { phase: 'Pending' })),
    ...parseObject(pod('done', 'shop', { phase: 'Succeeded', podIP: '10.244.1.6' })),
    // A namespace with Pods and nothing else (a manifest directory seldom has Namespace objects).
    ...parseObject(pod('c', 'jobs', running('10.244.9.9'))),
    // Two host-network Pods share the node's address.
    ...parseObject(pod('h1', 'kube-system', running('192.168.1.10'))),
    ...parseObject(pod('h2', 'kube-system', running('192.168.1.10'))),
  ]);
  const index = new RecordIndex('cluster.local');
  index.update(new ServiceMap(store, { nodeName: 'n1' }));
  followNamespaces(store, index);
  if (pods === 'verified') followPods(store, index);
  const handler = new ClusterZoneHandler(index, { ttl: 5, pods, reverseCIDRs: [], nameservers: () => [], synced: () => true });
  const ask = async (name: string, type = 'A') => {
    const q: DnsQuery = { id: 1, name, lname: name.toLowerCase(), type, qtype: type === 'A' ? 1 : 28, qclass: 1, rd: true, cd: false, transport: 'udp', dnssecOk: false, client: { address: '127.0.0.1', port: 1 } };
    const a = await handler.handle(q);
    if (a === 'pass') return 'pass';
    return `${a.rcode} ${a.answers.map((r) => String((r as { data: unknown }).data)).join(' ')}`.trim();
  };
  return { store, index, handler, ask };
}

describe('podAddresses', () => {
  it.each([
    ['Running', running('10.0.0.1', 'fd00::1'), ['10.0.0.1', 'fd00::1']],
    ['Pending with an address', { phase: 'Pending', podIP: '10.0.0.1' }, ['10.0.0.1']],
    ['Succeeded', { phase: 'Succeeded', podIP: '10.0.0.1' }, []],
    ['Failed', { phase: 'Failed', podIP: '10.0.0.1' }, []],
    ['no address yet', { phase: 'Pending' }, []],
  ])('%s', (_, status, want) => {
    const [p] = parseObject(pod('x', 'y', status));
    expect(podAddresses(p!.object as never)).toEqual(want);
  });
});

describe('pod names with --pods verified', () => {
  const { ask } = setup('verified');
  const rows: Array<[string, string, string]> = [
    ['10-244-1-5.shop.pod.cluster.local', 'A', 'NOERROR 10.244.1.5'],
    ['10-244-1-5.shop.pod.cluster.local', 'AAAA', 'NOERROR'],
    ['fd00-244--5.shop.pod.cluster.local', 'AAAA', 'NOERROR fd00:244::5'],
    // Any spelling of the address: CoreDNS compares text and misses this one.
    ['fd00-244-0-0-0-0-0-5.shop.pod.cluster.local', 'AAAA', 'NOERROR fd00:244:0:0:0:0:0:5'],
    ['10-244-1-5.default.pod.cluster.local', 'A', 'NXDOMAIN'],
    ['10-244-1-5.quiet.pod.cluster.local', 'A', 'NXDOMAIN'],
    ['10-244-1-7.shop.pod.cluster.local', 'A', 'NXDOMAIN'],
    ['10-244-1-6.shop.pod.cluster.local', 'A', 'NXDOMAIN'],
    ['10-244-9-9.jobs.pod.cluster.local', 'A', 'NOERROR 10.244.9.9'],
    ['jobs.pod.cluster.local', 'A', 'NOERROR'],
    ['shop.pod.cluster.local', 'A', 'NOERROR'],
    ['nope.pod.cluster.local', 'A', 'NXDOMAIN'],
    ['192-168-1-10.kube-system.pod.cluster.local', 'A', 'NOERROR 192.168.1.10'],
    ['010-244-001-005.shop.pod.cluster.local', 'A', 'NXDOMAIN'],
  ];
  it.each(rows)('%s %s: %s', async (name, type, want) => expect(await ask(name, type)).toBe(want));
});

describe('pod names with --pods insecure, for comparison', () => {
  const { ask } = setup('insecure');
  it.each([
    ['10-244-1-7.shop.pod.cluster.local', 'NOERROR 10.244.1.7'],
    ['10-244-1-5.quiet.pod.cluster.local', 'NOERROR 10.244.1.5'],
    // Without Pods read, a namespace holding only Pods is unknown.
    ['10-244-9-9.jobs.pod.cluster.local', 'NXDOMAIN'],
  ])('%s: %s', async (name, want) => expect(await ask(name)).toBe(want));
});

describe('Pods coming, changing and going with --pods verified', () => {
  it('answers while a Pod has the address, in the namespace it is in, and changes the generation only then', async () => {
    const { store, index, ask } = setup('verified');
    const steps: Array<[string, () => void, Record<string, string>, boolean]> = [
      ['a new Pod', () => store.apply(parseObject(pod('n', 'shop', running('10.244.1.8')))), { '10-244-1-8.shop': 'NOERROR 10.244.1.8' }, true],
      ['its labels change', () => store.apply(parseObject(pod('n', 'shop', running('10.244.1.8'), { metadata: { name: 'n', namespace: 'shop', labels: { v: '2' } } }))), { '10-244-1-8.shop': 'NOERROR 10.244.1.8' }, false],
      ['Pending gets an address', () => store.apply(parseObject(pod('b', 'shop', running('10.244.1.9')))), { '10-244-1-9.shop': 'NOERROR 10.244.1.9' }, true],
      ['it finishes', () => store.apply(parseObject(pod('n', 'shop', { phase: 'Succeeded', podIP: '10.244.1.8' }))), { '10-244-1-8.shop': 'NXDOMAIN' }, true],
      ['a is deleted', () => store.apply([{ kind: 'Pod', key: 'shop/a', object: undefined }]), { '10-244-1-5.shop': 'NXDOMAIN' }, true],
      ['one of two host-network Pods goes', () => store.apply([{ kind: 'Pod', key: 'kube-system/h1', object: undefined }]), { '192-168-1-10.kube-system': 'NOERROR 192.168.1.10' }, false],
      ['the other goes too', () => store.apply([{ kind: 'Pod', key: 'kube-system/h2', object: undefined }]), { '192-168-1-10.kube-system': 'NXDOMAIN' }, true],
      ['the last Pod of jobs goes: the namespace with it', () => store.apply([{ kind: 'Pod', key: 'jobs/c', object: undefined }]), { '10-244-9-9.jobs': 'NXDOMAIN', jobs: 'NXDOMAIN' }, true],
    ];
    for (const [what, step, want, bumps] of steps) {
      const generation = index.generation;
      step();
      expect(index.generation !== generation, what).toBe(bumps);
      for (const [name, answer] of Object.entries(want)) expect(await ask(`${name}.pod.cluster.local`), `${what}: ${name}`).toBe(answer);
    }
  });
});

describe('--pods verified before the Pods are listed (no RBAC rule for them, say)', () => {
  it('answers Services at once; pod names it would deny get SERVFAIL until the Pods are listed, then the truth', async () => {
    // As runComponent builds it: Pods are a flag kind, which the view does not wait for.
    const store = new Store(['Service', 'EndpointSlice', 'Namespace', 'Pod'], { optional: ['Pod'] });
    store.apply(parseObject(service('db', { clusterIP: '10.96.0.7', ports: [{ port: 5432 }] }, { namespace: 'shop' })));
    for (const kind of ['Service', 'EndpointSlice', 'Namespace'] as const) store.markSynced(kind);
    const index = new RecordIndex('cluster.local');
    index.update(new ServiceMap(store, { nodeName: 'n1' }));
    followNamespaces(store, index);
    followPods(store, index);
    const handler = new ClusterZoneHandler(index, { ttl: 5, pods: 'verified', reverseCIDRs: [], nameservers: () => [], synced: () => store.status.synced, podsSynced: () => store.hasSynced('Pod') });
    const ask = async (name: string) => {
      const a = await handler.handle({ id: 1, name, lname: name, type: 'A', qtype: 1, qclass: 1, rd: true, cd: false, transport: 'udp', dnssecOk: false, client: { address: '127.0.0.1', port: 1 } });
      return a === 'pass' ? 'pass' : `${a.rcode} ${a.answers.map((r) => String((r as { data: unknown }).data)).join(' ')}`.trim();
    };
    const rows: Array<[string, string, string]> = [
      // [name, before the Pods are listed, after]
      ['db.shop.svc.cluster.local', 'NOERROR 10.96.0.7', 'NOERROR 10.96.0.7'],
      ['10-244-1-5.shop.pod.cluster.local', 'SERVFAIL', 'NOERROR 10.244.1.5'],
      ['10-244-1-7.shop.pod.cluster.local', 'SERVFAIL', 'NXDOMAIN'],
      // Known without Pods: the namespace does not exist, or the label is no address.
      ['10-244-1-5.nowhere.pod.cluster.local', 'NXDOMAIN', 'NXDOMAIN'],
      ['nope.shop.pod.cluster.local', 'NXDOMAIN', 'NXDOMAIN'],
      ['shop.pod.cluster.local', 'NOERROR', 'NOERROR'],
    ];
    expect(store.status.synced).toBe(true);
    for (const [name, before] of rows) expect(await ask(name), name).toBe(before);
    store.apply(parseObject(pod('a', 'shop', running('10.244.1.5'))));
    store.markSynced('Pod');
    for (const [name, , after] of rows) expect(await ask(name), name).toBe(after);
  });
});
