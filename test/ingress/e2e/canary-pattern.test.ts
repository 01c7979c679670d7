// canary-by-header-pattern through `netplane ingress`, as ingress-nginx's balancer reads it (route_to_alternative_
// balancer): when canary-by-header-value is not set, a request whose canary-by-header header matches the pattern
// (ngx.re.match: unanchored, case-sensitive unless (?i)) goes to the canary; any other value, "always" and "never"
// included, leaves the choice to the cookie, then the weight. The pattern is matched by a linear-time engine: a
// pattern that makes a backtracking engine run for ages answers at once. A pattern RE2 cannot run takes only its
// Ingress out of service, logged and counted.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EchoBackend, GatewayProcess, echoOf, ingressClassYaml, ingressYaml, serviceYaml } from './harness.ts';

const ngx = 'nginx.ingress.kubernetes.io/';

describe('netplane ingress picks the canary by a header pattern', () => {
  const main = new EchoBackend('main');
  const next = new EchoBackend('next');
  const gw = new GatewayProcess();

  const site = (name: string, canary: Record<string, string>) => [
    ingressYaml({ name, host: `${name}.test`, paths: [['Prefix', '/', 'main']] }),
    ingressYaml({ name: `${name}-canary`, host: `${name}.test`, paths: [['Prefix', '/', 'next']], annotations: { [`${ngx}canary`]: 'true', [`${ngx}canary-by-header`]: 'X-Region', ...canary } }),
  ];

  beforeAll(async () => {
    await main.start();
    await next.start();
    gw.write(
      'all.yaml',
      [
        ingressClassYaml,
        serviceYaml('main', [main]),
        serviceYaml('next', [next]),
        ...site('eu', { [`${ngx}canary-by-header-pattern`]: '^eu-(west|north)-[0-9]+$', [`${ngx}canary-by-cookie`]: 'canary_user' }),
        ...site('ci', { [`${ngx}canary-by-header-pattern`]: '(?i)^EU-' }),
        // An exact value set: ingress-nginx ignores the pattern.
        ...site('exact', { [`${ngx}canary-by-header-value`]: 'beta', [`${ngx}canary-by-header-pattern`]: '.*' }),
        ...site('redos', { [`${ngx}canary-by-header-pattern`]: '(a+)+$' }),
        ...site('backref', { [`${ngx}canary-by-header-pattern`]: '^(eu)-\\1$' }),
      ].join('---\n'),
    );
    await gw.start([], { host: 'eu.test' });
  }, 30_000);
  afterAll(async () => {
    await gw.stop();
    await main.stop();
    await next.stop();
  });

  // [host, X-Region header, Cookie header, the backend that answers]
  const cases: [string, string | null, string | null, string][] = [
    ['eu.test', 'eu-west-1', null, 'next'],
    ['eu.test', 'eu-north-12', 'canary_user=never', 'next'],
    ['eu.test', 'eu-south-1', null, 'main'],
    ['eu.test', 'EU-WEST-1', null, 'main'],
    ['eu.test', 'x-eu-west-1', null, 'main'],
    ['eu.test', 'always', null, 'main'],
    ['eu.test', 'never', 'canary_user=always', 'next'],
    ['eu.test', 'us-east-1', 'canary_user=always', 'next'],
    ['eu.test', null, 'canary_user=always', 'next'],
    ['eu.test', null, null, 'main'],
    ['ci.test', 'EU-west', null, 'next'],
    ['ci.test', 'eu-west', null, 'next'],
    ['ci.test', 'us-eu-', null, 'main'],
    ['exact.test', 'beta', null, 'next'],
    ['exact.test', 'anything', null, 'main'],
  ];

  it.each(cases)('%s, X-Region %s, Cookie %s: %s', async (host, header, cookie, want) => {
    const headers: Record<string, string> = {};
    if (header !== null) headers['x-region'] = header;
    if (cookie !== null) headers.cookie = cookie;
    for (let i = 0; i < 3; i++) expect(echoOf(await gw.get(host, '/x', { headers })).backend).toBe(want);
  });

  it('answers (a+)+$ against a long header at once, where a backtracking engine would run for ages', async () => {
    // 2^n paths for a backtracking engine: 40 a's and a "!" already take JavaScript's RegExp hours.
    for (const value of [`${'a'.repeat(40)}!`, `${'a'.repeat(8000)}!`]) {
      expect(echoOf(await gw.get('redos.test', '/x', { headers: { 'x-region': value } })).backend).toBe('main');
    }
    expect(echoOf(await gw.get('redos.test', '/x', { headers: { 'x-region': 'a'.repeat(8000) } })).backend).toBe('next');
  });

  it('takes a canary whose pattern RE2 cannot run out of service, logged and counted; its primary keeps serving', async () => {
    expect(gw.output).toMatch(/annotation nginx.ingress.kubernetes.io\/canary-by-header-pattern is \\"\^\(eu\)-\\\\\\\\1\$\\"; it uses a back-reference, which RE2/);
    expect(await gw.metrics()).toMatch(/netplane_ingress_problems\{namespace="default",ingress="backref-canary",served="no"\} 1/);
    expect(echoOf(await gw.get('backref.test', '/x', { headers: { 'x-region': 'eu-eu' } })).backend).toBe('main');
  });
});
