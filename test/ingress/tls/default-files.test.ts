// The --default-certificate files followed (DefaultCertificateFiles with Certificates): a real TLS server, real files,
// real handshakes with and without SNI. A Secret volume's `..data` swap and a file replaced in place are served from
// the next handshake; a pair that cannot be served keeps the last good one and is reported once; one written file by
// file is taken without a warning; without a watch the periodic look finds changes.
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:tls';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Certificates } from '../../../ingress/tls/certificates.ts';
import { DefaultCertificateFiles, type DefaultCertificateFilesOptions } from '../../../ingress/tls/default-files.ts';
import { captureLogger, waitFor } from '../../helpers/wait.ts';
import { handshake, makeCert, type Pems } from './pki.ts';

/** A directory laid out as the kubelet writes a Secret volume: tls.crt → ..data/tls.crt, ..data → a version directory. */
class SecretVolume {
  readonly dir = mkdtempSync(join(tmpdir(), 'netplane-secret-volume-'));
  #version = 0;
  #current: string | undefined;

  /** Writes a new version and swaps `..data` to it in one rename, as the kubelet's atomic writer does. */
  write(p: { cert: string; key: string }): void {
    const version = `..2026_01_01_00_00_0${this.#version++}`;
    mkdirSync(join(this.dir, version));
    writeFileSync(join(this.dir, version, 'tls.crt'), p.cert);
    writeFileSync(join(this.dir, version, 'tls.key'), p.key);
    symlinkSync(version, join(this.dir, '..data_tmp'));
    renameSync(join(this.dir, '..data_tmp'), join(this.dir, '..data'));
    if (this.#current === undefined) {
      symlinkSync('..data/tls.crt', join(this.dir, 'tls.crt'));
      symlinkSync('..data/tls.key', join(this.dir, 'tls.key'));
    } else {
      rmSync(join(this.dir, this.#current), { recursive: true });
    }
    this.#current = version;
  }

  get cert(): string {
    return join(this.dir, 'tls.crt');
  }

  get key(): string {
    return join(this.dir, 'tls.key');
  }
}

let v1: Pems, v2: Pems, v3: Pems;
beforeAll(async () => {
  [v1, v2, v3] = await Promise.all([makeCert('default-v1'), makeCert('default-v2'), makeCert('default-v3')]);
});

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A Secret volume holding `p`, removed after the test. */
function volumeWith(p: Pems): SecretVolume {
  const vol = new SecretVolume();
  cleanups.push(() => rmSync(vol.dir, { recursive: true, force: true }));
  vol.write(p);
  return vol;
}

/** A directory holding the pair `p` as d.crt and d.key, removed after the test. */
function filesWith(p: Pems): { dir: string; cert: string; key: string } {
  const dir = mkdtempSync(join(tmpdir(), 'netplane-default-cert-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const [cert, key] = [join(dir, 'd.crt'), join(dir, 'd.key')];
  writeFileSync(cert, p.cert);
  writeFileSync(key, p.key);
  return { dir, cert, key };
}

/** A TLS server whose default certificate follows the files at cert/key, wired as the gateway wires its listener. */
async function serve(cert: string, key: string, options: Partial<DefaultCertificateFilesOptions> = {}) {
  const { log, records } = captureLogger();
  const files = new DefaultCertificateFiles({ certPath: cert, keyPath: key, log, intervalMs: 60_000, ...options });
  const certs = await Certificates.create({ log, defaultCertificate: files.load() });
  const problems: boolean[] = [];
  files.onProblem = (bad) => problems.push(bad);
  const server: Server = createServer({ ...certs.defaultOptions, SNICallback: certs.sniCallback }, (s) => s.end());
  certs.onDefaultChange = () => server.setSecureContext(certs.defaultOptions);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  files.follow(certs);
  cleanups.push(() => new Promise((r) => server.close(r)), () => files.close());
  const port = (server.address() as AddressInfo).port;
  /** The CN served with SNI and without, when they agree. */
  const served = async () => {
    const [sni, none] = [(await handshake(port, 'anything.example')).cn, (await handshake(port, '')).cn];
    return sni === none ? sni : `${sni} with SNI, ${none} without`;
  };
  const warnings = () => records.filter((r) => r.level === 40 && String(r.msg).includes('--default-certificate'));
  return { files, served, problems, warnings };
}

describe('DefaultCertificateFiles', () => {
  it("follows a Secret volume's ..data swap, with and without SNI", async () => {
    const vol = volumeWith(v1);
    const { served, problems } = await serve(vol.cert, vol.key);
    expect(await served()).toBe('default-v1');
    vol.write(v2);
    await waitFor('default-v2', async () => (await served()) === 'default-v2', 3000, 50);
    expect(problems).toEqual([]);
  });

  it('keeps the served certificate while the files hold a pair that does not match, reports it once, and takes the next good pair', async () => {
    const vol = volumeWith(v1);
    const { files, served, problems, warnings } = await serve(vol.cert, vol.key);
    vol.write({ cert: v2.cert, key: v3.key });
    await waitFor('the warning', () => warnings().length === 1, 5000, 50);
    expect(warnings()[0]!.reason).toContain(`private key file ${vol.key} does not match`);
    expect(await served()).toBe('default-v1');
    for (let i = 0; i < 3; i++) files.check();
    expect([warnings().length, problems]).toEqual([1, [true]]);
    vol.write(v3);
    await waitFor('default-v3', async () => (await served()) === 'default-v3', 3000, 50);
    expect(problems).toEqual([true, false]);
  });

  it('takes a pair written in place one file after the other without a warning', async () => {
    const { cert, key } = filesWith(v1);
    const { served, problems, warnings } = await serve(cert, key);
    writeFileSync(cert, v2.cert);
    await new Promise((r) => setTimeout(r, 400));
    writeFileSync(key, v2.key);
    await waitFor('default-v2', async () => (await served()) === 'default-v2', 3000, 50);
    await new Promise((r) => setTimeout(r, 1200));
    expect([warnings(), problems]).toEqual([[], []]);
  });

  it('keeps the certificate while a file cannot be read, and names it', async () => {
    const { cert, key } = filesWith(v1);
    const { served, problems, warnings } = await serve(cert, key);
    unlinkSync(key);
    await waitFor('the warning', () => warnings().length === 1, 5000, 50);
    expect(warnings()[0]!.reason).toBe(`cannot read the private key file ${key} (ENOENT)`);
    expect(await served()).toBe('default-v1');
    writeFileSync(key, v1.key);
    await waitFor('the problem to end', () => problems.length === 2, 3000, 50);
    expect([problems, await served()]).toEqual([[true, false], 'default-v1']);
  });

  it('finds a change without a watch, by the periodic look', async () => {
    const { dir, cert, key } = filesWith(v1);
    const { served } = await serve(cert, key, { watch: false, intervalMs: 300 });
    // Moved into place, as `mv` does: each file replaced in one rename.
    writeFileSync(join(dir, 'new.crt'), v2.cert);
    writeFileSync(join(dir, 'new.key'), v2.key);
    renameSync(join(dir, 'new.key'), key);
    renameSync(join(dir, 'new.crt'), cert);
    await waitFor('default-v2', async () => (await served()) === 'default-v2', 3000, 50);
  });
});
