// Ingresses that claim the same thing, through `netplane ingress`, as ingress-nginx settles it: by age. The oldest
// Ingress (metadata.creationTimestamp) keeps a host+path+type and a host's certificate whatever the names; a newer
// Ingress loses only what it shares, is logged with the real reason, and is counted as partly served.
import { X509Certificate as X509 } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../helpers/wait.ts';
import { makeCert } from '../tls/pki.ts';
import { EchoBackend, GatewayProcess, echoOf, ingressClassYaml, peerCert, serviceYaml, tlsSecretYaml } from './harness.ts';

/** An Ingress with a creationTimestamp: host conf.test, its TLS Secret (no redirect to HTTPS), and Prefix paths to Services. */
function agedIngress(name: string, created: string, secret: string, paths: [path: string, service: string][]): string {
  return `---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: { name: ${name}, namespace: default, creationTimestamp: "${created}", annotations: { nginx.ingress.kubernetes.io/ssl-redirect: "false" } }
spec:
  ingressClassName: netplane
  tls: [{ hosts: [conf.test], secretName: ${secret} }]
  rules:
    - host: conf.test
      http:
        paths:
${paths.map(([p, svc]) => `          - { path: ${p}, pathType: Prefix, backend: { service: { name: ${svc}, port: { number: 80 } } } }`).join('\n')}
`;
}

describe('netplane ingress conflicts between Ingresses', () => {
  const a = new EchoBackend('a');
  const b = new EchoBackend('b');
  const gw = new GatewayProcess();
  let certA = '';
  let certB = '';

  beforeAll(async () => {
    await a.start();
    await b.start();
    const pemA = await makeCert('conf.test');
    const pemB = await makeCert('conf.test');
    [certA, certB] = [pemA.cert, pemB.cert];
    gw.write('base.yaml', [ingressClassYaml, serviceYaml('svc-a', [a]), serviceYaml('svc-b', [b]), tlsSecretYaml('cert-a', pemA), tlsSecretYaml('cert-b', pemB)].join('---\n'));
    gw.write('old.yaml', agedIngress('z-old', '2020-01-01T00:00:00Z', 'cert-b', [['/x', 'svc-b']]));
    await gw.start([], { host: 'conf.test', path: '/x' });
  }, 30_000);
  afterAll(async () => {
    await gw.stop();
    await a.stop();
    await b.stop();
  });

  it('keeps the route and the certificate of the older Ingress when a newer one with a smaller name claims them', async () => {
    gw.write('new.yaml', agedIngress('a-new', '2024-01-01T00:00:00Z', 'cert-a', [['/x', 'svc-a'], ['/y', 'svc-a']]));
    // The newer Ingress's other rule is served: it has been read.
    await waitFor('the newer Ingress', async () => (await gw.get('conf.test', '/y')).status === 200, 10_000, 50);
    expect(echoOf(await gw.get('conf.test', '/y')).backend).toBe('a');
    expect(echoOf(await gw.get('conf.test', '/x')).backend).toBe('b');
    const served = await peerCert(gw.https, 'conf.test');
    expect(served.raw.equals(new X509(certB).raw)).toBe(true);
    expect(served.raw.equals(new X509(certA).raw)).toBe(false);
    expect(gw.output).toMatch(/Ingress default\/a-new: rule host \\"conf\.test\\" path \\"\/x\\" \(Prefix\) is dropped: Ingress default\/z-old, which is older \(created 2020-01-01T00:00:00Z; this one 2024-01-01T00:00:00Z\), already routes it/);
    expect(gw.output).toMatch(/TLS host \\"conf\.test\\" with Secret default\/cert-a is dropped: Ingress default\/z-old, which is older/);
    expect(gw.output).not.toContain('which comes first by namespace/name');
  });

  it('counts the newer Ingress as partly served: in the log and in netplane_ingress_problems', async () => {
    expect(gw.output).toMatch(/"served":"partly"[^\n]*Ingress default\/a-new|Ingress default\/a-new[^\n]*"served":"partly"/);
    const metrics = await gw.metrics();
    expect(metrics).toMatch(/netplane_ingress_problems\{namespace="default",ingress="a-new",served="partly"\} 1/);
    expect(metrics).not.toMatch(/ingress="a-new",served="no"/);
  });

  it('logs each of its two problems once, not again when an unrelated Ingress changes the table', async () => {
    gw.write('other.yaml', agedIngress('other', '2024-02-01T00:00:00Z', 'cert-a', [['/o', 'svc-a']]).replaceAll('conf.test', 'other.test'));
    await waitFor('the unrelated Ingress', async () => (await gw.get('other.test', '/o')).status === 200, 10_000, 50);
    const count = (re: RegExp) => gw.output.split('\n').filter((l) => re.test(l)).length;
    expect(count(/Ingress default\/a-new: rule host \\"conf\.test\\" path \\"\/x\\" \(Prefix\) is dropped/)).toBe(1);
    expect(count(/Ingress default\/a-new: TLS host \\"conf\.test\\" with Secret default\/cert-a is dropped/)).toBe(1);
  });
});
