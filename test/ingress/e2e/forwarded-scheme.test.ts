// The scheme and original-request headers ingress-nginx sets on every proxied request, through `netplane ingress`
// with curl: X-Scheme and X-Forwarded-Scheme are the scheme (Rack reads X-Forwarded-Scheme first, so a plain-HTTP
// client must not be able to claim HTTPS with it), X-Original-URI the target as sent, X-Original-Forwarded-For the
// client's own X-Forwarded-For (none when it sent none). A client's headers of these names never reach the backend;
// a trusted proxy's X-Forwarded-Proto sets the scheme, as it does X-Forwarded-Proto's.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EchoBackend, GatewayProcess, ingressClassYaml, ingressYaml, serviceYaml, type Echo } from './harness.ts';

const run = promisify(execFile);
const forged = ['X-Forwarded-Scheme: https', 'X-Scheme: https', 'X-Original-URI: /admin', 'X-Original-Forwarded-For: 6.6.6.6'];

/** What the echo backend saw of a curl request through the gateway (`https`: over TLS to its HTTPS port). */
async function curlEcho(gw: GatewayProcess, path: string, headers: string[], https = false): Promise<Echo> {
  const port = https ? gw.https : gw.http;
  const url = `${https ? 'https' : 'http'}://fwd.test:${port}${path}`;
  const args = ['-sS', '-k', '--path-as-is', '--resolve', `fwd.test:${port}:127.0.0.1`, ...headers.flatMap((h) => ['-H', h]), url];
  const { stdout } = await run('curl', args);
  return JSON.parse(stdout) as Echo;
}

const seen = (e: Echo) => [e.headers['x-forwarded-scheme'], e.headers['x-scheme'], e.headers['x-original-uri'], e.headers['x-original-forwarded-for']];

describe('netplane ingress X-Scheme, X-Forwarded-Scheme, X-Original-URI, X-Original-Forwarded-For', () => {
  const app = new EchoBackend('app');
  const direct = new GatewayProcess();
  const behindProxy = new GatewayProcess();

  beforeAll(async () => {
    await app.start();
    const yaml = [ingressClassYaml, serviceYaml('app', [app]), ingressYaml({ name: 'fwd', host: 'fwd.test', paths: [['Prefix', '/', 'app']] })].join('---\n');
    direct.write('all.yaml', yaml);
    behindProxy.write('all.yaml', yaml);
    await Promise.all([direct.start([], { host: 'fwd.test' }), behindProxy.start(['--trusted-proxies', '127.0.0.1/32'], { host: 'fwd.test' })]);
  }, 30_000);
  afterAll(async () => {
    await Promise.all([direct.stop(), behindProxy.stop()]);
    await app.stop();
  });

  it('sets them from the request over plain HTTP, whatever a client forges', async () => {
    expect(seen(await curlEcho(direct, '/a/../b?q=1', forged))).toEqual(['http', 'http', '/a/../b?q=1', undefined]);
  });

  it('passes the client X-Forwarded-For as X-Original-Forwarded-For, and says https over TLS', async () => {
    expect(seen(await curlEcho(direct, '/p', [...forged, 'X-Forwarded-For: 203.0.113.9'], true))).toEqual(['https', 'https', '/p', '203.0.113.9']);
  });

  it("takes the scheme from a trusted proxy's X-Forwarded-Proto, and only from it", async () => {
    const proxied = await curlEcho(behindProxy, '/p', [...forged, 'X-Forwarded-Proto: https', 'X-Forwarded-For: 203.0.113.9']);
    expect(seen(proxied)).toEqual(['https', 'https', '/p', '203.0.113.9']);
    expect(proxied.headers['x-forwarded-for']).toBe('203.0.113.9, 127.0.0.1');
    expect(seen(await curlEcho(direct, '/p', [...forged, 'X-Forwarded-Proto: https']))).toEqual(['http', 'http', '/p', undefined]);
  });
});
