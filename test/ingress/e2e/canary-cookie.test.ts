// canary-by-cookie through `netplane ingress`, as ingress-nginx orders the canary rules: canary-by-header, then
// canary-by-cookie, then canary-weight. A cookie "always" sends the request to the canary, "never" keeps it off; any
// other value, like a header value other than "always"/"never", leaves the choice to the next rule. Weights 0 and
// 100 make the last rule certain, so each row has one answer.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EchoBackend, GatewayProcess, echoOf, ingressClassYaml, ingressYaml, serviceYaml } from './harness.ts';

const ngx = 'nginx.ingress.kubernetes.io/';

describe('netplane ingress picks the canary by header, then cookie, then weight', () => {
  const main = new EchoBackend('main');
  const next = new EchoBackend('next');
  const gw = new GatewayProcess();

  const site = (host: string, weight: string) => [
    ingressYaml({ name: host.split('.')[0]!, host, paths: [['Prefix', '/', 'main']] }),
    ingressYaml({
      name: `${host.split('.')[0]!}-canary`,
      host,
      paths: [['Prefix', '/', 'next']],
      annotations: { [`${ngx}canary`]: 'true', [`${ngx}canary-by-header`]: 'X-Canary', [`${ngx}canary-by-cookie`]: 'canary_user', [`${ngx}canary-weight`]: weight },
    }),
  ];

  beforeAll(async () => {
    await main.start();
    await next.start();
    gw.write('all.yaml', [ingressClassYaml, serviceYaml('main', [main]), serviceYaml('next', [next]), ...site('w0.test', '0'), ...site('w100.test', '100')].join('---\n'));
    await gw.start([], { host: 'w0.test' });
  }, 30_000);
  afterAll(async () => {
    await gw.stop();
    await main.stop();
    await next.stop();
  });

  // [host (its canary weight), X-Canary header, Cookie header, the backend that answers]
  const cases: [string, string | null, string | null, string][] = [
    ['w0.test', null, null, 'main'],
    ['w100.test', null, null, 'next'],
    ['w0.test', null, 'canary_user=always', 'next'],
    ['w100.test', null, 'canary_user=never', 'main'],
    ['w0.test', null, 'canary_user=other', 'main'],
    ['w100.test', null, 'canary_user=other', 'next'],
    ['w0.test', null, 'session=1; Canary_User=always', 'next'],
    ['w0.test', null, 'canary_user_x=always', 'main'],
    ['w0.test', 'always', 'canary_user=never', 'next'],
    ['w100.test', 'never', 'canary_user=always', 'main'],
    ['w0.test', 'other', 'canary_user=always', 'next'],
    ['w100.test', 'other', 'canary_user=never', 'main'],
    ['w100.test', 'other', 'canary_user=other', 'next'],
    ['w0.test', 'other', 'canary_user=other', 'main'],
  ];

  it.each(cases)('%s, X-Canary %s, Cookie %s: %s', async (host, header, cookie, want) => {
    const headers: Record<string, string> = {};
    if (header !== null) headers['x-canary'] = header;
    if (cookie !== null) headers.cookie = cookie;
    // Several times: a rule that decided by chance would show.
    for (let i = 0; i < 5; i++) expect(echoOf(await gw.get(host, '/x', { headers })).backend).toBe(want);
  });
});
