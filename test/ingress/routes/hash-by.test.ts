// upstream-hash-by through the route compiler: the expression becomes the policy's key parts; an empty one asks for
// nothing; one that cannot be honoured takes the Ingress out of service; a canary hashes by its own. Then
// upstream-hash-by-subset and its size (default 3); a size that is not a whole number from 1 to 1000 is a problem.
import { describe, expect, it } from 'vitest';
import type { HashKeyPart } from '../../../ingress/routes/types.ts';
import { compile, ingress, rule } from './fixtures.ts';

const ngx = 'nginx.ingress.kubernetes.io/';
const web = (name: string, annotations: Record<string, string>, host = `${name}.com`) => ingress(name, { namespace: 'shop', annotations, rules: [rule(host, `Prefix / ${name}:80`)] });

describe('upstream-hash-by in the route compiler', () => {
  // [annotations, the policy's upstreamHashBy, or a word of the problem]
  const cases: [Record<string, string>, readonly HashKeyPart[] | undefined | string][] = [
    [{ [`${ngx}upstream-hash-by`]: '$request_uri' }, [{ variable: 'request_uri' }]],
    [{ 'netplane.io/upstream-hash-by': '$host$request_uri' }, [{ variable: 'host' }, { variable: 'request_uri' }]],
    [{ [`${ngx}upstream-hash-by`]: ' $http_x_user ' }, [{ header: 'x-user' }]],
    [{ [`${ngx}upstream-hash-by`]: '' }, undefined],
    [{ [`${ngx}upstream-hash-by`]: '$remote_addr', [`${ngx}upstream-hash-by-subset`]: 'false', [`${ngx}upstream-hash-by-subset-size`]: '3' }, [{ variable: 'remote_addr' }]],
    [{ [`${ngx}upstream-hash-by`]: '$request_id' }, '$request_id is not a variable netplane hashes by'],
    [{ [`${ngx}upstream-hash-by`]: 'uri' }, 'uses no variable'],
  ];
  it.each(cases)('%j', (annotations, want) => {
    const { table } = compile([web('a', annotations)]);
    if (typeof want === 'string') {
      expect(table.problems.map((p) => p.ingress)).toEqual(['shop/a']);
      expect(table.problems[0]!.reason).toContain(want);
      expect(table.match('a.com', '/')).toBeUndefined();
    } else {
      expect(table.problems).toEqual([]);
      expect(table.match('a.com', '/')?.policy.upstreamHashBy).toEqual(want);
    }
  });

  it("hashes a canary's requests by the canary's own upstream-hash-by, or not at all, as its load-balance", () => {
    const main = web('main', { [`${ngx}upstream-hash-by`]: '$request_uri' }, 'a.com');
    const canary = (annotations: Record<string, string>) => web('next', { [`${ngx}canary`]: 'true', ...annotations }, 'a.com');
    const canaryHash = (c: ReturnType<typeof web>) => compile([main, c]).table.match('a.com', '/')?.canary?.policy.upstreamHashBy;
    expect(canaryHash(canary({ [`${ngx}upstream-hash-by`]: '$http_x_user' }))).toEqual([{ header: 'x-user' }]);
    expect(canaryHash(canary({}))).toBeUndefined();
    expect(compile([main, canary({})]).table.match('a.com', '/')?.policy.upstreamHashBy).toEqual([{ variable: 'request_uri' }]);
  });
});

describe('upstream-hash-by-subset in the route compiler', () => {
  const hashBy = { [`${ngx}upstream-hash-by`]: '$request_uri' };
  // [annotations, the policy's upstreamHashSubset, or a word of the problem]
  const cases: [Record<string, string>, number | undefined | string][] = [
    [{ ...hashBy, [`${ngx}upstream-hash-by-subset`]: 'true' }, 3],
    [{ ...hashBy, [`${ngx}upstream-hash-by-subset`]: 'true', [`${ngx}upstream-hash-by-subset-size`]: '5' }, 5],
    [{ ...hashBy, 'netplane.io/upstream-hash-by-subset': 'True', [`${ngx}upstream-hash-by-subset-size`]: ' 1 ' }, 1],
    [{ ...hashBy, [`${ngx}upstream-hash-by-subset`]: 'false', [`${ngx}upstream-hash-by-subset-size`]: '5' }, undefined],
    [{ ...hashBy, [`${ngx}upstream-hash-by-subset-size`]: '5' }, undefined],
    [{ [`${ngx}upstream-hash-by-subset`]: 'true', [`${ngx}upstream-hash-by-subset-size`]: '5' }, undefined],
    [{ ...hashBy, [`${ngx}upstream-hash-by-subset`]: 'true', [`${ngx}upstream-hash-by-subset-size`]: '0' }, 'whole number from 1 to 1000'],
    [{ ...hashBy, [`${ngx}upstream-hash-by-subset`]: 'true', [`${ngx}upstream-hash-by-subset-size`]: '-2' }, 'whole number from 1 to 1000'],
    [{ ...hashBy, [`${ngx}upstream-hash-by-subset`]: 'true', [`${ngx}upstream-hash-by-subset-size`]: '2.5' }, 'whole number from 1 to 1000'],
    [{ ...hashBy, [`${ngx}upstream-hash-by-subset`]: 'true', [`${ngx}upstream-hash-by-subset-size`]: 'three' }, 'whole number from 1 to 1000'],
    [{ ...hashBy, [`${ngx}upstream-hash-by-subset`]: 'true', [`${ngx}upstream-hash-by-subset-size`]: '1001' }, 'whole number from 1 to 1000'],
    [{ [`${ngx}upstream-hash-by-subset-size`]: 'x' }, 'whole number from 1 to 1000'],
    [{ ...hashBy, [`${ngx}upstream-hash-by-subset`]: 'yes' }, '"true" and "false"'],
  ];
  it.each(cases)('%j', (annotations, want) => {
    const { table } = compile([web('a', annotations), web('b', {})]);
    if (typeof want === 'string') {
      expect(table.problems.map((p) => p.ingress)).toEqual(['shop/a']);
      expect(table.problems[0]!.reason).toContain(want);
      expect(table.problems[0]!.reason).toContain('upstream-hash-by-subset');
      expect(table.match('a.com', '/')).toBeUndefined();
      expect(table.match('b.com', '/')?.ingress).toBe('shop/b');
    } else {
      expect(table.problems).toEqual([]);
      expect(table.match('a.com', '/')?.policy.upstreamHashSubset).toEqual(want);
    }
  });

  it("gives a canary its own subsets, or none, with its own upstream-hash-by", () => {
    const main = web('main', { ...hashBy, [`${ngx}upstream-hash-by-subset`]: 'true' }, 'a.com');
    const canary = (annotations: Record<string, string>) => web('next', { [`${ngx}canary`]: 'true', ...annotations }, 'a.com');
    const policies = (c: ReturnType<typeof web>) => {
      const r = compile([main, c]).table.match('a.com', '/');
      return [r?.policy.upstreamHashSubset, r?.canary?.policy.upstreamHashSubset];
    };
    expect(policies(canary({ ...hashBy, [`${ngx}upstream-hash-by-subset`]: 'true', [`${ngx}upstream-hash-by-subset-size`]: '2' }))).toEqual([3, 2]);
    expect(policies(canary(hashBy))).toEqual([3, undefined]);
    expect(policies(canary({}))).toEqual([3, undefined]);
  });
});
