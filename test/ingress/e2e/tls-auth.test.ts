// TLS and auth through `netplane ingress` as users meet them: certificates by SNI with real TLS clients (and curl
// over HTTP/2), a Secret swapped live, the HTTP→HTTPS redirect, every auth kind passing and failing, rate limits.
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import bcrypt from 'bcryptjs';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../helpers/wait.ts';
import { makeCert, type Pems } from '../tls/pki.ts';
import { b64, EchoBackend, GatewayProcess, echoOf, ingressClassYaml, ingressYaml, peerCert, serviceYaml, tlsSecretYaml } from './harness.ts';

function ingress(name: string, host: string, annotations: Record<string, string> = {}, tlsSecret?: string): string {
  return ingressYaml({ name, host, paths: [['Prefix', '/', 'web']], annotations, tlsSecret });
}

describe('netplane ingress TLS and auth', () => {
  const web = new EchoBackend('web');
  const gw = new GatewayProcess();
  let authServer: Server;
  let authPort = 0;
  let jwksServer: Server;
  let jwksPort = 0;
  let sign: (claims: Record<string, unknown>, exp?: string) => Promise<string>;
  let shopV2: Pems;

  beforeAll(async () => {
    await web.start();
    // External auth: lets "Bearer ok" through with a user header, refuses the rest; /slow never answers in time.
    authServer = createServer((req, res) => {
      if (req.headers['x-original-url']?.toString().includes('/slow')) return void setTimeout(() => res.end(), 3000);
      if (req.headers.authorization === 'Bearer ok') res.writeHead(200, { 'x-auth-user': 'alice' }).end();
      else if (req.headers.authorization === 'Bearer broken') res.writeHead(502).end();
      else res.writeHead(401, { 'www-authenticate': 'Bearer realm="ext"' }).end();
    });
    await new Promise<void>((r) => authServer.listen(0, '127.0.0.1', r));
    authPort = (authServer.address() as AddressInfo).port;
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' };
    jwksServer = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] })));
    await new Promise<void>((r) => jwksServer.listen(0, '127.0.0.1', r));
    jwksPort = (jwksServer.address() as AddressInfo).port;
    sign = (claims, exp = '5m') =>
      new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setIssuer('https://issuer.test').setAudience('shop').setIssuedAt().setExpirationTime(exp).sign(privateKey);

    const shop = await makeCert('shop.test');
    shopV2 = await makeCert('shop.test v2', ['shop.test']);
    const wild = await makeCert('*.apps.test');
    const htpasswd = `alice:${bcrypt.hashSync('wonderland', 10)}\nbob:${execFileSync('openssl', ['passwd', '-6', 'builder']).toString().trim()}\n`;
    gw.write(
      'all.yaml',
      [
        ingressClassYaml,
        serviceYaml('web', [web]),
        tlsSecretYaml('apps-tls', wild),
        `---\napiVersion: v1\nkind: Secret\nmetadata: { name: users, namespace: default }\ntype: Opaque\ndata: { auth: ${b64(htpasswd)} }\n`,
        ingress('shop', 'shop.test', {}, 'shop-tls'),
        ingress('apps', '*.apps.test', { 'nginx.ingress.kubernetes.io/ssl-redirect': 'false' }, 'apps-tls'),
        ingress('basic', 'basic.test', { 'nginx.ingress.kubernetes.io/auth-type': 'basic', 'nginx.ingress.kubernetes.io/auth-secret': 'users', 'nginx.ingress.kubernetes.io/auth-realm': 'Staff only' }),
        ingress('jwt', 'jwt.test', { 'netplane.io/auth-type': 'jwt', 'netplane.io/auth-jwt-jwks-url': `http://127.0.0.1:${jwksPort}/jwks`, 'netplane.io/auth-jwt-issuer': 'https://issuer.test', 'netplane.io/auth-jwt-audience': 'shop' }),
        ingress('signin', 'signin.test', { 'nginx.ingress.kubernetes.io/auth-url': `http://127.0.0.1:${authPort}/check`, 'nginx.ingress.kubernetes.io/auth-signin': 'https://$host/oauth2/start?rd=$escaped_request_uri' }),
        ingress('ext', 'ext.test', { 'nginx.ingress.kubernetes.io/auth-url': `http://127.0.0.1:${authPort}/check`, 'nginx.ingress.kubernetes.io/auth-response-headers': 'X-Auth-User', 'netplane.io/auth-timeout': '1' }),
        ingress('limited', 'limited.test', { 'nginx.ingress.kubernetes.io/limit-rps': '2', 'nginx.ingress.kubernetes.io/limit-burst-multiplier': '1' }),
        ingress('exempt', 'exempt.test', { 'nginx.ingress.kubernetes.io/limit-rps': '1', 'nginx.ingress.kubernetes.io/limit-burst-multiplier': '1', 'nginx.ingress.kubernetes.io/limit-whitelist': '10.0.0.0/8, 127.0.0.1' }),
        ingress('office', 'office.test', { 'nginx.ingress.kubernetes.io/auth-type': 'basic', 'nginx.ingress.kubernetes.io/auth-secret': 'users', 'nginx.ingress.kubernetes.io/allowlist-source-range': '127.0.0.0/8', 'nginx.ingress.kubernetes.io/satisfy': 'any' }),
        ingress('remote', 'remote.test', { 'nginx.ingress.kubernetes.io/auth-type': 'basic', 'nginx.ingress.kubernetes.io/auth-secret': 'users', 'nginx.ingress.kubernetes.io/allowlist-source-range': '10.0.0.0/8', 'nginx.ingress.kubernetes.io/satisfy': 'any' }),
        ingress('both', 'both.test', { 'nginx.ingress.kubernetes.io/auth-type': 'basic', 'nginx.ingress.kubernetes.io/auth-secret': 'users', 'nginx.ingress.kubernetes.io/allowlist-source-range': '10.0.0.0/8' }),
        ingress('inside', 'inside.test', { 'nginx.ingress.kubernetes.io/allowlist-source-range': '10.0.0.0/8, 127.0.0.0/8' }),
        ingress('outside', 'outside.test', { 'nginx.ingress.kubernetes.io/whitelist-source-range': '10.0.0.0/8,fd00::/8' }),
        ingress('denied', 'denied.test', { 'nginx.ingress.kubernetes.io/allowlist-source-range': '127.0.0.0/8', 'nginx.ingress.kubernetes.io/denylist-source-range': '127.0.0.1' }),
      ].join('---\n'),
    );
    gw.write('shop-tls.yaml', tlsSecretYaml('shop-tls', shop));
    await gw.start(['--hsts', '1h', '--proxy-read-timeout', '3s'], { host: 'basic.test' });
  }, 30_000);

  afterAll(async () => {
    await gw.stop();
    await web.stop();
    await new Promise((r) => authServer.close(r));
    await new Promise((r) => jwksServer.close(r));
  });

  it('picks the certificate by SNI: exact, wildcard, and the default for unknown names', async () => {
    expect((await peerCert(gw.https, 'shop.test')).subject.CN).toBe('shop.test');
    expect((await peerCert(gw.https, 'x.apps.test')).subject.CN).toBe('*.apps.test');
    expect((await peerCert(gw.https, 'other.test')).subject.CN).toBe('netplane default certificate');
  });

  it('serves HTTP/2 over TLS to curl, with HSTS', async () => {
    // Not execFileSync: the backend lives in this process and must keep answering while curl runs.
    const { stdout: out } = await promisify(execFile)('curl', ['-sk', '--http2', '-D', '-', '-o', '/dev/null', '--resolve', `shop.test:${gw.https}:127.0.0.1`, `https://shop.test:${gw.https}/`]);
    expect(out).toMatch(/^HTTP\/2 200/);
    expect(out).toMatch(/strict-transport-security: max-age=3600/i);
  });

  it('redirects HTTP to HTTPS with 308 for TLS hosts, unless ssl-redirect is off', async () => {
    const r = await gw.get('shop.test', '/cart?id=1');
    expect(r.status).toBe(308);
    expect(r.headers.location).toBe(`https://shop.test:${gw.https}/cart?id=1`);
    expect((await gw.get('x.apps.test', '/')).status).toBe(200);
  });

  it('satisfy any: a client in the source range needs no credentials, one outside it needs them; satisfy all needs both', async () => {
    const alice = { authorization: `Basic ${b64('alice:wonderland')}` };
    expect((await gw.get('office.test', '/')).status).toBe(200);
    expect((await gw.get('remote.test', '/')).status).toBe(401);
    expect((await gw.get('remote.test', '/', { headers: alice })).status).toBe(200);
    expect((await gw.get('both.test', '/', { headers: alice })).status).toBe(403);
  });

  it('source ranges: clients outside the allowlist or inside the denylist get 403, others pass', async () => {
    expect(echoOf(await gw.get('inside.test', '/')).backend).toBe('web');
    for (const host of ['outside.test', 'denied.test']) {
      const r = await gw.get(host, '/');
      expect([host, r.status, r.text]).toEqual([host, 403, '403 Forbidden\n']);
    }
    expect(await gw.metrics()).toMatch(/nginx_ingress_controller_requests\{[^}]*ingress="outside"[^}]*status="403"[^}]*\} 1/);
    // A WebSocket upgrade is held to the same ranges.
    const upgrade = await new Promise<number>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: gw.http, headers: { host: 'outside.test', connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13' } });
      req.on('response', (res) => (res.resume(), resolve(res.statusCode ?? 0)));
      req.on('upgrade', (_res, socket) => (socket.destroy(), resolve(101)));
      req.on('error', reject);
      req.end();
    });
    expect(upgrade).toBe(403);
  });

  it('swaps a certificate when its Secret changes, without a restart', async () => {
    gw.write('shop-tls.yaml', tlsSecretYaml('shop-tls', shopV2));
    await waitFor('the new certificate', async () => (await peerCert(gw.https, 'shop.test')).subject.CN === 'shop.test v2', 5000, 100);
  });

  it.each([
    ['no credentials', undefined, 401],
    ['wrong password', 'alice:nope', 401],
    ['unknown user', 'mallory:wonderland', 401],
    ['bcrypt user', 'alice:wonderland', 200],
    ['SHA-512-crypt user', 'bob:builder', 200],
  ] as const)('basic auth: %s (%s) -> %i', async (_name, creds, status) => {
    const r = await gw.get('basic.test', '/', { headers: creds ? { authorization: `Basic ${b64(creds)}` } : {} });
    expect(r.status).toBe(status);
    if (status === 401) expect(r.headers['www-authenticate']).toBe('Basic realm="Staff only"');
  });

  it('JWT: a good token passes; missing, expired, wrong audience and forged ones get 401', async () => {
    const bearer = async (t: string) => gw.get('jwt.test', '/', { headers: { authorization: `Bearer ${t}` } });
    expect((await bearer(await sign({ sub: 'alice' }))).status).toBe(200);
    const missing = await gw.get('jwt.test', '/');
    expect(missing.status).toBe(401);
    expect(missing.headers['www-authenticate']).toMatch(/^Bearer/);
    expect((await bearer(await sign({ sub: 'alice' }, '-5m'))).status).toBe(401);
    const wrongAud = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setAudience('shop').setIssuer('https://issuer.test').setExpirationTime('5m').sign(new TextEncoder().encode('x'.repeat(32)));
    expect((await bearer(wrongAud)).status).toBe(401);
    const good = await sign({ sub: 'alice' });
    const [h, , s] = good.split('.');
    expect((await bearer(`${h}.${b64(JSON.stringify({ sub: 'root', iss: 'https://issuer.test', aud: 'shop', exp: 9e9 })).replace(/=+$/, '')}.${s}`)).status).toBe(401);
  });

  it('external auth with auth-signin: a 401 sends the client to sign in, with where to come back', async () => {
    const r = await gw.get('signin.test', '/cart?id=7');
    expect([r.status, r.headers.location]).toEqual([302, 'https://signin.test/oauth2/start?rd=%2Fcart%3Fid%3D7']);
    expect((await gw.get('signin.test', '/', { headers: { authorization: 'Bearer ok' } })).status).toBe(200);
    // Other refusals are not sign-in matters.
    expect((await gw.get('signin.test', '/', { headers: { authorization: 'Bearer broken' } })).status).toBe(500);
  });

  it('external auth: 2xx passes with the chosen headers, 401 goes back, other answers and time-outs fail closed', async () => {
    const ok = await gw.get('ext.test', '/', { headers: { authorization: 'Bearer ok', 'x-auth-user': 'forged' } });
    expect(ok.status).toBe(200);
    expect(echoOf(ok).headers['x-auth-user']).toBe('alice');
    const no = await gw.get('ext.test', '/', { headers: { authorization: 'Bearer no' } });
    expect(no.status).toBe(401);
    expect(no.headers['www-authenticate']).toBe('Bearer realm="ext"');
    expect((await gw.get('ext.test', '/', { headers: { authorization: 'Bearer broken' } })).status).toBe(500);
    expect((await gw.get('ext.test', '/slow', { headers: { authorization: 'Bearer ok' } })).status).toBe(503);
  });

  it('rate-limits per client IP with 429 and Retry-After', async () => {
    const statuses: number[] = [];
    let retryAfter: unknown;
    for (let i = 0; i < 8; i++) {
      const r = await gw.get('limited.test', '/');
      statuses.push(r.status);
      if (r.status === 429) retryAfter = r.headers['retry-after'];
    }
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(2);
    expect(statuses.filter((s) => s === 200).length).toBeLessThanOrEqual(4);
    expect(statuses).toContain(429);
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
    // Other hosts are not limited, nor are clients the Ingress's limit-whitelist names.
    for (let i = 0; i < 8; i++) expect((await gw.get('basic.test', '/')).status).toBe(401);
    for (let i = 0; i < 8; i++) expect((await gw.get('exempt.test', '/')).status).toBe(200);
  });
});
