// auth-url through `netplane ingress`, as ingress-nginx's auth location sends the subrequest: the X-Request-ID the
// backend gets (ingress-nginx's $req_id: the client's, else one made for the request), and X-Sent-From; and the
// auth-response-headers as its `proxy_set_header 'X-User' $authHeader0` passes them: one the auth service did not
// send reaches the backend as no header at all (nginx sends no header with an empty value), never the client's.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EchoBackend, GatewayProcess, echoOf, ingressClassYaml, ingressYaml, serviceYaml } from '../e2e/harness.ts';

describe('the auth subrequest and the upstream request share one X-Request-ID', () => {
  const web = new EchoBackend('web');
  const auth = new EchoBackend('auth');
  const gw = new GatewayProcess();
  const seen: Array<Record<string, string | string[] | undefined>> = [];

  beforeAll(async () => {
    auth.handler = (req, res) => {
      seen.push(req.headers);
      res.writeHead(req.headers['x-deny'] === undefined ? 200 : 401, { 'x-user': 'alice', 'x-team': '' }).end();
      return true;
    };
    await web.start();
    await auth.start();
    const annotations = {
      'nginx.ingress.kubernetes.io/auth-url': `http://127.0.0.1:${auth.port}/check`,
      'nginx.ingress.kubernetes.io/auth-response-headers': 'X-User, X-Email, X-Team',
    };
    gw.write('all.yaml', [ingressClassYaml, serviceYaml('web', [web]), ingressYaml({ name: 'app', host: 'app.test', paths: [['Prefix', '/', 'web']], annotations })].join('\n---\n'));
    await gw.start(['--access-log', 'on'], { host: 'app.test' });
  }, 30_000);

  afterAll(async () => {
    await gw.stop();
    await web.stop();
    await auth.stop();
  });

  it('one made by the gateway when the client sent none', async () => {
    seen.length = 0;
    const r = await gw.get('app.test', '/x');
    expect(r.status).toBe(200);
    const upstream = echoOf(r).headers['x-request-id'];
    expect(upstream).toMatch(/^[0-9a-f]{32}$/);
    expect([seen[0]?.['x-request-id'], seen[0]?.['x-sent-from']]).toEqual([upstream, 'nginx-ingress-controller']);
  });

  it('the client’s, when it sent one of a usable shape', async () => {
    seen.length = 0;
    const r = await gw.get('app.test', '/x', { headers: { 'x-request-id': 'client-id-1' } });
    expect([echoOf(r).headers['x-request-id'], seen[0]?.['x-request-id']]).toEqual(['client-id-1', 'client-id-1']);
  });

  it('a request the auth service refuses is logged with the id the auth service got', async () => {
    seen.length = 0;
    const r = await gw.get('app.test', '/denied', { headers: { 'x-deny': '1' } });
    expect(r.status).toBe(401);
    const id = seen[0]?.['x-request-id'];
    expect(id).toMatch(/^[0-9a-f]{32}$/);
    await expect.poll(() => gw.output.split('\n').some((l) => l.includes('"path":"/denied"') && l.includes(`"id":"${id}"`))).toBe(true);
  });

  it('auth-response-headers: the auth service’s go upstream; one it did not send, or sent empty, is no header', async () => {
    const r = await gw.get('app.test', '/x', { headers: { 'x-user': 'forged', 'x-email': 'forged@example.com', 'x-team': 'admins' } });
    const h = echoOf(r).headers;
    expect([h['x-user'], 'x-email' in h, 'x-team' in h]).toEqual(['alice', false, false]);
  });
});
