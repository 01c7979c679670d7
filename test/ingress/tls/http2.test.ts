// The contexts under http2.createSecureServer({allowHTTP1: true}): SNI picks the certificate for h2 and for
// HTTP/1.1 clients alike, and ALPN (the server's part) still offers h2 on the swapped context.
import { once } from 'node:events';
import { request as httpsRequest } from 'node:https';
import { connect as h2connect, createSecureServer, type Http2SecureServer } from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Certificates } from '../../../ingress/tls/certificates.ts';
import { defaultCommonName } from '../../../ingress/tls/default-certificate.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { FakeTable, handshake, lookup, makeCert, pemData, tlsSecret } from './pki.ts';

let server: Http2SecureServer;
let port: number;

beforeAll(async () => {
  const a = await makeCert('a.example.com');
  const certs = await Certificates.create({ log: silentLogger() });
  certs.update(new FakeTable({ 'a.example.com': 'web/a' }), lookup(tlsSecret('web/a', pemData(a))));
  server = createSecureServer({ ...certs.defaultOptions, SNICallback: certs.sniCallback, allowHTTP1: true }, (req, res) => {
    res.end(`${req.httpVersion} ${(req.socket as TLSSocket).servername}`);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

/** One h2 GET with SNI `servername`: the body, the ALPN protocol and the certificate's CN. */
function h2get(servername: string): Promise<{ body: string; alpn: string | false; cn: string }> {
  return new Promise((resolve, reject) => {
    const session = h2connect(`https://127.0.0.1:${port}`, { servername, rejectUnauthorized: false });
    session.on('error', reject);
    const req = session.request({ ':path': '/' });
    let body = '';
    req.setEncoding('utf8').on('data', (d: string) => (body += d));
    req.on('end', () => {
      const socket = session.socket as TLSSocket;
      resolve({ body, alpn: socket.alpnProtocol ?? false, cn: String(socket.getPeerCertificate().subject.CN) });
      session.close();
    });
    req.on('error', reject);
  });
}

/** One HTTP/1.1 GET over TLS with SNI `servername`. */
function h1get(servername: string): Promise<{ body: string; alpn: string | false; cn: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, servername, rejectUnauthorized: false, agent: false, path: '/' }, (res) => {
      const socket = res.socket as TLSSocket;
      const seen = { alpn: socket.alpnProtocol ?? false, cn: String(socket.getPeerCertificate().subject.CN) };
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ body, ...seen }));
    });
    req.on('error', reject).end();
  });
}

describe('http2 secure server with allowHTTP1', () => {
  it.each([
    ['a.example.com', 'a.example.com'],
    ['other.example', defaultCommonName],
  ])('h2 with server name %j gets %j', async (servername, cn) => {
    expect(await h2get(servername)).toEqual({ body: `2.0 ${servername}`, alpn: 'h2', cn });
  });

  it.each([
    ['a.example.com', 'a.example.com'],
    ['other.example', defaultCommonName],
  ])('HTTP/1.1 with server name %j gets %j', async (servername, cn) => {
    expect(await h1get(servername)).toEqual({ body: `1.1 ${servername}`, alpn: false, cn });
  });

  it('a client offering h2 and http/1.1 is given h2 with the Secret certificate', async () => {
    const got = await handshake(port, 'a.example.com', ['h2', 'http/1.1']);
    expect([got.alpn, got.cn]).toEqual(['h2', 'a.example.com']);
  });
});
