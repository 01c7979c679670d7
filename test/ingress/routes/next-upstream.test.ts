// proxy-next-upstream and proxy-next-upstream-timeout read as data (nginx's proxy_next_upstream values), a value
// netplane does not know refused with a problem naming it, and a canary sent on as its primary says.
import { describe, expect, it } from 'vitest';
import { readPolicy } from '../../../ingress/routes/policy.ts';
import { ignoredAnnotations } from '../../../ingress/routes/unhonoured.ts';
import { readsNginxName } from '../../../ingress/routes/annotations.ts';
import type { NextUpstreamPolicy } from '../../../ingress/routes/types.ts';
import { compile, defaults, ingress, rule } from './fixtures.ts';

const ngx = 'nginx.ingress.kubernetes.io/';
const np = 'netplane.io/';
const none: NextUpstreamPolicy = { error: false, timeout: false, invalidHeader: false, statuses: [], nonIdempotent: false };
const read = (annotations: Record<string, string>) => {
  const { policy } = readPolicy('shop', annotations, defaults);
  return { nextUpstream: policy.nextUpstream, nextUpstreamTimeoutMs: policy.nextUpstreamTimeoutMs };
};

describe('proxy-next-upstream', () => {
  it.each<[string, string | undefined, NextUpstreamPolicy | undefined]>([
    ['not set: nginx\'s default "error timeout"', undefined, undefined],
    ['empty: the default, as ingress-nginx reads an empty value', '', undefined],
    ['off', 'off', none],
    ['off wins over the others, as nginx merges it', 'error timeout http_503 off', none],
    ['error alone', 'error', { ...none, error: true }],
    ['timeout alone', 'timeout', { ...none, timeout: true }],
    ['the default spelled out', 'error timeout', { ...none, error: true, timeout: true }],
    ['statuses, sorted and once', 'error http_503 http_502 http_503 http_429 http_404 http_403 http_500 http_504', { ...none, error: true, statuses: [403, 404, 429, 500, 502, 503, 504] }],
    ['invalid_header and non_idempotent', 'error timeout invalid_header non_idempotent', { error: true, timeout: true, invalidHeader: true, statuses: [], nonIdempotent: true }],
    ['any spaces between values, any case (nginx reads them so)', '  Error   HTTP_503  ', { ...none, error: true, statuses: [503] }],
  ])('%s', (_what, value, want) => {
    expect(read(value === undefined ? {} : { [`${ngx}proxy-next-upstream`]: value }).nextUpstream).toEqual(want);
  });

  it('netplane.io/ wins over the nginx name', () => {
    expect(read({ [`${np}proxy-next-upstream`]: 'off', [`${ngx}proxy-next-upstream`]: 'error' }).nextUpstream).toEqual(none);
  });

  it.each(['error foo', 'http_501', 'error,timeout', 'updating', 'non-idempotent'])('refuses %j naming the value', (value) => {
    expect(() => read({ [`${ngx}proxy-next-upstream`]: value })).toThrow(/proxy-next-upstream is .* is not allowed: allowed are space-separated values of error, timeout, invalid_header, http_500/);
  });
});

describe('proxy-next-upstream-timeout', () => {
  it.each<[string, number | undefined]>([['30', 30_000], ['1', 1000], ['0', undefined], ['86400', 86_400_000]])('%s', (value, want) => {
    expect(read({ [`${ngx}proxy-next-upstream-timeout`]: value }).nextUpstreamTimeoutMs).toBe(want);
  });

  it.each(['1s', '-1', '1.5', 'off', '86401'])('refuses %j', (value) => {
    expect(() => read({ [`${ngx}proxy-next-upstream-timeout`]: value })).toThrow(/proxy-next-upstream-timeout is .*whole number from 0 to 86400/);
  });
});

describe('through the route compiler', () => {
  const web = (name: string, annotations: Record<string, string>) => ingress(name, { namespace: 'shop', annotations, rules: [rule(`${name}.com`, `Prefix / ${name}:80`)] });

  it('an unknown value takes the Ingress out of service with a problem naming it; the others are served', () => {
    const { table } = compile([web('a', { [`${ngx}proxy-next-upstream`]: 'error http_418' }), web('b', { [`${ngx}proxy-next-upstream`]: 'off' })]);
    expect(table.problems.map((p) => [p.ingress, p.keptLastGood])).toEqual([['shop/a', false]]);
    expect(table.problems[0]!.reason).toContain(`annotation ${ngx}proxy-next-upstream is "error http_418"; "http_418" is not allowed`);
    expect(table.match('a.com', '/')).toBeUndefined();
    expect(table.match('b.com', '/')?.policy.nextUpstream).toEqual(none);
  });

  it('is read, so no longer reported as ignored', () => {
    expect([readsNginxName('proxy-next-upstream'), readsNginxName('proxy-next-upstream-timeout')]).toEqual([true, true]);
    const annotations = { [`${ngx}proxy-next-upstream`]: 'off', [`${ngx}proxy-next-upstream-timeout`]: '5' };
    expect(ignoredAnnotations(annotations, readsNginxName)).toEqual({ tuning: [], unknown: [] });
  });

  it("a canary's requests go on as the primary's proxy-next-upstream and -timeout say, not the canary's own", () => {
    const main = ingress('main', { rules: [rule('a.com', 'Prefix / main:80')], annotations: { [`${ngx}proxy-next-upstream`]: 'off', [`${ngx}proxy-next-upstream-timeout`]: '2' } });
    const canary = ingress('c', {
      rules: [rule('a.com', 'Prefix / next:80')],
      annotations: { [`${ngx}canary`]: 'true', [`${ngx}canary-weight`]: '50', [`${ngx}proxy-next-upstream`]: 'error timeout http_503', [`${ngx}proxy-next-upstream-timeout`]: '30' },
    });
    const { table } = compile([main, canary]);
    expect(table.problems).toEqual([]);
    const route = table.match('a.com', '/')!;
    expect([route.policy.nextUpstream, route.policy.nextUpstreamTimeoutMs]).toEqual([none, 2000]);
    expect([route.canary?.policy.nextUpstream, route.canary?.policy.nextUpstreamTimeoutMs]).toEqual([none, 2000]);
  });
});
