// Client certificates (ingress-nginx auth-tls-*) through `netplane ingress`, with curl and openssl s_client as the
// clients: a certificate asked for only on guarded hosts, verified against the CA bundle of the host's Secret, the
// verdict passed upstream in ssl-client-* headers (never the client's own), verify modes on / optional /
// optional_no_ca, the verify depth, 421 for a connection made for another name, and the CA Secret swapped live.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../helpers/wait.ts';
import { makeCert, type Pems } from '../tls/pki.ts';
import { b64, EchoBackend, GatewayProcess, ingressClassYaml, ingressYaml, serviceYaml, type Echo } from './harness.ts';

const run = promisify(execFile);
const ngx = 'nginx.ingress.kubernetes.io/';

function ingress(name: string, host: string, annotations: Record<string, string> = {}): string {
  return ingressYaml({ name, host, paths: [['Prefix', '/', 'web']], annotations: { [`${ngx}ssl-redirect`]: 'false', ...annotations } });
}

const caSecretYaml = (name: string, ca: Pems) =>
  `---\napiVersion: v1\nkind: Secret\nmetadata: { name: ${name}, namespace: default }\ntype: Opaque\ndata: { ca.crt: ${b64(ca.cert)} }\n`;

describe('netplane ingress client certificates', () => {
  const web = new EchoBackend('web');
  const gw = new GatewayProcess();
  const files = mkdtempSync(join(tmpdir(), 'netplane-client-certs-'));
  let root: Pems;
  let rogue: Pems;
  let alice: Pems;

  /** A client identity as files for curl: `who` → its certificate (chain) and key. */
  const identity = (who: string, p: Pems, chain: Pems[] = []) => {
    writeFileSync(join(files, `${who}.crt`), [p.cert, ...chain.map((c) => c.cert)].join('\n'));
    writeFileSync(join(files, `${who}.key`), p.key);
  };

  /** A request with curl over HTTPS to `host` (SNI `sni`, default the host), as `who` (undefined: no certificate). */
  async function curl(host: string, who?: string, o: { http2?: boolean; sni?: string; headers?: string[] } = {}): Promise<{ status: number; echo?: Echo; body: string }> {
    const sni = o.sni ?? host;
    const argv = ['-sk', o.http2 ? '--http2' : '--http1.1', '--resolve', `${sni}:${gw.https}:127.0.0.1`, '-w', '\n%{http_code}'];
    if (who) argv.push('--cert', join(files, `${who}.crt`), '--key', join(files, `${who}.key`));
    if (sni !== host) argv.push('-H', `Host: ${host}`);
    for (const h of o.headers ?? []) argv.push('-H', h);
    const { stdout } = await run('curl', [...argv, `https://${sni}:${gw.https}/`]);
    const cut = stdout.lastIndexOf('\n');
    const body = stdout.slice(0, cut);
    const status = Number(stdout.slice(cut + 1));
    return { status, body, ...(status === 200 ? { echo: JSON.parse(body) as Echo } : {}) };
  }

  /** What openssl s_client prints about the CertificateRequest of a handshake with SNI `sni`. */
  async function caNames(sni: string): Promise<string> {
    const { stdout } = await run('sh', ['-c', `openssl s_client -connect 127.0.0.1:${gw.https} -servername ${sni} </dev/null 2>/dev/null`]);
    return stdout.includes('Acceptable client certificate CA names') ? stdout.split('Acceptable client certificate CA names')[1]!.split('\n')[1]!.trim() : 'none asked';
  }

  /** One HTTP/1.1 request for secure.test over a TLS connection as `as`, resuming `session` when given. */
  function overTls(as: Pems, session?: Buffer): Promise<{ status: number; reused: boolean; session?: Buffer }> {
    return new Promise((resolve, reject) => {
      let saved: Buffer | undefined;
      let text = '';
      const s = connect({ host: '127.0.0.1', port: gw.https, servername: 'secure.test', rejectUnauthorized: false, cert: as.cert, key: as.key, ALPNProtocols: ['http/1.1'], ...(session ? { session } : {}) });
      s.on('session', (x: Buffer) => (saved = x));
      s.on('secureConnect', () => s.write('GET / HTTP/1.1\r\nHost: secure.test\r\nConnection: close\r\n\r\n'));
      s.on('data', (d) => (text += d));
      s.on('end', () => resolve({ status: Number(text.split(' ')[1]), reused: s.isSessionReused(), ...(saved ? { session: saved } : {}) }));
      s.on('error', reject);
    });
  }

  beforeAll(async () => {
    await web.start();
    root = await makeCert('Clients CA', ['clients-ca.test'], { isCa: true });
    const intermediate = await makeCert('Team CA', ['team-ca.test'], { isCa: true, ca: root });
    rogue = await makeCert('Rogue CA', ['rogue-ca.test'], { isCa: true });
    alice = await makeCert('alice', ['alice.test'], { ca: root });
    identity('alice', alice);
    const bob = await makeCert('bob', ['bob.test'], { ca: intermediate });
    identity('bob', bob, [intermediate]);
    identity('bob-alone', bob);
    identity('mallory', await makeCert('mallory', ['mallory.test'], { ca: rogue }));
    const guard = (more: Record<string, string> = {}) => ({ [`${ngx}auth-tls-secret`]: 'clients-ca', ...more });
    gw.write(
      'all.yaml',
      [
        ingressClassYaml,
        serviceYaml('web', [web]),
        ingress('secure', 'secure.test', guard({ [`${ngx}auth-tls-pass-certificate-to-upstream`]: 'true' })),
        ingress('optional', 'optional.test', guard({ [`${ngx}auth-tls-verify-client`]: 'optional' })),
        ingress('noca', 'noca.test', guard({ [`${ngx}auth-tls-verify-client`]: 'optional_no_ca' })),
        ingress('shallow', 'shallow.test', guard({ [`${ngx}auth-tls-verify-depth`]: '0' })),
        ingress('bundled', 'bundled.test', { [`${ngx}auth-tls-secret`]: 'team-bundle', [`${ngx}auth-tls-verify-depth`]: '0' }),
        caSecretYaml('team-bundle', { cert: `${root.cert}\n${intermediate.cert}`, key: '' }),
        ingress('paged', 'paged.test', guard({ [`${ngx}auth-tls-error-page`]: 'https://help.example.com/certificates?from=gateway' })),
        ingress('missing', 'missing.test', { [`${ngx}auth-tls-secret`]: 'absent-ca' }),
        ingress('open', 'open.test'),
      ].join('---\n'),
    );
    gw.write('ca.yaml', caSecretYaml('clients-ca', root));
    await gw.start([], { host: 'open.test' });
  }, 30_000);

  afterAll(async () => {
    await gw.stop();
    await web.stop();
    rmSync(files, { recursive: true, force: true });
  });

  it('asks for a client certificate, naming the CA, only in handshakes for guarded hosts', async () => {
    expect(await caNames('secure.test')).toBe('CN = Clients CA');
    expect(await caNames('open.test')).toBe('none asked');
    expect(await caNames('unknown.test')).toBe('none asked');
  });

  it.each([false, true])('lets a verified client through and tells the upstream who it is (HTTP/2: %s)', async (http2) => {
    const r = await curl('secure.test', 'alice', { http2, headers: ['ssl-client-verify: FAILED:spoofed', 'SSL-Client-Subject-DN: CN=root'] });
    expect(r.status).toBe(200);
    const h = r.echo!.headers;
    expect([h['ssl-client-verify'], h['ssl-client-subject-dn'], h['ssl-client-issuer-dn']]).toEqual(['SUCCESS', 'CN=alice', 'CN=Clients CA']);
    expect(decodeURIComponent(h['ssl-client-cert'] as string).trim()).toBe(alice.cert.trim());
  });

  it.each([
    ['no certificate', undefined, 400],
    ['a certificate from another CA', 'mallory', 400],
    ['a certificate through an intermediate CA (depth 1 allowed)', 'bob', 200],
  ])('on a host with verify "on" answers %s with %s', async (_what, who, status) => {
    for (const http2 of [false, true]) expect((await curl('secure.test', who, { http2 })).status).toBe(status);
  });

  it('holds the verify depth: no intermediate CA allowed at depth 0', async () => {
    expect((await curl('shallow.test', 'alice')).status).toBe(200);
    expect((await curl('shallow.test', 'bob')).status).toBe(400);
    // The intermediate in the CA bundle instead of sent by the client: still one intermediate.
    expect((await curl('bundled.test', 'alice')).status).toBe(200);
    expect((await curl('bundled.test', 'bob-alone')).status).toBe(400);
    expect((await curl('secure.test', 'bob-alone')).status).toBe(400);
  });

  it('sends a refused client to the error page when the Ingress names one', async () => {
    const { stdout } = await run('curl', ['-sk', '--resolve', `paged.test:${gw.https}:127.0.0.1`, '-o', '/dev/null', '-w', '%{http_code} %{redirect_url}', `https://paged.test:${gw.https}/`]);
    expect(stdout).toBe('302 https://help.example.com/certificates?from=gateway');
    expect((await curl('paged.test', 'alice')).status).toBe(200);
  });

  it('verify "optional" admits a client without a certificate, never one with a bad certificate', async () => {
    const none = await curl('optional.test');
    expect(none.status).toBe(200);
    expect(none.echo!.headers['ssl-client-verify']).toBe('NONE');
    expect(none.echo!.headers['ssl-client-subject-dn']).toBeUndefined();
    expect((await curl('optional.test', 'mallory')).status).toBe(400);
    expect((await curl('optional.test', 'alice')).echo!.headers['ssl-client-verify']).toBe('SUCCESS');
  });

  it('verify "optional_no_ca" admits any certificate and says whether it verified', async () => {
    const r = await curl('noca.test', 'mallory');
    expect(r.status).toBe(200);
    expect(r.echo!.headers['ssl-client-verify']).toMatch(/^FAILED:/);
    expect(r.echo!.headers['ssl-client-subject-dn']).toBe('CN=mallory');
    expect((await curl('noca.test', 'alice')).echo!.headers['ssl-client-verify']).toBe('SUCCESS');
  });

  it('an unguarded host passes no ssl-client-* header, not even the client-sent ones', async () => {
    const r = await curl('open.test', 'alice', { headers: ['ssl-client-verify: SUCCESS', 'ssl-client-subject-dn: CN=admin'] });
    expect(r.status).toBe(200);
    expect(Object.keys(r.echo!.headers).filter((k) => k.startsWith('ssl-client'))).toEqual([]);
  });

  it('421 for a guarded host on a connection made for another name; 400 over plain HTTP; 503 without the CA', async () => {
    expect((await curl('secure.test', 'alice', { sni: 'open.test' })).status).toBe(421);
    expect((await curl('secure.test', 'alice', { sni: 'open.test', http2: true })).status).toBe(421);
    expect((await gw.get('secure.test', '/')).status).toBe(400);
    const plain = await gw.get('optional.test', '/');
    expect(plain.status).toBe(200);
    expect(JSON.parse(plain.text).headers['ssl-client-verify']).toBe('NONE');
    expect((await curl('missing.test', 'alice')).status).toBe(503);
    expect(await caNames('missing.test')).toBe('none asked');
  });

  it('keeps a resumed TLS session to what its first handshake verified', async () => {
    const first = await overTls(alice);
    expect([first.status, first.reused]).toEqual([200, false]);
    const again = await overTls(alice, first.session);
    expect([again.status, again.reused]).toEqual([200, true]);
  });

  it('checks against the new CA bundle from the next handshake when the Secret changes', async () => {
    const before = await overTls(alice);
    gw.write('ca.yaml', caSecretYaml('clients-ca', rogue));
    await waitFor('the new CA bundle', async () => (await curl('secure.test', 'mallory')).status === 200, 10_000, 100);
    expect((await curl('secure.test', 'alice')).status).toBe(400);
    expect(await caNames('secure.test')).toBe('CN = Rogue CA');
    // A session verified against the old bundle is not resumed: the handshake is made again, and refused.
    expect(await overTls(alice, before.session)).toMatchObject({ status: 400, reused: false });
    // A bundle that cannot be read keeps the last good one.
    gw.write('ca.yaml', caSecretYaml('clients-ca', { cert: 'not a certificate', key: '' }));
    await waitFor('the bad bundle to be seen', async () => gw.output.includes('CA bundle not usable'), 10_000, 100);
    expect((await curl('secure.test', 'mallory')).status).toBe(200);
    gw.write('ca.yaml', caSecretYaml('clients-ca', root));
    await waitFor('the first CA bundle again', async () => (await curl('secure.test', 'alice')).status === 200, 10_000, 100);
  });
});
