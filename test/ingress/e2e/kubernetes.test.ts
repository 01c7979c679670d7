// `netplane ingress --kubeconfig` against the test API server: routes, TLS and basic auth from the API, and the
// gateway reads only the Secrets its Ingresses name — one list/watch per Secret, selected by name — never the rest.
import { get as httpsGet } from 'node:https';
import bcrypt from 'bcryptjs';
import { describe, expect, it } from 'vitest';
import { waitFor } from '../../helpers/wait.ts';
import { makeCert, type Pems } from '../tls/pki.ts';
import { apiGateway } from './api-gateway.ts';
import { b64, ingressYaml, peerCert, tlsSecretYaml } from './harness.ts';

describe('netplane ingress reading the Kubernetes API', () => {
  let shopV2: Pems;
  const k = apiGateway('shop.test', async ({ api, apply }) => {
    const shop = await makeCert('shop.test');
    shopV2 = await makeCert('shop.test v2', ['shop.test']);
    apply(tlsSecretYaml('shop-tls', shop));
    // Secrets no Ingress names: the gateway must never ask for them.
    apply(tlsSecretYaml('unrelated-tls', await makeCert('unrelated.test')));
    api.apply({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'db-password', namespace: 'billing' }, type: 'Opaque', data: { password: b64('hunter2') } });
    apply(ingressYaml({ name: 'shop', host: 'shop.test', paths: [['Prefix', '/', 'web']], tlsSecret: 'shop-tls' }));
  });
  const { gw, apply } = k;

  it('routes and serves the certificate of the Secret the Ingress names', async () => {
    const redirect = await gw.get('shop.test', '/cart');
    expect([redirect.status, redirect.headers.location]).toEqual([308, `https://shop.test:${gw.https}/cart`]);
    expect((await peerCert(gw.https, 'shop.test')).subject.CN).toBe('shop.test');
    const body = await new Promise<string>((resolve, reject) => {
      const req = httpsGet({ host: '127.0.0.1', port: gw.https, servername: 'shop.test', path: '/cart', headers: { host: 'shop.test' }, rejectUnauthorized: false }, (res) => {
        let text = '';
        res.on('data', (d) => (text += d)).on('end', () => resolve(text));
      });
      req.on('error', reject);
    });
    expect(JSON.parse(body)).toMatchObject({ backend: 'web', url: '/cart' });
  });

  it('swaps the certificate when the Secret changes in the API', async () => {
    apply(tlsSecretYaml('shop-tls', shopV2));
    await waitFor('the new certificate', async () => (await peerCert(gw.https, 'shop.test')).subject.CN === 'shop.test v2', 5000, 100);
  });

  it('reads a Secret as soon as a new Ingress names it (basic auth)', async () => {
    const htpasswd = `alice:${bcrypt.hashSync('wonderland', 8)}\n`;
    k.api.apply({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'users', namespace: 'default' }, type: 'Opaque', data: { auth: b64(htpasswd) } });
    apply(
      ingressYaml({
        name: 'staff',
        host: 'staff.test',
        paths: [['Prefix', '/', 'web']],
        annotations: { 'nginx.ingress.kubernetes.io/auth-type': 'basic', 'nginx.ingress.kubernetes.io/auth-secret': 'users', 'nginx.ingress.kubernetes.io/ssl-redirect': 'false' },
      }),
    );
    const authorization = `Basic ${b64('alice:wonderland')}`;
    await waitFor('alice let in', async () => (await gw.get('staff.test', '/', { headers: { authorization } })).status === 200, 5000, 50);
    expect((await gw.get('staff.test', '/')).status).toBe(401);
    expect((await gw.get('staff.test', '/', { headers: { authorization: `Basic ${b64('alice:nope')}` } })).status).toBe(401);
  });

  it('has asked the API for no Secret but the ones named, each by name in its namespace', () => {
    const secretRequests = k.api.requests.filter((r) => r.path.includes('secrets'));
    const asked = new Set(secretRequests.map((r) => `${r.path}?${r.query.fieldSelector}`));
    expect([...asked].sort()).toEqual(['/api/v1/namespaces/default/secrets?metadata.name=shop-tls', '/api/v1/namespaces/default/secrets?metadata.name=users']);
    // A list and a watch for each.
    expect(secretRequests.filter((r) => r.query.watch === 'true').length).toBeGreaterThanOrEqual(2);
    expect(k.api.requests.some((r) => r.path === '/apis/networking.k8s.io/v1/ingresses')).toBe(true);
  });

  it('stops reading a Secret no Ingress names any more', async () => {
    const before = k.api.openWatches();
    k.api.remove('networking.k8s.io/v1', 'Ingress', 'staff');
    await waitFor('the route gone', async () => (await gw.get('staff.test', '/')).status === 404, 5000, 50);
    await waitFor('the watch of Secret users closed', () => k.api.openWatches() === before - 1, 5000, 50);
  });
});
