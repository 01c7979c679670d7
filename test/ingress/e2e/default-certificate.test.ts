// `netplane ingress --default-certificate` follows its files, as ingress-nginx follows its --default-ssl-certificate
// Secret: the files laid out as a mounted Secret volume, renewed by the kubelet's `..data` swap, are served from the
// next handshake (with SNI and without); a pair that cannot be served keeps the last good one, logged and shown in
// netplane_ingress_default_certificate_problem, until a good pair comes. Given as NAMESPACE/NAME (ingress-nginx's
// form), it is that TLS Secret, followed the same way: served once read, a new version from the next handshake, a
// bad or removed one keeping the last good pair.
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../helpers/wait.ts';
import { makeCert, type Pems } from '../tls/pki.ts';
import { EchoBackend, GatewayProcess, ingressClassYaml, ingressYaml, peerCert, serviceYaml, tlsSecretYaml } from './harness.ts';

describe('netplane ingress --default-certificate renewed on disk', () => {
  const web = new EchoBackend('web');
  const gw = new GatewayProcess();
  const volume = mkdtempSync(join(tmpdir(), 'netplane-default-volume-'));
  let version = 0;
  let current = '';
  let v1: Pems, v2: Pems, v3: Pems;

  /** The kubelet's atomic update of a Secret volume: a new version directory, then one rename of `..data`. */
  function writeVolume(p: { cert: string; key: string }): void {
    const dir = `..2026_01_01_00_00_0${version++}`;
    mkdirSync(join(volume, dir));
    writeFileSync(join(volume, dir, 'tls.crt'), p.cert);
    writeFileSync(join(volume, dir, 'tls.key'), p.key);
    symlinkSync(dir, join(volume, '..data_tmp'));
    renameSync(join(volume, '..data_tmp'), join(volume, '..data'));
    if (current === '') {
      symlinkSync('..data/tls.crt', join(volume, 'tls.crt'));
      symlinkSync('..data/tls.key', join(volume, 'tls.key'));
    } else {
      rmSync(join(volume, current), { recursive: true });
    }
    current = dir;
  }

  /** The CN served to a client with SNI for an unknown name, and to one without SNI, when they agree. */
  async function served(): Promise<string> {
    const [sni, none] = [(await peerCert(gw.https, 'nothing.test')).subject.CN, (await peerCert(gw.https, '')).subject.CN];
    return sni === none ? String(sni) : `${sni} with SNI, ${none} without`;
  }

  const problemGauge = async () => /^netplane_ingress_default_certificate_problem (\d)/m.exec(await gw.metrics())?.[1];

  beforeAll(async () => {
    [v1, v2, v3] = await Promise.all([makeCert('default-v1'), makeCert('default-v2'), makeCert('default-v3')]);
    await web.start();
    writeVolume(v1);
    gw.write('all.yaml', [ingressClassYaml, serviceYaml('web', [web]), ingressYaml({ name: 'web', host: 'web.test', paths: [['Prefix', '/', 'web']] })].join('---\n'));
    await gw.start(['--default-certificate', `${join(volume, 'tls.crt')},${join(volume, 'tls.key')}`], { host: 'web.test' });
  }, 30_000);
  afterAll(async () => {
    await gw.stop();
    await web.stop();
    rmSync(volume, { recursive: true, force: true });
  });

  it('serves the renewed certificate from the next handshake, with SNI and without', async () => {
    expect(await served()).toBe('default-v1');
    writeVolume(v2);
    await waitFor('default-v2', async () => (await served()) === 'default-v2', 5000, 50);
    expect(await problemGauge()).toBe('0');
  });

  it('keeps the last good certificate while the files do not hold a usable pair, and says why', async () => {
    writeVolume({ cert: v3.cert, key: v1.key });
    await waitFor('the problem gauge', async () => (await problemGauge()) === '1', 5000, 100);
    expect(await served()).toBe('default-v2');
    expect(gw.output).toMatch(/--default-certificate files not usable: private key file \S+tls\.key does not match/);
    writeVolume(v3);
    await waitFor('default-v3', async () => (await served()) === 'default-v3', 5000, 50);
    expect(await problemGauge()).toBe('0');
  });
});

describe('netplane ingress --default-certificate NAMESPACE/NAME: a TLS Secret, followed', () => {
  const gw = new GatewayProcess();
  let s1: Pems, s2: Pems;
  const served = async () => {
    const [sni, none] = [(await peerCert(gw.https, 'nothing.test')).subject.CN, (await peerCert(gw.https, '')).subject.CN];
    return sni === none ? String(sni) : `${sni} with SNI, ${none} without`;
  };
  const problemGauge = async () => /^netplane_ingress_default_certificate_problem (\d)/m.exec(await gw.metrics())?.[1];

  beforeAll(async () => {
    [s1, s2] = await Promise.all([makeCert('default-s1'), makeCert('default-s2')]);
    gw.write('secret.yaml', tlsSecretYaml('default-tls', s1));
    await gw.start(['--default-certificate', 'default/default-tls']);
  }, 30_000);
  afterAll(async () => {
    await gw.stop();
  });

  it("serves the Secret's pair once ready, with SNI and without, and a new version from the next handshake", async () => {
    expect(await served()).toBe('default-s1');
    gw.write('secret.yaml', tlsSecretYaml('default-tls', s2));
    await waitFor('default-s2', async () => (await served()) === 'default-s2', 5000, 50);
    expect(await problemGauge()).toBe('0');
  });

  it('keeps the last good pair while the Secret holds one that cannot be served, or is gone, and says why', async () => {
    gw.write('secret.yaml', tlsSecretYaml('default-tls', { ...s1, key: s2.key }));
    await waitFor('the problem gauge', async () => (await problemGauge()) === '1', 5000, 100);
    expect(await served()).toBe('default-s2');
    expect(gw.output).toContain('--default-certificate: Secret default/default-tls: tls.key does not match the first certificate of tls.crt');
    gw.write('secret.yaml', '');
    await waitFor('the Secret gone', () => gw.output.includes('--default-certificate: Secret default/default-tls is not in the cluster; keeping the default certificate served now'), 5000, 50);
    expect(await served()).toBe('default-s2');
    gw.write('secret.yaml', tlsSecretYaml('default-tls', s1));
    await waitFor('default-s1', async () => (await served()) === 'default-s1', 5000, 50);
    expect(await problemGauge()).toBe('0');
  });
});
