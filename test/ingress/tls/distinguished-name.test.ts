// The subject DN netplane passes upstream (ssl-client-subject-dn) and matches auth-tls-match-cn against must be
// nginx's $ssl_client_s_dn, byte for byte: real nginx (1.22, Debian's nginx-light) prints it for openssl-made client
// certificates, and distinguishedName() must print the same from what Node shows of each certificate.
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { distinguishedName } from '../../../ingress/tls/client-auth.ts';
import { freePort } from '../../helpers/ports.ts';
import { startNginx, type TestNginx } from '../../helpers/nginx.ts';
import { OpensslPki, type PkiFiles } from './openssl-pki.ts';

const run = promisify(execFile);

// [what, openssl -subj]
const subjects: Array<[string, string]> = [
  ['plain', '/O=Org/CN=client1'],
  ['the usual attributes', '/C=US/ST=CA/L=San Jose/O=Org/OU=Dev/CN=client1/emailAddress=a@example.com'],
  ['a multi-valued RDN', '/O=Org/OU=Dev+OU=Ops/CN=client1'],
  ['RFC 2253 specials in values', '/O=Acme, Inc./OU=a"b<c>d;e\\\\f=g/CN=x\\+y'],
  ['a leading "#", leading and trailing spaces', '/O=#hash/CN= lead trail '],
  ['UTF-8', '/O=Örg ü/CN=Jürgen 日本'],
  ['domain components and UID', '/DC=com/DC=example/UID=u1/serialNumber=42/CN=svc'],
];

describe('distinguishedName is nginx\'s $ssl_client_s_dn', () => {
  const pki = new OpensslPki();
  let ca: PkiFiles;
  const clients: PkiFiles[] = [];
  let nginx: TestNginx | undefined;
  let port = 0;

  beforeAll(async () => {
    ca = pki.ca('ca', 'DN Test CA');
    const server = pki.client('server', '/CN=localhost', ca);
    for (const [i, [, subj]] of subjects.entries()) clients.push(pki.client(`c${i}`, subj, ca));
    port = await freePort();
    const d = pki.dir;
    nginx = await startNginx(d, `  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${server.crt}; ssl_certificate_key ${server.key};
    ssl_client_certificate ${ca.crt}; ssl_verify_client optional;
    location / { return 200 "$ssl_client_s_dn"; }
  }
`, async () => (await run('curl', ['-sk', `https://127.0.0.1:${port}/`]).then(() => true).catch(() => false)));
  }, 30_000);

  afterAll(() => {
    nginx?.stop();
    pki.remove();
  });

  it.each(subjects.map(([what], i) => [what, i] as const))('%s', async (_what, i) => {
    const { stdout } = await run('curl', ['-sk', '--cert', clients[i]!.crt, '--key', clients[i]!.key, `https://127.0.0.1:${port}/`]);
    expect(stdout).not.toBe('');
    expect(distinguishedName(new X509Certificate(clients[i]!.pem).subject)).toBe(stdout);
  });
});
