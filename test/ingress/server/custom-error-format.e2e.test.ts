// The X-Format header a custom-http-errors default-backend gets. ingress-nginx's error location sets it with
// `proxy_set_header X-Format $http_accept;` (its nginx.tmpl, CUSTOM_ERRORS): the client's Accept as sent, and, since
// nginx does not send a header whose proxy_set_header value is empty, no X-Format at all when the client sent no
// Accept (or an empty one) — never a made-up `text/html`. A client's own X-Format never reaches the error backend,
// as a proxy_set_header name replaces the client's header of that name.
import { beforeAll, describe, expect, it } from 'vitest';
import { ingressClassYaml, ingressYaml, serviceYaml, type Echo } from '../e2e/harness.ts';
import { customErrorsFixture } from './custom-errors-fixture.ts';

const ngx = 'nginx.ingress.kubernetes.io/';

describe('custom-http-errors: X-Format is the client’s Accept, as ingress-nginx sends it', () => {
  const { web, errors, gw, listen } = customErrorsFixture(64610, () => 503);

  beforeAll(async () => {
    web.handler = (_req, res) => {
      res.writeHead(503, { 'content-type': 'text/plain' }).end('upstream says 503\n');
      return true;
    };
    await listen();
    const annotations = { [`${ngx}custom-http-errors`]: '503', [`${ngx}default-backend`]: 'errors' };
    gw.write(
      'all.yaml',
      [ingressClassYaml, serviceYaml('web', [web]), serviceYaml('errors', [errors]), ingressYaml({ name: 'paged', host: 'paged.test', paths: [['Prefix', '/', 'web']], annotations })].join('\n---\n'),
    );
    await gw.start([], { host: 'paged.test' });
  }, 30_000);

  it.each([
    // [the client's headers, the X-Format the error backend gets]
    [{}, undefined],
    [{ accept: '' }, undefined],
    [{ 'x-format': 'text/evil' }, undefined],
    [{ accept: 'application/json' }, 'application/json'],
    [{ accept: 'text/html, application/xhtml+xml;q=0.9', 'x-format': 'text/evil' }, 'text/html, application/xhtml+xml;q=0.9'],
  ] as [Record<string, string>, string | undefined][])('client headers %j: X-Format %j', async (headers, format) => {
    const r = await gw.get('paged.test', '/x', { headers });
    const echo = JSON.parse(r.text) as Echo;
    expect([r.status, echo.backend, echo.headers['x-code'], echo.headers['x-format']]).toEqual([503, 'errors', '503', format]);
  });
});
