// Certificates with real TLS: a server on 127.0.0.1 whose SNICallback is Certificates.sniCallback, and node:tls
// clients that send a server name and read the certificate they were given.
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Certificates } from '../../../ingress/tls/certificates.ts';
import { defaultCommonName } from '../../../ingress/tls/default-certificate.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { captureLogger } from '../../helpers/wait.ts';
import { FakeTable, handshake, lookup, makeCert, pemData, tlsSecret, type Pems } from './pki.ts';

const day = 24 * 3600 * 1000;
let a: Pems, a2: Pems, b: Pems, wild: Pems, expired: Pems, opaque: Pems, other: Pems;

beforeAll(async () => {
  [a, a2, b, wild, expired, opaque, other] = await Promise.all([
    makeCert('a.example.com'),
    makeCert('a.example.com v2', ['a.example.com']),
    makeCert('b.example.com'),
    makeCert('*.wild.example', ['*.wild.example']),
    makeCert('expired.example', ['expired.example'], { notBefore: new Date(Date.now() - 30 * day), notAfter: new Date(Date.now() - day) }),
    makeCert('opaque.example'),
    makeCert('other'),
  ]);
});

/** A TLS server on 127.0.0.1 using the certificates; closed with `close()`. */
async function serve(certs: Certificates): Promise<{ port: number; server: Server; close: () => Promise<void> }> {
  const server = createServer({ ...certs.defaultOptions, SNICallback: certs.sniCallback }, (s) => s.end());
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as AddressInfo).port, server, close: () => new Promise((r) => server.close(() => r())) };
}

/** The context the SNI callback picks for a name, without a handshake. */
function contextFor(certs: Certificates, name: string): unknown {
  let got: unknown;
  certs.sniCallback.call(undefined as unknown as TLSSocket, name, (_err, ctx) => (got = ctx));
  return got;
}

describe('SNI picks the Secret the route table names for the host', () => {
  let certs: Certificates;
  let srv: Awaited<ReturnType<typeof serve>>;
  beforeAll(async () => {
    certs = await Certificates.create({ log: silentLogger() });
    const table = new FakeTable(
      {
        'a.example.com': 'web/a',
        'b.example.com': 'web/b',
        '*.wild.example': 'web/wild',
        'expired.example': 'web/expired',
        'opaque.example': 'web/opaque',
        'mismatch.example': 'web/mismatch',
        'missing.example': 'web/missing',
        'notls.example': 'web/htpasswd-as-tls',
        'nosecret.example': null,
      },
      ['web/htpasswd'],
    );
    certs.update(
      table,
      lookup(
        tlsSecret('web/a', pemData(a)),
        tlsSecret('web/b', pemData(b)),
        tlsSecret('web/wild', pemData(wild)),
        tlsSecret('web/expired', pemData(expired)),
        tlsSecret('web/opaque', pemData(opaque), 'Opaque'),
        tlsSecret('web/mismatch', { 'tls.crt': a.cert, 'tls.key': b.key }),
        tlsSecret('web/htpasswd', { auth: 'user:$apr1$x' }, 'Opaque'),
        tlsSecret('web/htpasswd-as-tls', { auth: 'user:$apr1$x' }, 'Opaque'),
      ),
    );
    srv = await serve(certs);
  });
  afterAll(() => srv.close());

  it.each([
    ['a.example.com', 'a.example.com'],
    ['b.example.com', 'b.example.com'],
    ['A.Example.COM', 'a.example.com'],
    ['x.wild.example', '*.wild.example'],
    ['y.wild.example', '*.wild.example'],
    ['expired.example', 'expired.example'],
    ['opaque.example', 'opaque.example'],
    ['mismatch.example', defaultCommonName],
    ['missing.example', defaultCommonName],
    ['notls.example', defaultCommonName],
    ['nosecret.example', defaultCommonName],
    ['unknown.example', defaultCommonName],
    ['wild.example', defaultCommonName],
    ['', defaultCommonName],
  ])('server name %j gets the certificate %j', async (servername, cn) => {
    const got = await handshake(srv.port, servername);
    expect(got.cn).toBe(cn);
    if (cn !== defaultCommonName) expect(got.san).toContain(`DNS:${cn}`);
  });

  it('the default certificate is self-signed, names no host and is valid for a year', async () => {
    const { peer } = await handshake(srv.port, 'unknown.example');
    expect(peer.issuer.CN).toBe(defaultCommonName);
    expect(peer.subjectaltname).toBeUndefined();
    const lifetime = Date.parse(peer.valid_to) - Date.parse(peer.valid_from);
    expect(lifetime).toBeGreaterThanOrEqual(364 * day);
    expect(lifetime).toBeLessThanOrEqual(366 * day);
    expect(peer.asn1Curve ?? peer.nistCurve).toMatch(/prime256v1|P-256/);
  });

  it('lists the Secrets whose certificate is not usable, and a missing one once a TLS host was asked for', async () => {
    const listed = () => certs.problems().map((p) => p.secret);
    await handshake(srv.port, 'missing.example');
    await handshake(srv.port, 'notls.example');
    expect(listed()).toEqual(['web/expired', 'web/htpasswd-as-tls', 'web/mismatch', 'web/missing']);
    const byName = Object.fromEntries(certs.problems().map((p) => [p.secret, p.reason]));
    expect(byName['web/expired']).toMatch(/expired/);
    expect(byName['web/mismatch']).toMatch(/tls\.key does not match/);
    expect(byName['web/missing']).toMatch(/not found/);
  });
});

describe('Secret changes are served from the next handshake, without restarting the server', () => {
  const table = new FakeTable({ 'a.example.com': 'web/a' });
  let certs: Certificates;
  let srv: Awaited<ReturnType<typeof serve>>;
  beforeAll(async () => {
    certs = await Certificates.create({ log: silentLogger() });
    srv = await serve(certs);
  });
  afterAll(() => srv.close());

  it('goes from default to v1 to v2, and back to default when the Secret is deleted', async () => {
    expect((await handshake(srv.port, 'a.example.com')).cn).toBe(defaultCommonName);
    certs.update(table, lookup(tlsSecret('web/a', pemData(a))));
    expect((await handshake(srv.port, 'a.example.com')).cn).toBe('a.example.com');
    certs.update(table, lookup(tlsSecret('web/a', pemData(a2))));
    expect((await handshake(srv.port, 'a.example.com')).cn).toBe('a.example.com v2');
    certs.update(table, lookup());
    expect((await handshake(srv.port, 'a.example.com')).cn).toBe(defaultCommonName);
  });

  it('keeps the context of a Secret whose content did not change, and replaces it when it does', () => {
    certs.update(table, lookup(tlsSecret('web/a', pemData(a))));
    const first = contextFor(certs, 'a.example.com');
    certs.update(table, lookup(tlsSecret('web/a', pemData(a))));
    expect(contextFor(certs, 'a.example.com')).toBe(first);
    certs.update(table, lookup(tlsSecret('web/a', pemData(a2))));
    expect(contextFor(certs, 'a.example.com')).not.toBe(first);
  });

  it('drops a Secret the routes no longer reference', async () => {
    certs.update(table, lookup(tlsSecret('web/a', pemData(a))));
    certs.update(new FakeTable({}), lookup(tlsSecret('web/a', pemData(a))));
    certs.update(new FakeTable({ 'a.example.com': 'web/other' }), lookup(tlsSecret('web/a', pemData(a))));
    expect((await handshake(srv.port, 'a.example.com')).cn).toBe(defaultCommonName);
  });
});

describe('a bad new version of a Secret keeps the last good certificate', () => {
  const table = new FakeTable({ 'a.example.com': 'web/a' });
  let srv: Awaited<ReturnType<typeof serve>>;
  let certs: Certificates;
  let records: Array<Record<string, unknown>>;
  beforeAll(async () => {
    const captured = captureLogger();
    records = captured.records;
    certs = await Certificates.create({ log: captured.log });
    srv = await serve(certs);
  });
  afterAll(() => srv.close());

  it.each([
    ['a key that does not match', () => ({ 'tls.crt': a2.cert, 'tls.key': other.key })],
    ['tls.key missing', () => ({ 'tls.crt': a2.cert })],
    ['tls.crt not PEM', () => ({ 'tls.crt': 'not a certificate', 'tls.key': a2.key })],
    ['a truncated certificate', () => ({ 'tls.crt': a2.cert.replace(/\n[A-Za-z0-9+/]{20,}\n/, '\n'), 'tls.key': a2.key })],
    ['tls.key not a key', () => ({ 'tls.crt': a2.cert, 'tls.key': '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n' })],
    ['the chain in the wrong order', () => ({ 'tls.crt': other.cert + a2.cert, 'tls.key': a2.key })],
  ])('%s', async (_case, data) => {
    certs.update(table, lookup(tlsSecret('web/a', pemData(a))));
    expect((await handshake(srv.port, 'a.example.com')).cn).toBe('a.example.com');
    records.length = 0;
    certs.update(table, lookup(tlsSecret('web/a', data())));
    expect((await handshake(srv.port, 'a.example.com')).cn).toBe('a.example.com');
    expect(certs.problems()).toEqual([{ secret: 'web/a', reason: expect.stringMatching(/last good certificate$/) }]);
    // Logged with the Secret's name, and no key material in any record.
    expect(records.some((r) => r.secret === 'web/a' && r.level === 40)).toBe(true);
    const logged = JSON.stringify(records);
    expect(logged).not.toContain('PRIVATE KEY');
    expect(logged).not.toContain(other.key.split('\n')[1]);
    expect(logged).not.toContain(a2.key.split('\n')[1]);
    // A good version after the bad one is served and clears the problem.
    certs.update(table, lookup(tlsSecret('web/a', pemData(a2))));
    expect((await handshake(srv.port, 'a.example.com')).cn).toBe('a.example.com v2');
    expect(certs.problems()).toEqual([]);
    certs.update(table, lookup(tlsSecret('web/a', pemData(a))));
  });

  it('a Secret that was never good leaves its host on the default certificate', async () => {
    const t = new FakeTable({ 'b.example.com': 'web/never' });
    certs.update(t, lookup(tlsSecret('web/never', { 'tls.crt': b.cert, 'tls.key': a.key })));
    expect((await handshake(srv.port, 'b.example.com')).cn).toBe(defaultCommonName);
    expect(certs.problems()).toEqual([{ secret: 'web/never', reason: expect.stringMatching(/default certificate$/) }]);
  });
});

describe('certificate chains', () => {
  let srv: Awaited<ReturnType<typeof serve>>;
  afterAll(() => srv.close());

  it('serves the intermediate after the leaf', async () => {
    const ca = await makeCert('Test Intermediate CA', ['ca.invalid'], { isCa: true });
    const leaf = await makeCert('chain.example', ['chain.example'], { ca });
    const certs = await Certificates.create({ log: silentLogger() });
    certs.update(new FakeTable({ 'chain.example': 'web/chain' }), lookup(tlsSecret('web/chain', { 'tls.crt': leaf.cert + ca.cert, 'tls.key': leaf.key })));
    srv = await serve(certs);
    const got = await handshake(srv.port, 'chain.example');
    expect(got.cn).toBe('chain.example');
    expect(got.peer.issuerCertificate.subject.CN).toBe('Test Intermediate CA');
    expect(certs.problems()).toEqual([]);
  });
});
