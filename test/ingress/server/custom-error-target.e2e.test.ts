// What the default-backend is asked for a custom-http-errors page, through `netplane ingress`. ingress-nginx's error
// location (`location @custom_<upstream>_<code>`) rewrites the URI to `/` (`rewrite (.*) / break`, which keeps the
// query), sets X-Original-URI to $request_uri (the target as received) and Host to $best_http_host (the client's,
// not upstream-vhost). An audit compared with nginx 1.22 running that location: for `/status/503?a=1&b=%2F` the
// error backend got `/?a=1&b=%2F` and X-Original-URI `/status/503?a=1&b=%2F`; netplane asked for `/status/503?...`,
// so an error backend that serves its page at `/` answered 404 for every other path.
import { beforeAll, describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import { request } from 'undici';
import { ingressClassYaml, ingressYaml, serviceYaml, type Echo } from '../e2e/harness.ts';
import { customErrorsFixture } from './custom-errors-fixture.ts';

const ngx = 'nginx.ingress.kubernetes.io/';

describe('custom-http-errors: the request the default-backend gets', () => {
  // The error backend answers with the status it was given (X-Code).
  const { web, errors, gw, listen } = customErrorsFixture(64340, (req) => Number(req.headers['x-code'] ?? 500));

  beforeAll(async () => {
    // /status/NNN answers NNN.
    web.handler = (req, res) => {
      const m = /\/status\/(\d{3})/.exec(req.url ?? '');
      if (!m) return false;
      res.writeHead(Number(m[1]), { 'content-type': 'text/plain' }).end(`upstream says ${m[1]}\n`);
      return true;
    };
    await listen();
    const listed = { [`${ngx}custom-http-errors`]: '404,503', [`${ngx}default-backend`]: 'errors' };
    gw.write(
      'all.yaml',
      [
        ingressClassYaml,
        serviceYaml('web', [web]),
        serviceYaml('errors', [errors]),
        ingressYaml({ name: 'paged', host: 'paged.test', paths: [['Prefix', '/', 'web']], annotations: listed }),
        ingressYaml({ name: 'vhost', host: 'vhost.test', paths: [['Prefix', '/', 'web']], annotations: { ...listed, [`${ngx}upstream-vhost`]: 'web.internal' } }),
      ].join('\n---\n'),
    );
    await gw.start([], { host: 'paged.test' });
  }, 30_000);

  /** A request through the gateway with the target written byte for byte as given (clients normalise it). */
  function get(host: string, target: string): Promise<{ status: number; echo: Echo }> {
    return new Promise((resolve, reject) => {
      const s = connect(gw.http, '127.0.0.1');
      let got = '';
      s.on('data', (d) => (got += d.toString('latin1')));
      s.on('end', () => {
        const head = got.slice(0, got.indexOf('\r\n\r\n'));
        resolve({ status: Number(head.split(' ')[1]), echo: JSON.parse(got.slice(head.length + 4)) as Echo });
      });
      s.on('error', reject);
      // HTTP/1.0: the answer comes unchunked, ended by the close.
      s.write(`GET ${target} HTTP/1.0\r\nHost: ${host}\r\n\r\n`);
    });
  }

  it.each([
    // [target, status, what the error backend is asked for, X-Original-URI]
    ['/status/503?a=1&b=%2F', 503, '/?a=1&b=%2F', '/status/503?a=1&b=%2F'],
    ['/status/404', 404, '/', '/status/404'],
    ['/shop/status/503?', 503, '/', '/shop/status/503?'],
    ['/x/../status/503?q=a%20b', 503, '/?q=a%20b', '/x/../status/503?q=a%20b'],
  ])('%s: %i from `%s` with X-Original-URI %s', async (target, status, url, original) => {
    const r = await get('paged.test', target);
    expect([r.status, r.echo.backend, r.echo.method, r.echo.url, r.echo.headers['x-original-uri'], r.echo.headers['x-code']]).toEqual([status, 'errors', 'GET', url, original, String(status)]);
  });

  it("asks with the client's Host, not the route's upstream-vhost", async () => {
    const r = await get('vhost.test', '/status/503');
    expect([r.status, r.echo.backend, r.echo.headers.host]).toEqual([503, 'errors', 'vhost.test']);
    // The backend itself still gets the upstream-vhost.
    const ok = await request(`http://127.0.0.1:${gw.http}/fine`, { headers: { host: 'vhost.test' } });
    expect((JSON.parse(await ok.body.text()) as Echo).headers.host).toBe('web.internal');
  });
});
