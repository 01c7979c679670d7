// Which certificate a TLS host gets through `netplane ingress`, by the names the certificate holds, as ingress-nginx
// decides it: a Secret whose certificate does not name the host is not served for it (the default certificate is,
// with a warning naming the Ingress, the host and the Secret); a wildcard SAN names the hosts below it.
import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCert, type Pems } from '../tls/pki.ts';
import { EchoBackend, GatewayProcess, ingressClassYaml, ingressYaml, peerCert, serviceYaml, tlsSecretYaml } from './harness.ts';

/** Whether the gateway answers a handshake for `servername` with `pems`' certificate. */
async function serves(gw: GatewayProcess, servername: string, pems: Pems): Promise<boolean> {
  return (await peerCert(gw.https, servername)).raw.equals(new X509Certificate(pems.cert).raw);
}

describe('netplane ingress certificates by the names they hold', () => {
  const app = new EchoBackend('app');
  const gw = new GatewayProcess();
  let other: Pems;
  let wild: Pems;

  beforeAll(async () => {
    await app.start();
    other = await makeCert('other.test');
    wild = await makeCert('wild.test', ['*.wild.test']);
    gw.write(
      'all.yaml',
      [
        ingressClassYaml,
        serviceYaml('app', [app]),
        tlsSecretYaml('other-tls', other),
        tlsSecretYaml('wild-tls', wild),
        ingressYaml({ name: 'mismatch', host: 'wrong.test', paths: [['Prefix', '/', 'app']], tlsSecret: 'other-tls' }),
        ingressYaml({ name: 'wildcard', host: 'a.wild.test', paths: [['Prefix', '/', 'app']], tlsSecret: 'wild-tls' }),
      ].join('---\n'),
    );
    await gw.start([], { host: 'a.wild.test' });
  }, 30_000);
  afterAll(async () => {
    await gw.stop();
    await app.stop();
  });

  it('serves the default certificate, with a warning, for a host its Secret does not name', async () => {
    expect(await serves(gw, 'wrong.test', other)).toBe(false);
    expect((await peerCert(gw.https, 'wrong.test')).subject.CN).toBe((await peerCert(gw.https, 'unknown.test')).subject.CN);
    const warnings = gw.output.split('\n').filter((l) => l.includes('does not contain a Common Name or Subject Alternative Name for host wrong.test'));
    expect(warnings).toHaveLength(1);
    expect(JSON.parse(warnings[0]!)).toMatchObject({ ingress: 'default/mismatch', host: 'wrong.test', secret: 'default/other-tls' });
    // Once per host and certificate, not per handshake.
    await peerCert(gw.https, 'wrong.test');
    expect(gw.output.split('\n').filter((l) => l.includes('for host wrong.test')).length).toBe(1);
  });

  it('serves a wildcard certificate for a host below it', async () => {
    expect(await serves(gw, 'a.wild.test', wild)).toBe(true);
    expect(gw.output).not.toContain('for host a.wild.test');
  });
});
