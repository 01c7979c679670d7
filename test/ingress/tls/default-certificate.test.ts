// The default certificate: from two PEM files (parseCertificateFlag), given to Certificates.create, or generated;
// files made by the openssl CLI so the formats are the ones users have.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { createServer } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Certificates } from '../../../ingress/tls/certificates.ts';
import { BadCertificateError } from '../../../ingress/tls/errors.ts';
import { parseCertificateFlag } from '../../../ingress/tls/flag.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { captureLogger } from '../../helpers/wait.ts';
import { handshake, makeCert } from './pki.ts';

let dir: string;
const file = (name: string) => join(dir, name);
const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'netplane-tls-'));
  // RSA, PKCS#8 key.
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'rsa.key', '-out', 'rsa.crt', '-subj', '/CN=rsa.example', '-days', '30');
  // EC with the "EC PARAMETERS" block and a SEC1 "EC PRIVATE KEY", as `openssl ecparam -genkey` writes it.
  openssl('ecparam', '-name', 'prime256v1', '-genkey', '-out', 'ec.key');
  openssl('req', '-x509', '-key', 'ec.key', '-out', 'ec.crt', '-subj', '/CN=ec.example', '-days', '30');
  openssl('pkey', '-in', 'ec.key', '-aes256', '-passout', 'pass:secret', '-out', 'encrypted.key');
  writeFileSync(file('garbage.pem'), 'hello\n');
  writeFileSync(file('empty.pem'), '');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('parseCertificateFlag', () => {
  it.each([
    ['rsa.crt', 'rsa.key', 'rsa.example'],
    ['ec.crt', 'ec.key', 'ec.example'],
  ])('accepts %s with %s', (cert, key, cn) => {
    const pems = parseCertificateFlag(file(cert), file(key));
    expect(pems.cert).toMatch(/^-----BEGIN CERTIFICATE-----/);
    expect(execFileSync('openssl', ['x509', '-noout', '-subject'], { input: pems.cert }).toString()).toContain(`CN = ${cn}`);
  });

  it.each([
    ['missing certificate file', 'nope.crt', 'rsa.key', 'nope.crt'],
    ['missing key file', 'rsa.crt', 'nope.key', 'nope.key'],
    ['certificate file without PEM', 'garbage.pem', 'rsa.key', 'garbage.pem'],
    ['empty certificate file', 'empty.pem', 'rsa.key', 'empty.pem'],
    ['key file without PEM', 'rsa.crt', 'garbage.pem', 'garbage.pem'],
    ['a key as the certificate', 'rsa.key', 'rsa.key', 'rsa.key'],
    ['an encrypted key', 'ec.crt', 'encrypted.key', 'encrypted.key'],
    ['a key of another certificate', 'rsa.crt', 'ec.key', 'ec.key'],
  ])('refuses %s, naming the file', (_case, cert, key, named) => {
    let err: unknown;
    try {
      parseCertificateFlag(file(cert), file(key));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(BadCertificateError);
    expect((err as BadCertificateError).code).toBe('ERR_BAD_CERTIFICATE');
    expect((err as Error).message).toContain(file(named));
    // One sentence.
    expect((err as Error).message).toMatch(/^[A-Z][^\n]*\.$/);
  });
});

describe('Certificates.create', () => {
  it('serves a given default certificate for names without a Secret', async () => {
    const certs = await Certificates.create({ log: silentLogger(), defaultCertificate: parseCertificateFlag(file('ec.crt'), file('ec.key')) });
    const server = createServer({ ...certs.defaultOptions, SNICallback: certs.sniCallback }, (s) => s.end());
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const port = (server.address() as AddressInfo).port;
      expect((await handshake(port, 'anything.example')).cn).toBe('ec.example');
      expect((await handshake(port, '')).cn).toBe('ec.example');
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it('refuses a default certificate whose key does not match', async () => {
    const [one, two] = await Promise.all([makeCert('one'), makeCert('two')]);
    await expect(Certificates.create({ log: silentLogger(), defaultCertificate: { cert: one.cert, key: two.key } })).rejects.toMatchObject({
      code: 'ERR_BAD_CERTIFICATE',
    });
  });

  it('serves an expired default certificate, with a warning', async () => {
    const old = await makeCert('old', ['old'], { notBefore: new Date(Date.now() - 10 * 86400_000), notAfter: new Date(Date.now() - 86400_000) });
    const { log, records } = captureLogger();
    const certs = await Certificates.create({ log, defaultCertificate: old });
    expect(certs.defaultOptions.cert).toContain('BEGIN CERTIFICATE');
    expect(records.filter((r) => r.level === 40).map((r) => r.subject)).toEqual(['CN=old']);
  });

  it('generates a different default certificate for each gateway', async () => {
    const [x, y] = await Promise.all([Certificates.create({ log: silentLogger() }), Certificates.create({ log: silentLogger() })]);
    expect(x.defaultOptions.key).not.toBe(y.defaultOptions.key);
  });
});
