// upstream-hash-by through `netplane ingress`: requests of one key (a URI, a header, a query argument, a cookie)
// always reach the same endpoint of a four-endpoint Service, different keys spread over the endpoints; when an
// endpoint leaves the Service only its keys move, and when one stops answering its keys go to the next endpoint on
// the ring while the others keep theirs. Cookie affinity comes first, as in ingress-nginx; an expression with a
// variable netplane does not fill in takes the Ingress out of service.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../helpers/wait.ts';
import { EchoBackend, GatewayProcess, echoOf, ingressClassYaml, ingressYaml, serviceYaml } from './harness.ts';

const ngx = 'nginx.ingress.kubernetes.io/';

describe('netplane ingress upstream-hash-by', () => {
  const backends = ['e0', 'e1', 'e2', 'e3'].map((n) => new EchoBackend(n));
  const gw = new GatewayProcess();
  const hashed = (name: string, by: string, more: Record<string, string> = {}) =>
    ingressYaml({ name, host: `${name}.test`, paths: [['Prefix', '/', 'pool']], annotations: { [`${ngx}upstream-hash-by`]: by, ...more } });
  const manifests = (pool: readonly EchoBackend[]) =>
    [
      ingressClassYaml,
      serviceYaml('pool', pool),
      hashed('uri', '$request_uri'),
      hashed('user', '$http_x_user'),
      hashed('arg', 'v1-${arg_id}'),
      hashed('sticky', '$request_uri', { [`${ngx}affinity`]: 'cookie' }),
      hashed('bad', '$request_id'),
      ingressYaml({ name: 'plain', host: 'plain.test', paths: [['Prefix', '/', 'pool']] }),
    ].join('---\n');

  /** The backend that answers a request for `host` with `key` placed as that host hashes by. */
  async function who(host: string, key: string, headers: Record<string, string> = {}): Promise<string> {
    const [path, extra] = host === 'user.test' ? ['/same', { 'x-user': key }] : host === 'arg.test' ? [`/p?x=1&id=${key}`, {}] : [`/item/${key}?q=1`, {}];
    const r = await gw.get(host, path, { headers: { ...extra, ...headers } });
    expect(r.status).toBe(200);
    return echoOf(r).backend;
  }
  const keys = Array.from({ length: 40 }, (_, i) => `k${i * 7919}`);

  beforeAll(async () => {
    for (const b of backends) await b.start();
    gw.write('all.yaml', manifests(backends));
    await gw.start([], { host: 'uri.test' });
  }, 30_000);
  afterAll(async () => {
    await gw.stop();
    for (const b of backends) await b.stop().catch(() => {});
  });

  it.each(['uri.test', 'user.test', 'arg.test'])('%s: a key stays on one endpoint, and keys spread over the endpoints', async (host) => {
    const seen = new Map<string, string>();
    for (const key of keys) {
      const first = await who(host, key);
      for (let i = 0; i < 5; i++) expect(await who(host, key)).toBe(first);
      seen.set(key, first);
    }
    expect(new Set(seen.values()).size).toBeGreaterThanOrEqual(3);
  });

  it('spreads requests without a hash over every endpoint (the route without the annotation is round robin)', async () => {
    const got = new Set<string>();
    for (let i = 0; i < 8; i++) got.add(echoOf(await gw.get('plain.test', '/item/k0?q=1')).backend);
    expect(got.size).toBe(4);
  });

  it('lets cookie affinity come first, as ingress-nginx does', async () => {
    const r = await gw.get('sticky.test', '/item/a');
    const cookie = String(r.headers['set-cookie']).split(';')[0]!;
    expect(cookie).toMatch(/^INGRESSCOOKIE=/);
    const pinned = echoOf(r).backend;
    // With the cookie, every URI goes to the cookie's endpoint, whatever its hash.
    for (const key of keys.slice(0, 12)) expect(await who('sticky.test', key, { cookie })).toBe(pinned);
  });

  it('takes an Ingress whose expression uses a variable it does not fill in out of service', async () => {
    expect((await gw.get('bad.test', '/')).status).toBe(404);
    const records = gw.output.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(String(records.find((r) => r.ingress === 'default/bad' && r.level === 40)?.reason)).toContain('$request_id is not a variable netplane hashes by');
  });

  it('moves only the keys of an endpoint that leaves the Service', async () => {
    const before = new Map<string, string>();
    for (const key of keys) before.set(key, await who('uri.test', key));
    const gone = before.get(keys[0]!)!;
    gw.write('all.yaml', manifests(backends.filter((b) => b.name !== gone)));
    await waitFor(`${gone} to leave the Service`, async () => (await who('uri.test', keys[0]!)) !== gone, 10_000, 50);
    for (const key of keys) {
      const now = await who('uri.test', key);
      if (before.get(key) === gone) expect(now).not.toBe(gone);
      else expect([key, now]).toEqual([key, before.get(key)]);
    }
    gw.write('all.yaml', manifests(backends));
    await waitFor(`${gone} to be back`, async () => (await who('uri.test', keys[0]!)) === gone, 10_000, 50);
  });

  it('sends the keys of an endpoint that stopped answering to the next on the ring, and keeps the others', async () => {
    const before = new Map<string, string>();
    for (const key of keys) before.set(key, await who('user.test', key));
    const down = backends.find((b) => b.name === before.get(keys[1]!))!;
    await down.stop();
    const takers = new Map<string, string>();
    for (let round = 0; round < 3; round++) {
      for (const key of keys) {
        const now = await who('user.test', key);
        if (before.get(key) !== down.name) expect([key, now]).toEqual([key, before.get(key)]);
        else {
          expect(now).not.toBe(down.name);
          // Always the same next endpoint for a key, retried or ejected.
          expect([key, now]).toEqual([key, takers.get(key) ?? now]);
          takers.set(key, now);
        }
      }
    }
  });
});
