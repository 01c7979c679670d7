// ingress-nginx never sends an ACME HTTP-01 challenge to HTTPS: its `no-tls-redirect-locations` (default
// "/.well-known/acme-challenge") makes a location whose path starts with it force_no_ssl_redirect, which wins over
// ssl-redirect and force-ssl-redirect (lua_ingress.lua redirect_to_https). cert-manager renews a certificate through
// a solver Ingress with the path `/.well-known/acme-challenge/<token>` on a host that has TLS already; redirected, the
// challenge depends on the HTTPS side (the public port, a client-certificate check) and can fail. Other paths of the
// host, /.well-known/acme-challenge/* under the host's `/` rule included, are redirected as before.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCert } from '../tls/pki.ts';
import { EchoBackend, echoOf, ingressClassYaml, ingressYaml, serviceYaml, tlsSecretYaml } from '../e2e/harness.ts';
import { FixedPortGateway } from './fixed-ports.ts';

const ngx = 'nginx.ingress.kubernetes.io/';

describe('ACME HTTP-01 challenges are not redirected to HTTPS', () => {
  const site = new EchoBackend('site');
  const solver = new EchoBackend('solver');
  const gw = new FixedPortGateway(64350);

  beforeAll(async () => {
    await new Promise<void>((r) => site.server.listen(64353, '127.0.0.1', r));
    await new Promise<void>((r) => solver.server.listen(64354, '127.0.0.1', r));
    [site.port, solver.port] = [64353, 64354];
    const tls = (name: string, host: string) => ingressYaml({ name, host, paths: [['Prefix', '/', 'site']], tlsSecret: 'site-tls' });
    const challenge = (name: string, host: string, annotations: Record<string, string> = {}) =>
      ingressYaml({ name, host, paths: [['ImplementationSpecific', '/.well-known/acme-challenge/tok123', 'solver']], annotations });
    gw.write(
      'all.yaml',
      [
        ingressClassYaml,
        serviceYaml('site', [site]),
        serviceYaml('solver', [solver]),
        tlsSecretYaml('site-tls', await makeCert('shop.test', ['shop.test', 'forced.test'])).replace(/^---\n/, ''),
        tls('shop', 'shop.test'),
        challenge('shop-solver', 'shop.test'),
        ingressYaml({ name: 'forced', host: 'forced.test', paths: [['Prefix', '/', 'site']], annotations: { [`${ngx}force-ssl-redirect`]: 'true' } }),
        challenge('forced-solver', 'forced.test', { [`${ngx}force-ssl-redirect`]: 'true' }),
      ].join('\n---\n'),
    );
    await gw.start([], { host: 'shop.test' });
  }, 30_000);

  afterAll(async () => {
    await gw.stop();
    await site.stop();
    await solver.stop();
  });

  it.each([
    // [host, path, status, backend or redirect]
    ['shop.test', '/.well-known/acme-challenge/tok123', 200, 'solver'],
    ['forced.test', '/.well-known/acme-challenge/tok123', 200, 'solver'],
    ['shop.test', '/.well-known/acme-challenge/other', 308, 'https://shop.test:64351/.well-known/acme-challenge/other'],
    ['shop.test', '/cart', 308, 'https://shop.test:64351/cart'],
    ['forced.test', '/cart', 308, 'https://forced.test:64351/cart'],
  ])('http://%s%s: %i %s', async (host, path, status, where) => {
    const r = await gw.get(host, path);
    expect([r.status, r.status === 200 ? echoOf(r).backend : r.headers.location]).toEqual([status, where]);
  });
});
