// --rewrite-name rules as tables: flag values in, rules or refusals out; names rewritten and mapped back.
import { describe, expect, it } from 'vitest';
import { isAskable, parseNameRule, revertName, rewriteQueryName, RewriteRuleError, type NameRule } from '../../../dns/rewrite/rules.ts';

describe('parseNameRule', () => {
  const good: Array<[string, NameRule]> = [
    ['exact:api.example.com:api.prod.svc.cluster.local', { match: 'exact', from: 'api.example.com', to: 'api.prod.svc.cluster.local' }],
    ['exact:API.Example.com.:web.default.svc.cluster.local.', { match: 'exact', from: 'api.example.com', to: 'web.default.svc.cluster.local' }],
    ['suffix:.example.com:.svc.cluster.local', { match: 'suffix', from: '.example.com', to: '.svc.cluster.local' }],
    ['suffix:example.com.:cluster.local', { match: 'suffix', from: 'example.com', to: 'cluster.local' }],
    ['exact:_http._tcp.a.example:_http._tcp.web.default.svc.cluster.local', { match: 'exact', from: '_http._tcp.a.example', to: '_http._tcp.web.default.svc.cluster.local' }],
  ];
  for (const [raw, want] of good) it(raw, () => expect(parseNameRule(raw)).toEqual(want));

  const bad = ['bogus', 'exact:a.com', 'regex:a:b', 'exact:a.com:b.com:c', 'exact::b.com', 'exact:a..com:b.com', 'exact:.a.com:b.com', 'suffix:.:b.com', 'exact:a b.com:c.com', `exact:${'x'.repeat(64)}.com:b.com`, 'exact:a.com:*.b.com'];
  for (const raw of bad) it(`refuses ${raw}`, () => expect(() => parseNameRule(raw)).toThrow(RewriteRuleError));
});

describe('rewriting names', () => {
  const rules = ['exact:api.example.com:web.default.svc.cluster.local', 'suffix:.corp.example:.svc.cluster.local', 'suffix:.svc.cluster.local:.never.example'].map(parseNameRule);
  const cases: Array<[string, string | undefined]> = [
    ['api.example.com', 'web.default.svc.cluster.local'],
    ['x.api.example.com', undefined],
    ['web.default.corp.example', 'web.default.svc.cluster.local'],
    // The first rule that matches is the only one (CoreDNS stop): not rewritten again by the third.
    ['db.shop.corp.example', 'db.shop.svc.cluster.local'],
    ['corp.example', undefined],
    ['web.default.svc.cluster.local', 'web.default.never.example'],
    ['example.org', undefined],
  ];
  for (const [asked, want] of cases) it(`${asked} → ${want ?? 'unchanged'}`, () => expect(rewriteQueryName(rules, asked)?.name).toBe(want));

  it('matches a suffix as text, as CoreDNS: without the leading dot it also matches inside a label', () => {
    const loose = [parseNameRule('suffix:example.com:cluster.local')];
    expect(rewriteQueryName(loose, 'myexample.com')?.name).toBe('mycluster.local');
    expect(rewriteQueryName(loose, 'example.com')?.name).toBe('cluster.local');
  });

  const back: Array<[string, string, string]> = [
    ['exact:api.example.com:web.default.svc.cluster.local', 'web.default.svc.cluster.local', 'api.example.com'],
    ['exact:api.example.com:web.default.svc.cluster.local', 'x.web.default.svc.cluster.local', 'x.api.example.com'],
    ['exact:api.example.com:web.default.svc.cluster.local', 'Web.Default.svc.cluster.local', 'api.example.com'],
    ['exact:api.example.com:web.default.svc.cluster.local', 'xweb.default.svc.cluster.local', 'xweb.default.svc.cluster.local'],
    ['exact:api.example.com:web.default.svc.cluster.local', 'cluster.local', 'cluster.local'],
    ['suffix:.corp.example:.svc.cluster.local', 'web.default.svc.cluster.local', 'web.default.corp.example'],
    ['suffix:.corp.example:.svc.cluster.local', 'DB-0.db.shop.svc.cluster.local', 'DB-0.db.shop.corp.example'],
    ['suffix:.corp.example:.svc.cluster.local', 'cluster.local', 'cluster.local'],
    ['suffix:.corp.example:.svc.cluster.local', 'lb.elb.amazonaws.com', 'lb.elb.amazonaws.com'],
  ];
  for (const [rule, name, want] of back) it(`${rule}: ${name} back to ${want}`, () => expect(revertName(parseNameRule(rule), name)).toBe(want));

  it('knows names that cannot be asked', () => {
    expect(isAskable('a.b')).toBe(true);
    expect(isAskable('.svc.cluster.local')).toBe(false);
    expect(isAskable(`${'a'.repeat(63)}.`.repeat(4) + 'b')).toBe(false);
    expect(isAskable(`${'a'.repeat(64)}.b`)).toBe(false);
  });
});
