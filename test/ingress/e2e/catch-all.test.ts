// The defaultBackend of an Ingress without rules through `netplane ingress`, as ingress-nginx scopes it: it replaces
// only the catch-all server, so it answers hosts no rule names; a host with rules of its own answers its misses 404.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EchoBackend, GatewayProcess, echoOf, ingressClassYaml, ingressYaml, serviceYaml } from './harness.ts';

describe('netplane ingress catch-all defaultBackend', () => {
  const app = new EchoBackend('app');
  const fallback = new EchoBackend('fallback');
  const gw = new GatewayProcess();

  beforeAll(async () => {
    await Promise.all([app.start(), fallback.start()]);
    const catchAll = `---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: { name: catch-all, namespace: default }
spec: { ingressClassName: netplane, defaultBackend: { service: { name: fallback, port: { number: 80 } } } }
`;
    gw.write('all.yaml', [ingressClassYaml, serviceYaml('app', [app]), serviceYaml('fallback', [fallback]), ingressYaml({ name: 'shop', host: 'shop.test', paths: [['Prefix', '/cart', 'app']] })].join('---\n') + catchAll);
    await gw.start([], { host: 'shop.test', path: '/cart' });
  }, 30_000);
  afterAll(async () => {
    await gw.stop();
    await Promise.all([app.stop(), fallback.stop()]);
  });

  it.each([
    ['shop.test', '/cart/1', 'app'],
    ['shop.test', '/about', 404],
    ['elsewhere.test', '/about', 'fallback'],
  ] as const)('%s %s -> %s', async (host, path, want) => {
    const r = await gw.get(host, path);
    if (want === 404) expect(r.status).toBe(404);
    else expect(echoOf(r).backend).toBe(want);
  });
});
