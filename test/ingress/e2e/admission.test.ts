// The gateway's validating admission webhook (--validating-webhook), run as a process from a manifests directory and
// asked as the API server asks it (AdmissionReviews over HTTPS, its certificate checked): writes it would serve as
// written are allowed, with warnings for what it would serve otherwise; a host and path another Ingress routes, one an
// update would take from a newer Ingress, a bad annotation value and a snippet are refused with the reason; other
// classes and deletes pass; a body that is no AdmissionReview is 400. A renewed certificate is served without a
// restart, and flags or files that cannot serve a webhook are refused at start with exit code 2.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../helpers/ports.ts';
import { waitFor } from '../../helpers/wait.ts';
import { makeCert } from '../tls/pki.ts';
import { admissionReview, ingressObject, type WebhookTarget } from './admission.ts';
import { EchoBackend, GatewayProcess, ingressClassYaml, peerCert, serviceYaml } from './harness.ts';

const bin = fileURLToPath(new URL('../../../bin/netplane.ts', import.meta.url));
const ngx = 'nginx.ingress.kubernetes.io/';
const servername = 'netplane-ingress-admission.netplane-system.svc';

const created = (date: string) => `---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: { name: NAME, namespace: default, creationTimestamp: "${date}T00:00:00Z" }
`;

describe('the validating admission webhook', () => {
  const web = new EchoBackend('web');
  const api = new EchoBackend('api');
  const gw = new GatewayProcess();
  const certs = mkdtempSync(join(tmpdir(), 'netplane-webhook-'));
  const target: WebhookTarget = { port: 0, ca: '', servername };

  beforeAll(async () => {
    await Promise.all([web.start(), api.start()]);
    const pems = await makeCert('netplane-ingress-admission', [servername]);
    writeFileSync(join(certs, 'tls.crt'), pems.cert);
    writeFileSync(join(certs, 'tls.key'), pems.key);
    target.ca = pems.cert;
    target.port = await freePort();
    gw.write(
      'all.yaml',
      [
        ingressClassYaml,
        serviceYaml('web', [web]),
        serviceYaml('api', [api]),
        `${created('2024-01-01').replace('NAME', 'web')}spec:\n  rules: [{ host: web.test, http: { paths: [{ path: /, pathType: Prefix, backend: { service: { name: web, port: { number: 80 } } } }] } }]\n`,
        `${created('2025-01-01').replace('NAME', 'newer')}spec:\n  rules: [{ host: new.test, http: { paths: [{ path: /api, pathType: Prefix, backend: { service: { name: api, port: { number: 80 } } } }] } }]\n`,
      ].join('---\n'),
    );
    await gw.start(['--validating-webhook', `127.0.0.1:${target.port}`, '--validating-webhook-certificate', join(certs, 'tls.crt'), '--validating-webhook-key', join(certs, 'tls.key')], { host: 'web.test' });
  }, 30_000);

  afterAll(async () => {
    await gw.stop();
    await Promise.all([web.stop(), api.stop()]);
    rmSync(certs, { recursive: true, force: true });
  });

  it('allows an Ingress on a host of its own without a word', async () => {
    expect((await admissionReview(target, ingressObject({ name: 'shop', rules: [['shop.test', '/', 'web']] }))).response).toEqual({ uid: expect.any(String), allowed: true });
  });

  it('allows an update of a served Ingress that keeps what it serves', async () => {
    const same = ingressObject({ name: 'web', rules: [['web.test', '/', 'web']], created: '2024-01-01T00:00:00Z' });
    expect((await admissionReview(target, same, 'UPDATE')).response).toEqual({ uid: expect.any(String), allowed: true });
  });

  it('refuses a host and path another Ingress routes, naming that Ingress', async () => {
    const r = await admissionReview(target, ingressObject({ name: 'copy', rules: [['web.test', '/', 'api']] }));
    expect(r.response.allowed).toBe(false);
    expect(r.response.status).toEqual({ code: 400, reason: 'BadRequest', message: expect.stringMatching(/^netplane would not serve Ingress default\/copy as written: rule host "web\.test" path "\/" \(Prefix\) is dropped: Ingress default\/web, .* already routes it$/) });
  });

  it('refuses an update that would take a path from the newer Ingress serving it now', async () => {
    const grown = ingressObject({ name: 'web', rules: [['web.test', '/', 'web'], ['new.test', '/api', 'web']], created: '2024-01-01T00:00:00Z' });
    const r = await admissionReview(target, grown, 'UPDATE');
    expect(r.response.allowed).toBe(false);
    expect(r.response.status?.message).toMatch(/Ingress default\/newer would lose what it serves now: rule host "new\.test" path "\/api" \(Prefix\) is dropped: Ingress default\/web/);
  });

  it.each([
    ['an annotation value it cannot honour', { [`${ngx}proxy-body-size`]: 'lots' }, /proxy-body-size/],
    ['a snippet', { [`${ngx}configuration-snippet`]: 'return 200;' }, /configuration-snippet/],
  ])('refuses %s, saying why', async (_what, annotations, why) => {
    const r = await admissionReview(target, ingressObject({ name: 'odd', rules: [['odd.test', '/', 'web']], annotations }));
    expect(r.response.allowed).toBe(false);
    expect(r.response.status?.message).toMatch(/^netplane would not serve Ingress default\/odd as written: /);
    expect(r.response.status?.message).toMatch(why);
  });

  it('allows, with warnings kubectl prints, a backend Service not there yet and annotations netplane ignores', async () => {
    const r = await admissionReview(target, ingressObject({ name: 'later', rules: [['later.test', '/', 'coming']], annotations: { [`${ngx}proxy-buffer-size`]: '8k' } }));
    expect(r.response.allowed).toBe(true);
    expect(r.response.warnings).toEqual([
      "backend Service default/coming does not exist; requests routed to it find no endpoint (503, or the Ingress's default-backend)",
      `annotations netplane ignores (nginx tuning, or asking for nothing): ${ngx}proxy-buffer-size`,
    ]);
  });

  it('lets Ingresses of another class and deletes through', async () => {
    const other = ingressObject({ name: 'other', className: 'internal', rules: [['web.test', '/', 'web']], annotations: { [`${ngx}configuration-snippet`]: 'x' } });
    expect((await admissionReview(target, other)).response.allowed).toBe(true);
    expect((await admissionReview(target, undefined, 'DELETE', { namespace: 'default', name: 'web' })).response).toEqual({ uid: expect.any(String), allowed: true });
  });

  it('answers 400 to a body that is no AdmissionReview and 405 to a GET, and counts what it answered', async () => {
    const dispatcher = new Agent({ connect: { ca: target.ca, servername } });
    try {
      const url = `https://127.0.0.1:${target.port}/networking/v1/ingresses`;
      const bad = await request(url, { method: 'POST', body: '{"kind":"TokenReview"}', dispatcher });
      expect([bad.statusCode, await bad.body.text()]).toEqual([400, 'the body is not an AdmissionReview of admission.k8s.io/v1 or v1beta1\n']);
      const get = await request(url, { dispatcher });
      await get.body.dump();
      expect(get.statusCode).toBe(405);
    } finally {
      await dispatcher.close();
    }
    const metrics = await gw.metrics();
    expect(metrics).toMatch(/netplane_ingress_admission_reviews_total\{result="denied"\} [1-9]/);
    expect(metrics).toMatch(/netplane_ingress_admission_reviews_total\{result="bad_request"\} [1-9]/);
    // ingress-nginx's check counters, by the Ingress judged.
    expect(metrics).toMatch(/nginx_ingress_controller_check_errors\{namespace="default",ingress="copy"\} 1\n/);
    expect(metrics).toMatch(/nginx_ingress_controller_check_success\{namespace="default",ingress="shop"\} [1-9]/);
  });

  it('serves a renewed certificate from the next handshake, without a restart', async () => {
    const renewed = await makeCert('netplane-ingress-admission-renewed', [servername]);
    writeFileSync(join(certs, 'tls.key'), renewed.key);
    writeFileSync(join(certs, 'tls.crt'), renewed.cert);
    await waitFor('the renewed certificate', async () => (await peerCert(target.port, servername)).subject.CN === 'netplane-ingress-admission-renewed', 15_000, 100);
    expect((await admissionReview({ ...target, ca: renewed.cert }, ingressObject({ name: 'shop', rules: [['shop.test', '/', 'web']] }))).response.allowed).toBe(true);
  });
});

describe('the webhook flags', () => {
  const run = (...args: string[]) => spawnSync(process.execPath, [bin, 'ingress', '--manifests', tmpdir(), '--http', '127.0.0.1:0', '--https', 'off', ...args], { encoding: 'utf8', timeout: 15_000 });

  it('refuses the webhook without its files with exit code 2 and one sentence', () => {
    const r = run('--validating-webhook', '127.0.0.1:0');
    expect([r.status, r.stderr.trim()]).toEqual([2, 'netplane ingress: --validating-webhook needs --validating-webhook-certificate FILE and --validating-webhook-key FILE: the API server speaks to the webhook over HTTPS only']);
  });

  it('refuses files that hold no certificate, naming the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'netplane-webhook-bad-'));
    try {
      writeFileSync(join(dir, 'cert'), 'not a certificate\n');
      writeFileSync(join(dir, 'key'), 'not a key\n');
      const r = run('--validating-webhook', '127.0.0.1:0', '--validating-webhook-certificate', join(dir, 'cert'), '--validating-webhook-key', join(dir, 'key'));
      expect(r.status).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(new RegExp(`^netplane ingress: --validating-webhook-certificate and --validating-webhook-key: .*${join(dir, 'cert')}`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
