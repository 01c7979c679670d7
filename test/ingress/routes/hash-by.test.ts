// upstream-hash-by through the route compiler: the expression becomes the policy's key parts; an empty one asks for
// nothing; one that cannot be honoured, or hash subsets, take the Ingress out of service; a canary hashes by its own.
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
    [{ [`${ngx}upstream-hash-by`]: '$request_uri', [`${ngx}upstream-hash-by-subset`]: 'true' }, 'not onto a subset'],
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
