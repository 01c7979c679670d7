// The rewrite handler in front of the cluster zone and a fake forwarder: query name and type in, the answer as
// zone-file lines out, every name mapped back to the one asked.
import { describe, expect, it } from 'vitest';
import { parseObject } from '../../../cluster/model/index.ts';
import { ServiceMap } from '../../../cluster/servicemap/index.ts';
import { Store } from '../../../cluster/store.ts';
import { chainOf, RewriteHandler } from '../../../dns/rewrite/handler.ts';
import { parseNameRule } from '../../../dns/rewrite/rules.ts';
import type { DnsAnswer, DnsHandler, DnsQuery, ResourceRecord } from '../../../dns/types.ts';
import { ClusterZoneHandler } from '../../../dns/zone/handler.ts';
import { RecordIndex } from '../../../dns/zone/records.ts';
import { service, slice } from '../../fixtures/objects.ts';

const rr = (name: string, type: string, data: unknown) => ({ name, type, class: 'IN', ttl: 60, data }) as ResourceRecord;

/** Knows *.example.org: an A each, and cdn.example.org as a CNAME to an edge name. Asked names are kept. */
function fakeForwarder(asked: string[]): DnsHandler {
  return {
    name: 'forward',
    async handle(q: DnsQuery): Promise<DnsAnswer> {
      asked.push(`${q.name} ${q.type}`);
      const base = { authoritative: false, authorities: [], additionals: [], source: 'forward' };
      if (!q.lname.endsWith('example.org')) return { ...base, rcode: 'NXDOMAIN', answers: [], authorities: [rr('org', 'SOA', { mname: 'a0.org', rname: 'x.org' })] };
      if (q.lname === 'cdn.example.org') return { ...base, rcode: 'NOERROR', answers: [rr(q.name, 'CNAME', 'edge.cdn.net'), rr('edge.cdn.net', 'A', '198.51.100.9')] };
      return { ...base, rcode: 'NOERROR', answers: [rr(q.name, 'A', '198.51.100.1')] };
    },
  };
}

function setup(rules: string[]) {
  const store = new Store();
  const ep = (ip: string, extra: object = {}) => ({ addresses: [ip], ...extra });
  store.apply(
    [
      service('web', { clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80 }] }),
      slice('web-1', 'web', [ep('10.244.1.5')], [{ name: 'http', port: 8080 }]),
      service('db', { clusterIP: 'None', ports: [{ name: 'pg', port: 5432 }] }, { namespace: 'shop' }),
      slice('db-1', 'db', [ep('10.244.2.7', { hostname: 'db-0' })], [{ name: 'pg', port: 5432 }], { namespace: 'shop' }),
      service('alias', { type: 'ExternalName', externalName: 'web.default.svc.cluster.local' }),
    ].flatMap((o) => parseObject(o)),
  );
  const index = new RecordIndex('cluster.local');
  index.update(new ServiceMap(store, { nodeName: 'n1' }));
  const zone = new ClusterZoneHandler(index, { ttl: 5, pods: 'disabled', reverseCIDRs: [], nameservers: () => ['10.96.0.53'], synced: () => true });
  const asked: string[] = [];
  const chain = [zone, fakeForwarder(asked)];
  return { handler: new RewriteHandler(rules.map(parseNameRule), chainOf(chain)), asked };
}

const query = (name: string, type: string): DnsQuery => ({
  id: 1, name, lname: name.toLowerCase(), type, qtype: 0, qclass: 1, rd: true, cd: false, transport: 'udp', dnssecOk: false, client: { address: '127.0.0.1', port: 1 },
});
const line = (r: ResourceRecord) => {
  const d = (r as { data: any }).data;
  return `${r.name} ${r.type} ${r.type === 'SRV' ? `${d.port} ${d.target}` : r.type === 'SOA' ? d.mname : String(d)}`;
};

async function ask(h: RewriteHandler, name: string, type: string) {
  const a = await h.handle(query(name, type));
  if (a === 'pass') return 'pass';
  return { rcode: a.rcode, aa: a.authoritative, answer: a.answers.map(line), ns: a.authorities.map(line), extra: a.additionals.map(line) };
}

describe('rewrite handler', () => {
  const rules = [
    'exact:api.example.com:web.default.svc.cluster.local',
    'exact:www.example.com:cdn.example.org',
    'exact:alias.example.com:alias.default.svc.cluster.local',
    'suffix:.corp.example:.svc.cluster.local',
    'suffix:.old.example:.example.org',
  ];
  const { handler, asked } = setup(rules);
  const cases: Array<{ q: [string, string]; want: object | 'pass' }> = [
    // Into the cluster zone: authoritative, owner names back to the name asked.
    { q: ['api.example.com', 'A'], want: { rcode: 'NOERROR', aa: true, answer: ['api.example.com A 10.96.0.10'], ns: [] } },
    { q: ['api.example.com', 'AAAA'], want: { rcode: 'NOERROR', answer: [], ns: ['cluster.local SOA ns.dns.cluster.local'] } },
    { q: ['alias.example.com', 'A'], want: { rcode: 'NOERROR', answer: ['alias.example.com CNAME web.default.svc.cluster.local', 'web.default.svc.cluster.local A 10.96.0.10'] } },
    { q: ['web.default.corp.example', 'A'], want: { rcode: 'NOERROR', aa: true, answer: ['web.default.corp.example A 10.96.0.10'] } },
    { q: ['db.shop.corp.example', 'A'], want: { answer: ['db.shop.corp.example A 10.244.2.7'] } },
    { q: ['db-0.db.shop.corp.example', 'A'], want: { answer: ['db-0.db.shop.corp.example A 10.244.2.7'] } },
    { q: ['_pg._tcp.db.shop.corp.example', 'SRV'], want: { answer: ['_pg._tcp.db.shop.corp.example SRV 5432 db-0.db.shop.corp.example'], extra: ['db-0.db.shop.corp.example A 10.244.2.7'] } },
    { q: ['_http._tcp.web.default.corp.example', 'SRV'], want: { answer: ['_http._tcp.web.default.corp.example SRV 80 web.default.corp.example'], extra: ['web.default.corp.example A 10.96.0.10'] } },
    { q: ['nope.default.corp.example', 'A'], want: { rcode: 'NXDOMAIN', aa: true, ns: ['cluster.local SOA ns.dns.cluster.local'] } },
    // Forwarded: the CNAME's owner is the name asked, the rest as upstream gave it.
    { q: ['www.example.com', 'A'], want: { rcode: 'NOERROR', aa: false, answer: ['www.example.com CNAME edge.cdn.net', 'edge.cdn.net A 198.51.100.9'] } },
    { q: ['shop.old.example', 'A'], want: { rcode: 'NOERROR', answer: ['shop.old.example A 198.51.100.1'] } },
    // No rule matches: the server's chain answers it as it is.
    { q: ['web.default.svc.cluster.local', 'A'], want: 'pass' },
    { q: ['x.api.example.com', 'A'], want: 'pass' },
  ];
  for (const c of cases) {
    it(`${c.q[0]} ${c.q[1]}`, async () => {
      const got = await ask(handler, ...c.q);
      if (c.want === 'pass') expect(got).toBe('pass');
      else expect(got).toMatchObject(c.want);
    });
  }

  it('asks upstream the rewritten name in lower case, as CoreDNS rewrites the lower-cased name', async () => {
    asked.length = 0;
    await handler.handle(query('Shop.OLD.example', 'A'));
    await handler.handle(query('WWW.example.com', 'A'));
    expect(asked).toEqual(['shop.example.org A', 'cdn.example.org A']);
  });

  it('hands back the same answer object for the same question while the zone is unchanged', async () => {
    const a1 = await handler.handle(query('api.example.com', 'A'));
    const a2 = await handler.handle(query('API.example.com', 'A'));
    expect(a2).toBe(a1);
    expect((a1 as DnsAnswer).source).toBe('kubernetes');
  });

  it('answers NXDOMAIN for a rewritten name too long to ask, and REFUSED when the rest of the chain passes', async () => {
    const long = setup([`suffix:.a.example:.${'b'.repeat(60)}.${'c'.repeat(60)}.${'d'.repeat(60)}.example`]);
    expect(await ask(long.handler, `${'x'.repeat(60)}.${'y'.repeat(20)}.a.example`, 'A')).toMatchObject({ rcode: 'NXDOMAIN', answer: [] });
    const passing = new RewriteHandler([parseNameRule('exact:a.example:b.example')], chainOf([{ name: 'none', handle: () => 'pass' }]));
    expect(await passing.handle(query('a.example', 'A'))).toMatchObject({ rcode: 'REFUSED' });
    const throwing = new RewriteHandler([parseNameRule('exact:a.example:b.example')], chainOf([{ name: 'bad', handle: () => { throw new Error('boom'); } }]));
    expect(await throwing.handle(query('a.example', 'A'))).toMatchObject({ rcode: 'SERVFAIL', source: 'bad' });
  });
});
