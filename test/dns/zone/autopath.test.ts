// autopath (CoreDNS's `autopath @kubernetes`) as tables: the pure decisions of dns/zone/autopath.ts, the handler's walk
// against a scripted rest of the chain (answers given at once or later), and the Pod index finding a client's
// namespace by its address.
import { describe, expect, it } from 'vitest';
import { parseObject } from '../../../cluster/model/index.ts';
import { Store } from '../../../cluster/store.ts';
import type { DnsAnswer, DnsQuery, HandlerResult, Rcode } from '../../../dns/types.ts';
import { AutopathHandler } from '../../../dns/zone/autopath-handler.ts';
import { answerFor, candidates, clientAddress, inSomeSearchPath, nodeSearchDomains, searchPath, walksOn } from '../../../dns/zone/autopath.ts';
import { followPods } from '../../../dns/zone/pods.ts';
import { RecordIndex } from '../../../dns/zone/records.ts';
import { pod } from '../../fixtures/pods.ts';

const zone = 'cluster.local';

describe('the search path and its names', () => {
  it('is <ns>.svc.<zone>, svc.<zone>, <zone>, then the name itself', () => {
    expect(searchPath('shop', zone)).toEqual(['shop.svc.cluster.local', 'svc.cluster.local', 'cluster.local', '']);
  });

  it("puts the node's search domains after <zone> and before the name itself, but the Pod's own first domain", () => {
    const node = ['corp.example', 'shop.svc.cluster.local', 'lab.example'];
    expect(searchPath('shop', zone, node)).toEqual(['shop.svc.cluster.local', 'svc.cluster.local', 'cluster.local', 'corp.example', 'lab.example', '']);
    // Another namespace's domain inside the zone is in that Pod's resolv.conf too (the kubelet drops only equal ones).
    expect(searchPath('jobs', zone, node)).toEqual(['jobs.svc.cluster.local', 'svc.cluster.local', 'cluster.local', 'corp.example', 'shop.svc.cluster.local', 'lab.example', '']);
  });

  const long = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`;
  it.each([
    ['kept in order, in lower case, a trailing dot trimmed', ['Corp.Example', 'lab.example.'], ['corp.example', 'lab.example'], []],
    ['the zone and svc.<zone> are in every search path already', ['cluster.local', 'svc.cluster.local', 'Cluster.Local.', 'corp.example'], ['corp.example'], [['cluster.local', "in every Pod's search path already"], ['svc.cluster.local', "in every Pod's search path already"], ['Cluster.Local.', "in every Pod's search path already"]]],
    ['other names inside the zone stay (the kubelet keeps them)', ['shop.svc.cluster.local', 'other.cluster.local'], ['shop.svc.cluster.local', 'other.cluster.local'], []],
    ['a duplicate, also in another case', ['corp.example', 'CORP.example.', 'lab.example', 'corp.example'], ['corp.example', 'lab.example'], [['CORP.example.', 'given twice'], ['corp.example', 'given twice']]],
    ['not a domain name', ['a..b', 'x'.repeat(64) + '.example', `${long}.e`, '.'], [], [['a..b', 'not a domain name'], ['x'.repeat(64) + '.example', 'not a domain name'], [`${long}.e`, 'not a domain name'], ['.', 'not a domain name']]],
    ['a name of 253 characters is one', [long], [long], []],
    ['none', [], [], []],
  ])("node search domains: %s", (_, raw, domains, skipped) => {
    expect(nodeSearchDomains(raw, zone)).toEqual({ domains, skipped: skipped.map(([domain, reason]) => ({ domain, reason })) });
  });

  it.each([
    ['web.shop.svc.cluster.local', true],
    ['google.com.shop.svc.cluster.local', true],
    ['_http._tcp.web.shop.svc.cluster.local', true],
    ['shop.svc.cluster.local', false],
    ['svc.cluster.local', false],
    ['web.shop.svc.other.local', false],
    ['web.shop.pod.cluster.local', false],
    ['google.com', false],
    ['xsvc.cluster.local', false],
  ])('%s is some Pod first search-path query: %s', (name, want) => {
    expect(inSomeSearchPath(name, zone)).toBe(want);
  });

  it.each([
    ['google.com.shop.svc.cluster.local', 'shop', ['google.com.shop.svc.cluster.local', 'google.com.svc.cluster.local', 'google.com.cluster.local', 'google.com']],
    // The letter case the client wrote is kept in every name.
    ['Web.Other.SHOP.svc.cluster.local', 'shop', ['Web.Other.SHOP.svc.cluster.local', 'Web.Other.svc.cluster.local', 'Web.Other.cluster.local', 'Web.Other']],
    ['web.shop.svc.cluster.local', 'shop', ['web.shop.svc.cluster.local', 'web.svc.cluster.local', 'web.cluster.local', 'web']],
    // Another namespace's search domain, the domain itself, or outside: no walk.
    ['web.shop.svc.cluster.local', 'jobs', undefined],
    ['web.xshop.svc.cluster.local', 'shop', undefined],
    ['shop.svc.cluster.local', 'shop', undefined],
    ['google.com', 'shop', undefined],
  ])('%s from a Pod of %s tries %j', (name, namespace, want) => {
    expect(candidates(name, namespace, zone)?.map((c) => c.name)).toEqual(want);
    expect(candidates(name, namespace, zone)?.map((c) => c.lname)).toEqual(want?.map((n) => n.toLowerCase()));
  });

  const node = ['corp.example', 'shop.svc.cluster.local', 'lab.example'];
  it.each([
    ['intranet.shop.svc.cluster.local', 'shop', ['intranet.shop.svc.cluster.local', 'intranet.svc.cluster.local', 'intranet.cluster.local', 'intranet.corp.example', 'intranet.lab.example', 'intranet']],
    ['Intranet.JOBS.svc.cluster.local', 'jobs', ['Intranet.JOBS.svc.cluster.local', 'Intranet.svc.cluster.local', 'Intranet.cluster.local', 'Intranet.corp.example', 'Intranet.shop.svc.cluster.local', 'Intranet.lab.example', 'Intranet']],
  ])("%s from a Pod of %s with the node's search domains tries %j", (name, namespace, want) => {
    expect(candidates(name, namespace, zone, node)?.map((c) => c.name)).toEqual(want);
  });

  it('leaves out a name longer than DNS allows (a node domain longer than <ns>.svc.<zone>)', () => {
    const longDomain = `${'l'.repeat(40)}.example`; // 48 characters
    const base = (n: number) => `${'x'.repeat(63)}.${'y'.repeat(63)}.${'z'.repeat(n - 128)}`;
    const tried = (b: string) => candidates(`${b}.shop.svc.cluster.local`, 'shop', zone, ['corp.example', longDomain])?.map((c) => c.lname.slice(b.length));
    const all = ['.shop.svc.cluster.local', '.svc.cluster.local', '.cluster.local', '.corp.example', `.${longDomain}`, ''];
    expect(tried(base(204))).toEqual(all); // 204 + 1 + 48 = 253
    expect(tried(base(205))).toEqual(all.filter((s) => s !== `.${longDomain}`));
  });

  it.each([
    ['NOERROR', false],
    ['NXDOMAIN', true],
    ['SERVFAIL', false],
    ['REFUSED', false],
  ] as Array<[Rcode, boolean]>)('after %s the walk goes on: %s', (rcode, want) => {
    expect(walksOn(rcode)).toBe(want);
  });

  it.each([
    ['10.244.1.5', '10.244.1.5'],
    ['::ffff:10.244.1.5', '10.244.1.5'],
    ['fd00::5', 'fd00::5'],
  ])('client %s is Pod address %s', (address, want) => {
    expect(clientAddress(address)).toBe(want);
  });
});

const rr = (name: string, type: string, data: string, ttl = 5) => ({ name, type, class: 'IN', ttl, data }) as DnsAnswer['answers'][number];
const answer = (rcode: Rcode, answers: DnsAnswer['answers'] = [], source = 'kubernetes'): DnsAnswer => ({ rcode, authoritative: source === 'kubernetes', answers, authorities: [], additionals: [], source });

describe('answerFor', () => {
  it('puts a CNAME from the asked name to the first other owner before the records, with that TTL', () => {
    const found: DnsAnswer = { ...answer('NOERROR', [rr('www.example.com', 'CNAME', 'edge.example.net', 300), rr('edge.example.net', 'A', '192.0.2.1', 20)], 'forward'), recursionAvailable: true };
    expect(answerFor('www.example.com.shop.svc.cluster.local', found)).toEqual({
      rcode: 'NOERROR',
      authoritative: false,
      recursionAvailable: true,
      answers: [rr('www.example.com.shop.svc.cluster.local', 'CNAME', 'www.example.com', 300), ...found.answers],
      authorities: [],
      additionals: [],
      source: 'autopath',
      clientBound: true,
    });
  });

  it.each([
    ['NODATA', answer('NOERROR')],
    ['SERVFAIL', answer('SERVFAIL', [], 'forward')],
  ])('%s: no CNAME, the rcode kept, clientBound', (_, found) => {
    expect(answerFor('x.shop.svc.cluster.local', found)).toMatchObject({ rcode: found.rcode, answers: [], source: 'autopath', clientBound: true });
  });
});

/** The zone's one NXDOMAIN answer object, as its handler shares it. */
const nxdomain = answer('NXDOMAIN');

/** The rest of the chain as a table of name → answer (else NXDOMAIN); every name asked is recorded; `later` answers through a promise. */
function scripted(table: Record<string, DnsAnswer>, later = false) {
  const asked: string[] = [];
  const next = (q: DnsQuery): HandlerResult | Promise<HandlerResult> => {
    asked.push(q.name);
    const a = table[q.lname] ?? nxdomain;
    return later ? Promise.resolve(a) : a;
  };
  return { asked, next };
}

const query = (name: string, address: string): DnsQuery => ({
  id: 1, name, lname: name.toLowerCase(), type: 'A', qtype: 1, qclass: 1, rd: true, cd: false, transport: 'udp', dnssecOk: false, client: { address, port: 5353 },
});

describe('AutopathHandler', () => {
  const web = answer('NOERROR', [rr('web.shop.svc.cluster.local', 'A', '10.96.0.10')]);
  const api = answer('NOERROR', [rr('api.jobs.svc.cluster.local', 'A', '10.96.0.20')]);
  const external = answer('NOERROR', [rr('example.com', 'A', '192.0.2.1', 30)], 'forward');
  const failed = answer('SERVFAIL', [], 'forward');
  const table = { 'web.shop.svc.cluster.local': web, 'api.jobs.svc.cluster.local': api, 'example.com': external, 'broken.example': failed };
  const pods: Record<string, string> = { '10.244.1.5': 'shop', '10.244.2.5': 'jobs' };
  const rows: Array<[string, string, string, string[], Partial<DnsAnswer> | 'same' | 'pass']> = [
    // [name asked, client, what, names the chain was asked, the answer]
    ['web.shop.svc.cluster.local', '10.244.1.5', 'found at once: the plain answer', ['web.shop.svc.cluster.local'], 'same'],
    ['api.jobs.shop.svc.cluster.local', '10.244.1.5', 'another namespace, at svc.<zone>', ['api.jobs.shop.svc.cluster.local', 'api.jobs.svc.cluster.local'], { rcode: 'NOERROR', source: 'autopath', clientBound: true, answers: [rr('api.jobs.shop.svc.cluster.local', 'CNAME', 'api.jobs.svc.cluster.local'), ...api.answers] }],
    ['example.com.shop.svc.cluster.local', '10.244.1.5', 'forwarded', ['example.com.shop.svc.cluster.local', 'example.com.svc.cluster.local', 'example.com.cluster.local', 'example.com'], { rcode: 'NOERROR', source: 'autopath', answers: [rr('example.com.shop.svc.cluster.local', 'CNAME', 'example.com', 30), ...external.answers] }],
    ['broken.example.shop.svc.cluster.local', '10.244.1.5', 'upstream SERVFAIL stays SERVFAIL', ['broken.example.shop.svc.cluster.local', 'broken.example.svc.cluster.local', 'broken.example.cluster.local', 'broken.example'], { rcode: 'SERVFAIL', answers: [], clientBound: true }],
    ['nowhere.shop.svc.cluster.local', '10.244.1.5', 'NXDOMAIN everywhere', ['nowhere.shop.svc.cluster.local', 'nowhere.svc.cluster.local', 'nowhere.cluster.local', 'nowhere'], { rcode: 'NXDOMAIN', source: 'kubernetes', clientBound: true }],
    ['api.jobs.shop.svc.cluster.local', '10.244.9.9', 'not a Pod: no walk, NXDOMAIN not replayable', ['api.jobs.shop.svc.cluster.local'], { rcode: 'NXDOMAIN', clientBound: true }],
    ['api.jobs.shop.svc.cluster.local', '10.244.2.5', 'a Pod of another namespace: no walk', ['api.jobs.shop.svc.cluster.local'], { rcode: 'NXDOMAIN', clientBound: true }],
    ['web.shop.svc.cluster.local', '10.244.9.9', 'not a Pod, found: the plain answer', ['web.shop.svc.cluster.local'], 'same'],
    ['example.com', '10.244.1.5', 'not a search-path name', [], 'pass'],
  ];
  for (const later of [false, true]) {
    it.each(rows)(`${later ? 'answers later' : 'answers at once'}: %s from %s (%s)`, async (name, client, _, wantAsked, want) => {
      const { asked, next } = scripted(table, later);
      let successes = 0;
      const h = new AutopathHandler({ zone, namespaceOf: (ip) => pods[ip], next, onSuccess: () => successes++ });
      const a = await h.handle(query(name, client));
      expect(asked).toEqual(wantAsked);
      if (want === 'pass') expect(a).toBe('pass');
      else if (want === 'same') expect(a).toBe(table[name as keyof typeof table]);
      else expect(a).toMatchObject(want);
      expect(successes).toBe(want !== 'same' && want !== 'pass' && want.rcode === 'NOERROR' ? 1 : 0);
      // The same question gets the same object (the server reuses its encoding).
      if (!later) expect(await h.handle(query(name, client))).toBe(a);
    });
  }
});

describe("AutopathHandler with the node's search domains", () => {
  const intranet = answer('NOERROR', [rr('intranet.corp.example', 'A', '192.0.2.80', 60)], 'forward');
  const labOnly = answer('NOERROR', [rr('wiki.lab.example', 'A', '192.0.2.81', 60)], 'forward');
  const bare = answer('NOERROR', [rr('wiki', 'A', '192.0.2.82', 60)], 'forward');
  const cart = answer('NOERROR', [rr('cart.shop.svc.cluster.local', 'A', '10.96.0.11')]);
  const table = { 'intranet.corp.example': intranet, 'wiki.lab.example': labOnly, wiki: bare, 'intranet.lab.example': labOnly, 'cart.shop.svc.cluster.local': cart };
  const pods: Record<string, string> = { '10.244.1.5': 'shop', '10.244.2.5': 'jobs' };
  const nodeSearch = ['corp.example', 'shop.svc.cluster.local', 'lab.example'];
  const rows: Array<[string, string, string, string[], Partial<DnsAnswer>]> = [
    // [name asked, client, what, names the chain was asked, the answer]
    ['intranet.shop.svc.cluster.local', '10.244.1.5', 'the first node domain, before a later one', ['intranet.shop.svc.cluster.local', 'intranet.svc.cluster.local', 'intranet.cluster.local', 'intranet.corp.example'], { rcode: 'NOERROR', answers: [rr('intranet.shop.svc.cluster.local', 'CNAME', 'intranet.corp.example', 60), ...intranet.answers] }],
    ['wiki.shop.svc.cluster.local', '10.244.1.5', 'a later node domain, before the name itself; its own first domain not asked twice', ['wiki.shop.svc.cluster.local', 'wiki.svc.cluster.local', 'wiki.cluster.local', 'wiki.corp.example', 'wiki.lab.example'], { rcode: 'NOERROR', answers: [rr('wiki.shop.svc.cluster.local', 'CNAME', 'wiki.lab.example', 60), ...labOnly.answers] }],
    ['cart.jobs.svc.cluster.local', '10.244.2.5', "another namespace's domain of the node, inside the zone", ['cart.jobs.svc.cluster.local', 'cart.svc.cluster.local', 'cart.cluster.local', 'cart.corp.example', 'cart.shop.svc.cluster.local'], { rcode: 'NOERROR', answers: [rr('cart.jobs.svc.cluster.local', 'CNAME', 'cart.shop.svc.cluster.local', 5), ...cart.answers] }],
    ['nowhere.shop.svc.cluster.local', '10.244.1.5', 'NXDOMAIN everywhere', ['nowhere.shop.svc.cluster.local', 'nowhere.svc.cluster.local', 'nowhere.cluster.local', 'nowhere.corp.example', 'nowhere.lab.example', 'nowhere'], { rcode: 'NXDOMAIN', clientBound: true }],
  ];
  it.each(rows)('%s from %s (%s)', async (name, client, _, wantAsked, want) => {
    const { asked, next } = scripted(table);
    const h = new AutopathHandler({ zone, nodeSearch, namespaceOf: (ip) => pods[ip], next });
    const a = await h.handle(query(name, client));
    expect(asked).toEqual(wantAsked);
    expect(a).toMatchObject({ ...want, clientBound: true });
  });
});

describe("the Pod index's namespace by address", () => {
  it.each([
    ['10.244.1.5', 'shop'],
    ['fd00:0244:0000::5', 'shop'],
    ['10.244.2.5', 'jobs'],
    // Host network: the node's address is two namespaces' Pods; a finished Pod counts for nothing.
    ['192.168.1.10', undefined],
    ['10.244.1.6', undefined],
    ['10.244.7.7', undefined],
  ])('%s is a Pod of %s', (ip, want) => {
    const store = new Store(['Pod']);
    store.apply([
      ...parseObject(pod('a', 'shop', { phase: 'Running', podIPs: [{ ip: '10.244.1.5' }, { ip: 'fd00:244::5' }] })),
      ...parseObject(pod('b', 'jobs', { phase: 'Running', podIP: '10.244.2.5' })),
      ...parseObject(pod('done', 'jobs', { phase: 'Succeeded', podIP: '10.244.1.6' })),
      ...parseObject(pod('h1', 'kube-system', { phase: 'Running', podIP: '192.168.1.10' })),
      ...parseObject(pod('h2', 'monitoring', { phase: 'Running', podIP: '192.168.1.10' })),
    ]);
    const index = new RecordIndex(zone);
    followPods(store, index);
    expect(index.podNamespace(ip)).toBe(want);
  });

  it('follows a Pod that goes, and one that comes with the same address in another namespace', () => {
    const store = new Store(['Pod']);
    const index = new RecordIndex(zone);
    followPods(store, index);
    store.apply(parseObject(pod('a', 'shop', { phase: 'Running', podIP: '10.244.1.5' })));
    expect([index.podNamespace('10.244.1.5'), index.hasNamespace('shop')]).toEqual(['shop', true]);
    store.apply(parseObject(pod('a', 'shop', { phase: 'Failed', podIP: '10.244.1.5' })));
    store.apply(parseObject(pod('b', 'jobs', { phase: 'Running', podIP: '10.244.1.5' })));
    expect([index.podNamespace('10.244.1.5'), index.hasNamespace('shop'), index.hasPodIP('jobs', '10.244.1.5'), index.hasPodIP('shop', '10.244.1.5')]).toEqual(['jobs', false, true, false]);
  });
});
