// upstream-hash-by-subset through `netplane ingress`, as ingress-nginx's chashsubset balancer does it: the six
// endpoints of a Service, in address order, are cut into subsets of upstream-hash-by-subset-size (default 3); the
// requests of one key go to the endpoints of one subset, spread over all of them, and keys spread over the subsets.
// An endpoint that stops answering is left out of its subset. A size that is not a whole number from 1 to 1000
// takes that one Ingress out of service, with the reason logged.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EchoBackend, GatewayProcess, echoOf, ingressClassYaml, ingressYaml, serviceYaml } from './harness.ts';

const ngx = 'nginx.ingress.kubernetes.io/';

describe('netplane ingress upstream-hash-by-subset', () => {
  const backends = ['e0', 'e1', 'e2', 'e3', 'e4', 'e5'].map((n) => new EchoBackend(n));
  const gw = new GatewayProcess();
  const subset = (name: string, more: Record<string, string> = {}) =>
    ingressYaml({ name, host: `${name}.test`, paths: [['Prefix', '/', 'pool']], annotations: { [`${ngx}upstream-hash-by`]: '$http_x_user', [`${ngx}upstream-hash-by-subset`]: 'true', ...more } });

  /** The subsets of `size` as ingress-nginx cuts them: the endpoints by address (`127.0.0.1:port` as text), in runs. */
  function subsetsOf(size: number): string[][] {
    const sorted = [...backends].sort((a, b) => (`127.0.0.1:${a.port}` < `127.0.0.1:${b.port}` ? -1 : 1)).map((b) => b.name);
    const out: string[][] = [];
    for (let i = 0; i < Math.ceil(sorted.length / size); i++) out.push(Array.from({ length: size }, (_, j) => sorted[(i * size + j) % sorted.length]!));
    return out;
  }

  /** The backends that answered `n` requests of user `key` on `host`. */
  async function seen(host: string, key: string, n = 40): Promise<Set<string>> {
    const got = new Set<string>();
    for (let i = 0; i < n; i++) {
      const r = await gw.get(host, '/', { headers: { 'x-user': key } });
      expect(r.status).toBe(200);
      got.add(echoOf(r).backend);
    }
    return got;
  }

  beforeAll(async () => {
    for (const b of backends) await b.start();
    gw.write(
      'all.yaml',
      [
        ingressClassYaml,
        serviceYaml('pool', backends),
        subset('three'),
        subset('two', { [`${ngx}upstream-hash-by-subset-size`]: '2' }),
        subset('zero', { [`${ngx}upstream-hash-by-subset-size`]: '0' }),
        subset('words', { [`${ngx}upstream-hash-by-subset-size`]: 'three' }),
        ingressYaml({ name: 'single', host: 'single.test', paths: [['Prefix', '/', 'pool']], annotations: { [`${ngx}upstream-hash-by`]: '$http_x_user' } }),
      ].join('---\n'),
    );
    await gw.start([], { host: 'three.test' });
  }, 30_000);
  afterAll(async () => {
    await gw.stop();
    for (const b of backends) await b.stop().catch(() => {});
  });

  it.each([
    ['three.test', 3],
    ['two.test', 2],
  ])('%s: the requests of a key reach every endpoint of one subset of %i, and keys use every subset', async (host, size) => {
    const subsets = subsetsOf(size).map((s) => [...new Set(s)].sort().join(' '));
    const used = new Set<string>();
    for (let k = 0; k < 12; k++) {
      const got = [...(await seen(host, `user-${k}`))].sort().join(' ');
      expect(subsets).toContain(got);
      used.add(got);
    }
    expect(used.size).toBe(subsets.length);
  });

  it('keeps a key on one endpoint without upstream-hash-by-subset', async () => {
    for (let k = 0; k < 4; k++) expect((await seen('single.test', `user-${k}`, 10)).size).toBe(1);
  });

  it('takes an Ingress with a size that is not a whole number from 1 to 1000 out of service, naming it', async () => {
    for (const [name, value] of [['zero', '0'], ['words', 'three']]) {
      expect((await gw.get(`${name}.test`, '/')).status).toBe(404);
      const records = gw.output.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
      const reason = String(records.find((r) => r.ingress === `default/${name}` && r.level === 40)?.reason);
      expect(reason).toContain(`${ngx}upstream-hash-by-subset-size is "${value}"`);
      expect(reason).toContain('whole number from 1 to 1000');
    }
  });

  it("leaves an endpoint that stops answering out of its key's subset", async () => {
    const key = 'user-0';
    const before = await seen('three.test', key);
    const down = backends.find((b) => b.name === [...before].sort()[0])!;
    await down.stop();
    const after = await seen('three.test', key);
    expect([...after].sort()).toEqual([...before].filter((n) => n !== down.name).sort());
  });
});
