// `netplane ingress --configmap NAMESPACE/NAME` with ingress-nginx's controller ConfigMap in a manifests directory:
// its proxy-read-timeout and proxy-body-size are every Ingress's defaults (an Ingress's own annotation still wins),
// HSTS is sent on HTTPS as ingress-nginx sends it by default, and a rewrite of the ConfigMap applies without a
// restart; keys that are annotations' global defaults apply to every Ingress that does not set its own, and
// use-forwarded-headers makes the peer's X-Forwarded-For believed; a bad value
// is logged and its last good value kept; a flag given on the command line wins.
import { HostRunner } from '../../../runtime/exec.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../helpers/wait.ts';
import { configMapYaml } from './configmaps.ts';
import { EchoBackend, GatewayProcess, ingressClassYaml, ingressYaml, serviceYaml } from './harness.ts';

const ngx = 'nginx.ingress.kubernetes.io/';
const host = new HostRunner();

describe("ingress-nginx's controller ConfigMap (--configmap)", () => {
  const web = new EchoBackend('web');
  const gw = new GatewayProcess();
  const other = new GatewayProcess();
  const noSsl = { [`${ngx}ssl-redirect`]: 'false' };
  const controller = (data: Record<string, string>) => configMapYaml('ingress-nginx-controller', data);
  /** The Strict-Transport-Security header of an HTTPS GET through `g` (curl, the default self-signed certificate). */
  const hsts = async (g: GatewayProcess) => {
    const { stdout } = await host.run('curl', ['-sk', '-o', '/dev/null', '-D', '-', '--resolve', `shop.test:${g.https}:127.0.0.1`, `https://shop.test:${g.https}/`]);
    return /^strict-transport-security: (.*)\r$/im.exec(stdout)?.[1] ?? null;
  };

  beforeAll(async () => {
    // /slow/N answers after N ms.
    web.handler = (req, res) => {
      const m = /^\/slow\/(\d+)/.exec(req.url ?? '');
      if (!m) return false;
      setTimeout(() => res.end('late\n'), Number(m[1]));
      return true;
    };
    await web.start();
    for (const g of [gw, other]) {
      g.write('cluster.yaml', `${ingressClassYaml}---\n${serviceYaml('web', [web])}`);
      g.write(
        'ingresses.yaml',
        [
          ingressYaml({ name: 'shop', host: 'shop.test', paths: [['Prefix', '/', 'web']], annotations: noSsl }),
          ingressYaml({ name: 'patient', host: 'patient.test', paths: [['Prefix', '/', 'web']], annotations: { ...noSsl, [`${ngx}proxy-read-timeout`]: '5' } }),
        ].join(''),
      );
      g.write('controller.yaml', controller({ 'proxy-read-timeout': '1', 'proxy-body-size': '16', 'server-tokens': 'false' }));
    }
    await gw.start(['--configmap', 'default/ingress-nginx-controller'], { host: 'shop.test' });
    await other.start(['--configmap', 'default/ingress-nginx-controller', '--proxy-read-timeout', '3s', '--hsts', '0s'], { host: 'shop.test' });
  }, 30_000);

  afterAll(async () => {
    await gw.stop();
    await other.stop();
    await web.stop();
  });

  it("takes its read time-out and body size as every Ingress's, an Ingress's own annotation winning", async () => {
    expect((await gw.get('shop.test', '/slow/1500')).status).toBe(504);
    expect((await gw.get('patient.test', '/slow/1500')).status).toBe(200);
    expect((await gw.get('shop.test', '/', { method: 'POST', body: 'x'.repeat(17) })).status).toBe(413);
    expect((await gw.get('shop.test', '/', { method: 'POST', body: 'x'.repeat(16) })).status).toBe(200);
  });

  it('sends HSTS on HTTPS as ingress-nginx does by default, and names the keys it does not read', async () => {
    expect(await hsts(gw)).toBe('max-age=31536000; includeSubDomains');
    expect(gw.output).toContain('ConfigMap default/ingress-nginx-controller: keys netplane does not read: server-tokens');
  });

  it('follows a rewrite of the ConfigMap without a restart; a bad value keeps its last good one, logged', async () => {
    gw.write('controller.yaml', controller({ 'proxy-read-timeout': '3', 'proxy-body-size': '16', hsts: 'false' }));
    await waitFor('the new read time-out', async () => (await gw.get('shop.test', '/slow/1500')).status === 200, 10_000, 200);
    expect(await hsts(gw)).toBeNull();
    gw.write('controller.yaml', controller({ 'proxy-read-timeout': 'soon', 'proxy-body-size': '16', hsts: 'false' }));
    await waitFor('the bad value to be logged', () => gw.output.includes('proxy-read-timeout is \\"soon\\"'), 10_000, 100);
    expect(gw.output).toContain('proxy-read-timeout keeps its last good value');
    expect((await gw.get('shop.test', '/slow/1500')).status).toBe(200);
  });

  it("gives every Ingress the annotations its keys are the global defaults of (a source range here), an Ingress's own winning", async () => {
    gw.write(
      'ingresses.yaml',
      [
        ingressYaml({ name: 'shop', host: 'shop.test', paths: [['Prefix', '/', 'web']], annotations: noSsl }),
        ingressYaml({ name: 'patient', host: 'patient.test', paths: [['Prefix', '/', 'web']], annotations: { ...noSsl, [`${ngx}whitelist-source-range`]: '127.0.0.0/8' } }),
      ].join(''),
    );
    gw.write('controller.yaml', controller({ 'whitelist-source-range': '10.0.0.0/8' }));
    await waitFor('the default source range', async () => (await gw.get('shop.test', '/')).status === 403, 10_000, 200);
    expect((await gw.get('patient.test', '/')).status).toBe(200);
    // use-forwarded-headers: the peer's X-Forwarded-For is believed, so the client it names is the one checked.
    const from10 = { headers: { 'x-forwarded-for': '10.1.2.3' } };
    expect((await gw.get('shop.test', '/', from10)).status).toBe(403);
    gw.write('controller.yaml', controller({ 'whitelist-source-range': '10.0.0.0/8', 'use-forwarded-headers': 'true' }));
    await waitFor('X-Forwarded-For believed', async () => (await gw.get('shop.test', '/', from10)).status === 200, 10_000, 200);
    expect((await gw.get('shop.test', '/')).status).toBe(403);
  });

  it('leaves what a flag on the command line sets: --proxy-read-timeout 3s, --hsts 0s', async () => {
    expect((await other.get('shop.test', '/slow/1500')).status).toBe(200);
    expect((await other.get('shop.test', '/', { method: 'POST', body: 'x'.repeat(17) })).status).toBe(413);
    expect(await hsts(other)).toBeNull();
  });
});
