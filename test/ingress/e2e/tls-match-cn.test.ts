// auth-tls-match-cn through `netplane ingress`, with curl and openssl-made certificates: ingress-nginx writes
// `if ($ssl_client_s_dn !~ <pattern>) { return 403 "client certificate unauthorized"; }` in the host's server, so the
// subject DN in nginx's RFC 2253 form (`CN=client1,O=Org`) is matched unanchored and case-sensitively, after nginx's
// own 400s (no certificate where one is required, a certificate that fails verification unless optional_no_ca);
// where none is required the DN is empty and must match too. The pattern runs on a linear-time engine: one that
// sends a backtracking engine into exponential time is answered at once. A pattern RE2 cannot run, or one with
// verify "off", takes only its Ingress out of service.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OpensslPki, type PkiFiles } from '../tls/openssl-pki.ts';
import { b64, EchoBackend, GatewayProcess, ingressClassYaml, ingressYaml, serviceYaml, type Echo } from './harness.ts';

const run = promisify(execFile);
const ngx = 'nginx.ingress.kubernetes.io/';

describe('netplane ingress auth-tls-match-cn', () => {
  const web = new EchoBackend('web');
  const gw = new GatewayProcess();
  const pki = new OpensslPki();
  const who: Record<string, PkiFiles> = {};

  async function curl(host: string, as?: string, path = '/'): Promise<{ status: number; echo?: Echo }> {
    const argv = ['-sk', '--resolve', `${host}:${gw.https}:127.0.0.1`, '-w', '\n%{http_code}'];
    if (as) argv.push('--cert', who[as]!.crt, '--key', who[as]!.key);
    const { stdout } = await run('curl', [...argv, `https://${host}:${gw.https}${path}`]);
    const cut = stdout.lastIndexOf('\n');
    const status = Number(stdout.slice(cut + 1));
    return { status, ...(status === 200 ? { echo: JSON.parse(stdout.slice(0, cut)) as Echo } : {}) };
  }

  beforeAll(async () => {
    await web.start();
    const ca = pki.ca('ca', 'Clients CA');
    const rogue = pki.ca('rogue', 'Rogue CA');
    who.client1 = pki.client('client1', '/O=Org/CN=client1', ca);
    who.client2 = pki.client('client2', '/O=Org/CN=client2', ca);
    who.upper = pki.client('upper', '/O=Org/CN=CLIENT1', ca);
    who.team = pki.client('team', '/O=Acme, Inc./OU=Dev+OU=Ops/CN=client1', ca);
    who.rogue1 = pki.client('rogue1', '/O=Org/CN=client1', rogue);
    // 60 a's and then more of the DN: 2^60 ways for a backtracking engine to fail (a+)+$.
    who.longA = pki.client('longA', `/C=US/OU=${'a'.repeat(60)}/CN=x`, ca);
    who.allA = pki.client('allA', `/CN=${'a'.repeat(60)}`, ca);
    const ing = (name: string, annotations: Record<string, string>) =>
      ingressYaml({ name, host: `${name}.test`, paths: [['Prefix', '/', 'web']], annotations: { [`${ngx}ssl-redirect`]: 'false', [`${ngx}auth-tls-secret`]: 'clients-ca', ...annotations } });
    gw.write(
      'all.yaml',
      [
        ingressClassYaml,
        serviceYaml('web', [web]),
        `apiVersion: v1\nkind: Secret\nmetadata: { name: clients-ca, namespace: default }\ntype: Opaque\ndata: { ca.crt: ${b64(ca.pem)} }\n`,
        ing('on', { [`${ngx}auth-tls-match-cn`]: 'CN=client1' }),
        ing('optional', { [`${ngx}auth-tls-verify-client`]: 'optional', [`${ngx}auth-tls-match-cn`]: 'CN=client1' }),
        ing('noca', { [`${ngx}auth-tls-verify-client`]: 'optional_no_ca', [`${ngx}auth-tls-match-cn`]: 'CN=client1' }),
        ing('empty', { [`${ngx}auth-tls-verify-client`]: 'optional', [`${ngx}auth-tls-match-cn`]: '^(CN=client1,|$)' }),
        ing('nocase', { [`${ngx}auth-tls-match-cn`]: '(?i)^cn=client1,' }),
        ing('exact', { [`${ngx}auth-tls-match-cn`]: '^CN=client1,OU=Ops\\+OU=Dev,O=Acme\\\\, Inc\\.$' }),
        ing('paged', { [`${ngx}auth-tls-match-cn`]: 'CN=client1', [`${ngx}auth-tls-error-page`]: 'https://help.example.com/certs' }),
        ing('redos', { [`${ngx}auth-tls-match-cn`]: '(a+)+$' }),
        ing('backref', { [`${ngx}auth-tls-match-cn`]: '(CN)=\\1' }),
        ing('off', { [`${ngx}auth-tls-verify-client`]: 'off', [`${ngx}auth-tls-match-cn`]: 'CN=client1' }),
        ingressYaml({ name: 'narrow', host: 'narrow.test', paths: [['Prefix', '/api', 'web']], annotations: { [`${ngx}ssl-redirect`]: 'false', [`${ngx}auth-tls-secret`]: 'clients-ca', [`${ngx}auth-tls-match-cn`]: 'CN=client1' } }),
      ].join('---\n'),
    );
    await gw.start([], { host: 'optional.test' });
  }, 60_000);

  afterAll(async () => {
    await gw.stop();
    await web.stop();
    pki.remove();
  });

  // [host, client certificate (undefined: none), status]
  const cases: Array<[string, string | undefined, number]> = [
    ['on.test', 'client1', 200],
    ['on.test', 'client2', 403],
    ['on.test', 'upper', 403],
    ['on.test', 'team', 200],
    ['on.test', undefined, 400],
    ['on.test', 'rogue1', 400],
    ['optional.test', 'client1', 200],
    ['optional.test', 'client2', 403],
    ['optional.test', undefined, 403],
    ['optional.test', 'rogue1', 400],
    ['noca.test', 'rogue1', 200],
    ['noca.test', 'client2', 403],
    ['noca.test', undefined, 403],
    ['empty.test', undefined, 200],
    ['empty.test', 'client1', 200],
    ['empty.test', 'client2', 403],
    ['nocase.test', 'upper', 200],
    ['nocase.test', 'client2', 403],
    ['exact.test', 'team', 200],
    ['exact.test', 'client1', 403],
    ['paged.test', 'client2', 403],
    ['paged.test', undefined, 302],
  ];

  it.each(cases)('%s as %s: %i', async (host, as, status) => {
    const r = await curl(host, as);
    expect(r.status).toBe(status);
    if (status === 200) expect(r.echo!.headers['ssl-client-subject-dn']).toBe(as === undefined ? undefined : { client1: 'CN=client1,O=Org', team: 'CN=client1,OU=Ops+OU=Dev,O=Acme\\, Inc.', upper: 'CN=CLIENT1,O=Org', rogue1: 'CN=client1,O=Org' }[as]);
  });

  it('checks the certificate before telling a client that a path of the host has no route, as nginx checks it in the server block', async () => {
    // narrow.test routes /api only: without the check first, a refused client would learn which paths exist.
    expect((await curl('narrow.test', undefined, '/other')).status).toBe(400);
    expect((await curl('narrow.test', 'client2', '/other')).status).toBe(403);
    expect((await curl('narrow.test', 'client1', '/other')).status).toBe(404);
    expect((await curl('narrow.test', 'client1', '/api')).status).toBe(200);
    expect((await gw.get('narrow.test', '/other')).status).toBe(403);
  });

  it('answers plain HTTP with 403 where the empty DN does not match, as nginx\'s server-level check does', async () => {
    expect((await gw.get('optional.test', '/')).status).toBe(403);
    expect((await gw.get('empty.test', '/')).status).toBe(200);
  });

  it('answers (a+)+$ against a DN with 60 a\'s at once, where a backtracking engine would run for ages', async () => {
    expect((await curl('redos.test', 'longA')).status).toBe(403);
    expect((await curl('redos.test', 'allA')).status).toBe(200);
  });

  it('takes an Ingress whose pattern RE2 cannot run, or with verify "off", out of service, logged and counted', async () => {
    const metrics = await gw.metrics();
    for (const name of ['backref', 'off']) expect(metrics).toMatch(new RegExp(`netplane_ingress_problems\\{namespace="default",ingress="${name}",served="no"\\} 1`));
    expect(gw.output).toContain('auth-tls-match-cn is \\"(CN)=\\\\\\\\1\\"; it uses a back-reference');
    expect(gw.output).toContain('auth-tls-match-cn is \\"CN=client1\\"; it takes effect only when a client certificate is asked for');
    expect((await curl('backref.test', 'client1')).status).toBe(404);
  });
});
