// auth-secret-type auth-map through `netplane ingress`: a basic-auth Secret with one key per user, its value the
// password hash (made by a real tool, openssl), logs its users in; a bad entry is skipped with its key logged; a
// Secret with no usable entry fails closed (503) and is the Ingress's problem until it is fixed, without a restart.
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../helpers/wait.ts';
import { b64, EchoBackend, GatewayProcess, ingressClassYaml, ingressYaml, serviceYaml } from './harness.ts';

const ngx = 'nginx.ingress.kubernetes.io/';
const mapSecretYaml = (name: string, users: Record<string, string>) =>
  `apiVersion: v1\nkind: Secret\nmetadata: { name: ${name}, namespace: default }\ntype: Opaque\ndata: { ${Object.entries(users).map(([u, h]) => `${u}: ${b64(h)}`).join(', ')} }\n`;
const apr1 = (password: string) => execFileSync('openssl', ['passwd', '-apr1', password]).toString().trim();
const sha512 = (password: string) => execFileSync('openssl', ['passwd', '-6', password]).toString().trim();
const problemGauge = (name: string) => new RegExp(`netplane_ingress_problems\\{namespace="default",ingress="${name}",served="no"\\} 1`);

describe('netplane ingress basic auth with auth-secret-type auth-map', () => {
  const web = new EchoBackend('web');
  const gw = new GatewayProcess();
  const auth = (user: string, password: string) => ({ authorization: `Basic ${b64(`${user}:${password}`)}` });

  beforeAll(async () => {
    await web.start();
    const ing = (name: string, secret: string) => ingressYaml({ name, host: `${name}.test`, paths: [['Prefix', '/', 'web']], annotations: { [`${ngx}auth-type`]: 'basic', [`${ngx}auth-secret`]: secret, [`${ngx}auth-secret-type`]: 'auth-map' } });
    gw.write('all.yaml', [ingressClassYaml, serviceYaml('web', [web]), ing('team', 'teamusers'), ing('old', 'oldusers')].join('---\n'));
    // `htpasswd -n`-style values often end with a line break; pat's entry is a plain password, which is refused.
    gw.write('teamusers.yaml', mapSecretYaml('teamusers', { ann: `${apr1('ann-pass')}\n`, bob: sha512('bob-pass'), pat: 'plain' }));
    gw.write('oldusers.yaml', mapSecretYaml('oldusers', { cid: '$1$saltsalt$9xy1btjgzLYfb7hivXtC//' }));
    await gw.start([], { host: 'team.test' });
  }, 30_000);

  afterAll(async () => {
    await gw.stop();
    await web.stop();
  });

  it.each([
    ['ann (Apache MD5), right password', 200, auth('ann', 'ann-pass')],
    ['bob (SHA-512-crypt), right password', 200, auth('bob', 'bob-pass')],
    ['ann, bob\'s password', 401, auth('ann', 'bob-pass')],
    ['an unknown user', 401, auth('zed', 'ann-pass')],
    ['pat, whose entry is refused', 401, auth('pat', 'plain')],
    ['no credentials', 401, {}],
  ])('%s: %i', async (_what, status, headers) => {
    const r = await gw.get('team.test', '/', { headers });
    expect(r.status).toBe(status);
    if (status === 401) expect(r.headers['www-authenticate']).toBe('Basic realm="Authentication Required"');
  });

  it('logs the refused entry by its key, and serves the Ingress without a problem', async () => {
    expect(gw.output).toMatch(/"key":"pat".*auth-map entry skipped: a plain-text or unrecognised password/);
    expect(gw.output).not.toContain('plain"');
    expect(await gw.metrics()).not.toMatch(/netplane_ingress_problems\{[^}]*ingress="team"/);
  });

  it('a Secret with no usable entry answers 503 and is the Ingress\'s problem, until it is fixed', async () => {
    expect(await gw.metrics()).toMatch(problemGauge('old'));
    expect(gw.output).toMatch(/basic auth Secret default\/oldusers has no usable auth-map entry \(key \\"cid\\": an MD5-crypt/);
    expect((await gw.get('old.test', '/', { headers: auth('cid', 'secret') })).status).toBe(503);
    gw.write('oldusers.yaml', mapSecretYaml('oldusers', { cid: apr1('secret') }));
    await waitFor('the fixed Secret', async () => (await gw.get('old.test', '/', { headers: auth('cid', 'secret') })).status === 200, 10_000, 50);
    expect(await gw.metrics()).not.toMatch(/netplane_ingress_problems\{[^}]*ingress="old"/);
  });
});
