// X-Request-ID through `netplane ingress`, as ingress-nginx sets it (`proxy_set_header X-Request-ID $req_id`): the
// client's own when it sent one, else nginx's $request_id, 32 lower-case hex characters (16 random bytes), which log
// pipelines and tracing match on; the access log names the same id.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EchoBackend, echoOf, ingressClassYaml, ingressYaml, serviceYaml } from '../e2e/harness.ts';
import { FixedPortGateway } from './fixed-ports.ts';

describe('X-Request-ID', () => {
  const web = new EchoBackend('web');
  const gw = new FixedPortGateway(63820);

  beforeAll(async () => {
    await new Promise<void>((r) => web.server.listen(63823, '127.0.0.1', r));
    web.port = 63823;
    gw.write('all.yaml', [ingressClassYaml, serviceYaml('web', [web]), ingressYaml({ name: 'app', host: 'app.test', paths: [['Prefix', '/', 'web']] })].join('\n---\n'));
    await gw.start(['--access-log', 'on'], { host: 'app.test' });
  }, 30_000);

  afterAll(async () => {
    await gw.stop();
    await web.stop();
  });

  const idSent = async (headers: Record<string, string> = {}, path = '/') => echoOf(await gw.get('app.test', path, { headers })).headers['x-request-id'];

  it('one made by the gateway is 32 lower-case hex characters, like nginx $request_id, new for each request', async () => {
    const ids = [await idSent(), await idSent(), await idSent()];
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{32}$/);
    expect(new Set(ids).size).toBe(3);
  });

  it('the client’s own is passed as it is; one that is not a plain token is replaced', async () => {
    expect(await idSent({ 'x-request-id': 'client-id-1' })).toBe('client-id-1');
    expect(await idSent({ 'x-request-id': 'f81d4fae-7dec-11d0-a765-00a0c91e6bf6' })).toBe('f81d4fae-7dec-11d0-a765-00a0c91e6bf6');
    expect(await idSent({ 'x-request-id': 'not a token' })).toMatch(/^[0-9a-f]{32}$/);
  });

  it('the access log names the id the backend got', async () => {
    const id = await idSent({}, '/logged');
    await expect.poll(() => gw.output.split('\n').some((l) => l.includes('"path":"/logged"') && l.includes(`"id":"${id}"`))).toBe(true);
  });
});
