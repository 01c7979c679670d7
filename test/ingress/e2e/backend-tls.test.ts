// Verifying HTTPS backends (ingress-nginx proxy-ssl-verify, proxy-ssl-secret, proxy-ssl-name, proxy-ssl-server-name)
// through `netplane ingress`: a backend whose certificate chains to the Secret's CA and carries the expected name is
// reached; another CA, another name, or a missing Secret is never reached (502, 503); SNI only when asked for.
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../helpers/wait.ts';
import { makeCert, type Pems } from '../tls/pki.ts';
import { b64, GatewayProcess, ingressClassYaml, ingressYaml, serviceYaml, type EchoBackend } from './harness.ts';

const ngx = 'nginx.ingress.kubernetes.io/';

describe('netplane ingress verifying HTTPS backends', () => {
  const gw = new GatewayProcess();
  let server: Server;
  let ca: Pems;
  let rogueCa: Pems;

  const caSecret = (name: string, p: Pems) => `---\napiVersion: v1\nkind: Secret\nmetadata: { name: ${name}, namespace: default }\ntype: Opaque\ndata: { ca.crt: ${b64(p.cert)} }\n`;
  const ing = (name: string, service: string, annotations: Record<string, string>) =>
    ingressYaml({ name, host: `${name}.test`, paths: [['Prefix', '/', service]], annotations: { [`${ngx}backend-protocol`]: 'HTTPS', ...annotations } });
  const verify = (secret: string, more: Record<string, string> = {}) => ({ [`${ngx}proxy-ssl-verify`]: 'on', [`${ngx}proxy-ssl-secret`]: secret, ...more });

  beforeAll(async () => {
    ca = await makeCert('Backend CA', ['backend-ca.test'], { isCa: true });
    const rogue = await makeCert('Rogue CA', ['rogue-ca.test'], { isCa: true });
    const cert = await makeCert('secure-web', ['secure-web.default.svc', 'api.internal'], { ca });
    // The backend tells which name the gateway asked for in SNI ("-" for none).
    server = createServer({ cert: cert.cert, key: cert.key }, (req, res) => res.end(JSON.stringify({ sni: (req.socket as TLSSocket).servername || '-' })));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const backend = { port: (server.address() as AddressInfo).port } as EchoBackend;
    gw.write(
      'all.yaml',
      [
        ingressClassYaml,
        ...['secure-web', 'by-name', 'other-name', 'sni-web', 'rogue', 'missing', 'plain'].map((s) => serviceYaml(s, [backend])),
        caSecret('rogue-ca', rogue),
        ing('verified', 'secure-web', verify('backend-ca')),
        ing('named', 'by-name', verify('backend-ca', { [`${ngx}proxy-ssl-name`]: 'api.internal' })),
        ing('wrongname', 'other-name', verify('backend-ca', { [`${ngx}proxy-ssl-name`]: 'other.internal' })),
        ing('sni', 'sni-web', verify('backend-ca', { [`${ngx}proxy-ssl-name`]: 'api.internal', [`${ngx}proxy-ssl-server-name`]: 'on' })),
        ing('rogue', 'rogue', verify('rogue-ca')),
        ing('missing', 'missing', verify('absent-ca')),
        ing('plain', 'plain', {}),
      ].join('---\n'),
    );
    gw.write('ca.yaml', caSecret('backend-ca', ca));
    rogueCa = rogue;
    await gw.start([], { host: 'plain.test' });
  }, 30_000);
  afterAll(async () => {
    await gw.stop();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it.each([
    ['a certificate of the CA for the Service name', 'verified.test', 200],
    ['a certificate of the CA for the proxy-ssl-name', 'named.test', 200],
    ['a certificate for another name than proxy-ssl-name', 'wrongname.test', 502],
    ['a certificate of another CA', 'rogue.test', 502],
    ['a proxy-ssl-secret that is not there (never unverified)', 'missing.test', 503],
    ['no verification asked (ingress-nginx default)', 'plain.test', 200],
  ])('%s: %s answers %i', async (_what, host, status) => {
    expect((await gw.get(host, '/')).status).toBe(status);
  });

  it('sends SNI only with proxy-ssl-server-name on', async () => {
    expect(JSON.parse((await gw.get('verified.test', '/')).text)).toEqual({ sni: '-' });
    expect(JSON.parse((await gw.get('sni.test', '/')).text)).toEqual({ sni: 'api.internal' });
  });

  it('takes a changed CA bundle from the next connection on', async () => {
    gw.write('ca.yaml', caSecret('backend-ca', rogueCa));
    await waitFor('the new bundle', async () => (await gw.get('verified.test', '/')).status === 502, 10_000, 100);
    gw.write('ca.yaml', caSecret('backend-ca', ca));
    await waitFor('the first bundle again', async () => (await gw.get('verified.test', '/')).status === 200, 10_000, 100);
  });
});
