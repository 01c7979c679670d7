// Basic-auth Secrets through `netplane ingress` (audit 3, missing 3): the `$apr1$` lines Apache's htpasswd writes by
// default (ingress-nginx's basic-auth guide) log in; a Secret whose every line is refused still fails closed (503),
// and is now an Ingress problem as soon as it is read — logged, in the problems gauge and the reload gauge — and
// clears when the Secret is fixed, without a restart.
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../helpers/wait.ts';
import { b64, EchoBackend, GatewayProcess, ingressClassYaml, ingressYaml, serviceYaml } from './harness.ts';

const ngx = 'nginx.ingress.kubernetes.io/';
const secretYaml = (name: string, htpasswd: string) => `apiVersion: v1\nkind: Secret\nmetadata: { name: ${name}, namespace: default }\ntype: Opaque\ndata: { auth: ${b64(htpasswd)} }\n`;
/** An `$apr1$` line as `htpasswd -c auth foo` writes it, made by a real tool (openssl), not the library under test. */
const apr1Line = (user: string, password: string) => `${user}:${execFileSync('openssl', ['passwd', '-apr1', password]).toString().trim()}\n`;
const problemGauge = (name: string) => new RegExp(`netplane_ingress_problems\\{namespace="default",ingress="${name}",served="no"\\} 1`);

describe('netplane ingress basic-auth Secrets', () => {
  const web = new EchoBackend('web');
  const gw = new GatewayProcess();
  const auth = (user: string, password: string) => ({ authorization: `Basic ${b64(`${user}:${password}`)}` });

  beforeAll(async () => {
    await web.start();
    const ing = (name: string, secret: string) => ingressYaml({ name, host: `${name}.test`, paths: [['Prefix', '/', 'web']], annotations: { [`${ngx}auth-type`]: 'basic', [`${ngx}auth-secret`]: secret } });
    gw.write('all.yaml', [ingressClassYaml, serviceYaml('web', [web]), ing('md5', 'md5users'), ing('old', 'oldusers')].join('---\n'));
    gw.write('md5users.yaml', secretYaml('md5users', apr1Line('foo', 'bar')));
    // MD5-crypt and SHA-1: nothing netplane accepts.
    gw.write('oldusers.yaml', secretYaml('oldusers', 'ann:$1$saltsalt$9xy1btjgzLYfb7hivXtC//\nbob:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=\n'));
    await gw.start([], { host: 'md5.test' });
  }, 30_000);

  afterAll(async () => {
    await gw.stop();
    await web.stop();
  });

  it.each([
    ['the right password', 200, auth('foo', 'bar')],
    ['a wrong password', 401, auth('foo', 'baz')],
    ['an unknown user', 401, auth('fob', 'bar')],
  ])('an $apr1$ (htpasswd -c) user: %s gets %i', async (_what, status, headers) => {
    expect((await gw.get('md5.test', '/', { headers })).status).toBe(status);
  });

  it('reports a Secret with no usable line as the Ingress\'s problem at once, and still answers 503', async () => {
    const metrics = await gw.metrics();
    expect(metrics).toMatch(problemGauge('old'));
    expect(metrics).not.toMatch(/netplane_ingress_problems\{[^}]*ingress="md5"/);
    expect(metrics).toMatch(/nginx_ingress_controller_config_last_reload_successful 0/);
    // Logged once at compile time, naming the Secret and why each line was refused — before any request to it.
    const warnings = gw.output.split('\n').filter((l) => l.includes('"ingress":"default/old"') && l.includes('"level":40'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/basic auth Secret default\/oldusers has no usable htpasswd line \(line 1: an MD5-crypt \(\$1\$\) hash is not accepted[^)]*\); line 2: a SHA-1/);
    expect((await gw.get('old.test', '/', { headers: auth('ann', 'secret') })).status).toBe(503);
  });

  it('clears the problem when the Secret is fixed, and reports it again when it breaks, without a restart', async () => {
    gw.write('oldusers.yaml', secretYaml('oldusers', apr1Line('ann', 'secret')));
    await waitFor('the fixed Secret', async () => (await gw.get('old.test', '/', { headers: auth('ann', 'secret') })).status === 200, 10_000, 50);
    let metrics = await gw.metrics();
    expect(metrics).not.toMatch(/netplane_ingress_problems\{[^}]*ingress="old"/);
    expect(metrics).toMatch(/nginx_ingress_controller_config_last_reload_successful 1/);
    gw.write('oldusers.yaml', secretYaml('oldusers', 'ann:plain\n'));
    await waitFor('the broken Secret', async () => (await gw.get('old.test', '/', { headers: auth('ann', 'secret') })).status === 503, 10_000, 50);
    metrics = await gw.metrics();
    expect(metrics).toMatch(problemGauge('old'));
    expect(gw.output).toMatch(/basic auth Secret default\/oldusers has no usable htpasswd line \(line 1: a plain-text or unrecognised password/);
  });
});
