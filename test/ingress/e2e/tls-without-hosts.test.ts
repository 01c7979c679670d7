// A tls entry without hosts through `netplane ingress`, as ingress-nginx serves it (extractTLSSecretName): a host of
// the Ingress's rules that no entry lists takes the entry's Secret when its certificate names the host, and then
// gets the HTTPS redirect as any TLS host; a host the certificate does not name gets neither.
import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCert, type Pems } from '../tls/pki.ts';
import { EchoBackend, GatewayProcess, echoOf, ingressClassYaml, peerCert, serviceYaml, tlsSecretYaml } from './harness.ts';

describe('netplane ingress tls entry without hosts', () => {
  const app = new EchoBackend('app');
  const gw = new GatewayProcess();
  let site: Pems;
  let cnOnly: Pems;

  beforeAll(async () => {
    await app.start();
    site = await makeCert('site.test', ['site.test', '*.site.test']);
    cnOnly = await makeCert('cn.test', []);
    const ingress = `---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: { name: hostless, namespace: default }
spec:
  ingressClassName: netplane
  tls: [{ secretName: site-tls }]
  rules:
    - { host: www.site.test, http: { paths: [{ path: /, pathType: Prefix, backend: { service: { name: app, port: { number: 80 } } } }] } }
    - { host: other.test, http: { paths: [{ path: /, pathType: Prefix, backend: { service: { name: app, port: { number: 80 } } } }] } }
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: { name: cn-only, namespace: default }
spec:
  ingressClassName: netplane
  tls: [{ secretName: cn-tls }]
  rules:
    - { host: cn.test, http: { paths: [{ path: /, pathType: Prefix, backend: { service: { name: app, port: { number: 80 } } } }] } }
`;
    gw.write('all.yaml', [ingressClassYaml, serviceYaml('app', [app]), tlsSecretYaml('site-tls', site), tlsSecretYaml('cn-tls', cnOnly)].join('---\n') + ingress);
    await gw.start([], { host: 'other.test' });
  }, 30_000);
  afterAll(async () => {
    await gw.stop();
    await app.stop();
  });

  it("serves the entry's certificate for a host of the rules it names (by a wildcard SAN here), and redirects HTTP to HTTPS", async () => {
    expect((await peerCert(gw.https, 'www.site.test')).raw.equals(new X509Certificate(site.cert).raw)).toBe(true);
    const r = await gw.get('www.site.test', '/p?q=1');
    expect([r.status, r.headers.location]).toEqual([308, `https://www.site.test:${gw.https}/p?q=1`]);
  });

  it('gives a host the certificate does not name neither the certificate nor the redirect', async () => {
    expect((await peerCert(gw.https, 'other.test')).raw.equals(new X509Certificate(site.cert).raw)).toBe(false);
    const r = await gw.get('other.test', '/');
    expect([r.status, echoOf(r).backend]).toEqual([200, 'app']);
  });

  it('does not take a certificate that names the host in its CN alone, as Go\'s VerifyHostname in ingress-nginx ignores the CN', async () => {
    expect((await peerCert(gw.https, 'cn.test')).raw.equals(new X509Certificate(cnOnly.cert).raw)).toBe(false);
    const r = await gw.get('cn.test', '/');
    expect([r.status, echoOf(r).backend]).toEqual([200, 'app']);
  });
});
