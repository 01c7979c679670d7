// custom-headers through `netplane ingress --kubeconfig` against the test API server: the gateway reads only the
// ConfigMaps its Ingresses name, each listed and watched by name in its namespace (as Secrets), a change in the API
// applies to the next response, and one created after the Ingress brings that Ingress into service.
import { describe, expect, it } from 'vitest';
import { waitFor } from '../../helpers/wait.ts';
import { apiGateway } from './api-gateway.ts';
import { configMapYaml } from './configmaps.ts';
import { ingressYaml } from './harness.ts';

const ngx = 'nginx.ingress.kubernetes.io/';

describe('headers from ConfigMaps, read from the Kubernetes API', () => {
  const noSsl = { [`${ngx}ssl-redirect`]: 'false' };
  const k = apiGateway('shop.test', ({ api, apply }) => {
    apply(configMapYaml('security', { 'X-Frame-Options': 'DENY' }));
    // ConfigMaps no Ingress names: the gateway must never ask for them.
    apply(configMapYaml('app-config', { 'X-Unrelated': 'no' }));
    api.apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'security', namespace: 'billing' }, data: { 'X-Frame-Options': 'ALLOW' } });
    apply(ingressYaml({ name: 'shop', host: 'shop.test', paths: [['Prefix', '/', 'web']], annotations: { ...noSsl, [`${ngx}custom-headers`]: 'default/security' } }));
  });
  const { gw, apply } = k;

  it('adds the headers of the ConfigMap the Ingress names', async () => {
    const r = await gw.get('shop.test', '/');
    expect([r.status, r.headers['x-frame-options'], r.headers['x-unrelated']]).toEqual([200, 'DENY', undefined]);
  });

  it('applies a change of the ConfigMap in the API to the next responses, without a restart', async () => {
    apply(configMapYaml('security', { 'X-Frame-Options': 'SAMEORIGIN', 'X-Content-Type-Options': 'nosniff' }));
    await waitFor('the new headers', async () => (await gw.get('shop.test', '/')).headers['x-frame-options'] === 'SAMEORIGIN', 5000, 50);
    expect((await gw.get('shop.test', '/')).headers['x-content-type-options']).toBe('nosniff');
  });

  it('serves an Ingress whose ConfigMap is created after it, reading that ConfigMap as soon as the Ingress names it', async () => {
    apply(ingressYaml({ name: 'later', host: 'later.test', paths: [['Prefix', '/', 'web']], annotations: { ...noSsl, [`${ngx}custom-headers`]: 'default/later' } }));
    await waitFor('the ConfigMap asked for', () => k.api.requests.some((r) => r.path === '/api/v1/namespaces/default/configmaps' && r.query.fieldSelector === 'metadata.name=later'), 5000, 50);
    await waitFor('the reason logged', () => gw.output.includes('names ConfigMap default/later, which is not there'), 5000, 50);
    expect((await gw.get('later.test', '/')).status).toBe(404);
    apply(configMapYaml('later', { 'X-Later': 'yes' }));
    await waitFor('later.test served', async () => (await gw.get('later.test', '/')).status === 200, 5000, 50);
    expect((await gw.get('later.test', '/')).headers['x-later']).toBe('yes');
  });

  it('has asked the API for no ConfigMap but the ones named, each by name in its namespace', () => {
    const asked = new Set(k.api.requests.filter((r) => r.path.includes('configmaps')).map((r) => `${r.path}?${r.query.fieldSelector}`));
    expect([...asked].sort()).toEqual(['/api/v1/namespaces/default/configmaps?metadata.name=later', '/api/v1/namespaces/default/configmaps?metadata.name=security']);
  });
});
