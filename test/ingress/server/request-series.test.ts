// GatewayMetrics.series: a finished request's series are cached by route, status, method and canary, so a request
// builds no label strings; what a scrape shows must be what counting by label values showed.
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { GatewayMetrics } from '../../../ingress/server/metrics.ts';

const routeA = { name: 'a' };
const routeB = { name: 'b' };
const labelsOf = (ingress: string, status: number, method = 'GET', canary = '') => () => [ingress, 'default', `${ingress}-svc`, String(status), method, canary];

/** The value of `metric` (a full sample name) for the sample whose labels include `ingress` and `status`, or undefined. */
async function sample(registry: Registry, metric: string, ingress: string, status: number): Promise<number | undefined> {
  const text = await registry.metrics();
  const line = text.split('\n').find((l) => l.startsWith(`${metric}{`) && l.includes(`ingress="${ingress}"`) && l.includes(`status="${status}"`));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('GatewayMetrics.series', () => {
  it('counts requests of one route, status and method in one series with its label values', async () => {
    const registry = new Registry();
    const m = new GatewayMetrics(registry);
    const first = m.series(routeA, 200, 'GET', false, labelsOf('a', 200));
    let asked = 0;
    const second = m.series(routeA, 200, 'GET', false, () => (asked++, labelsOf('a', 200)()));
    expect(second).toBe(first);
    expect(asked).toBe(0);
    for (const s of [first, second]) {
      s.count.value++;
      s.duration.observe(0.003);
    }
    expect(await sample(registry, 'nginx_ingress_controller_requests', 'a', 200)).toBe(2);
    expect(await sample(registry, 'nginx_ingress_controller_request_duration_seconds_count', 'a', 200)).toBe(2);
    const text = await registry.metrics();
    expect(text).toContain('nginx_ingress_controller_requests{ingress="a",namespace="default",service="a-svc",status="200",method="GET",canary=""} 2');
  });

  it('keeps status, method, canary and route apart', () => {
    const m = new GatewayMetrics(new Registry());
    const base = m.series(routeA, 200, 'GET', false, labelsOf('a', 200));
    const others = [
      m.series(routeA, 404, 'GET', false, labelsOf('a', 404)),
      m.series(routeA, 200, 'POST', false, labelsOf('a', 200, 'POST')),
      m.series(routeA, 200, 'GET', true, labelsOf('a', 200, 'GET', 'default-canary-80')),
      m.series(routeB, 200, 'GET', false, labelsOf('b', 200)),
      m.series(undefined, 200, 'GET', false, labelsOf('', 200)),
    ];
    expect(new Set([base, ...others]).size).toBe(6);
    expect(others.map((s) => s.values)).toEqual([labelsOf('a', 404)(), labelsOf('a', 200, 'POST')(), labelsOf('a', 200, 'GET', 'default-canary-80')(), labelsOf('b', 200)(), labelsOf('', 200)()]);
  });

  it('makes the upstream series only once a request of those labels had an upstream time', async () => {
    const registry = new Registry();
    const m = new GatewayMetrics(registry);
    const refused = m.series(routeA, 403, 'GET', false, labelsOf('a', 403));
    refused.count.value++;
    expect(await sample(registry, 'nginx_ingress_controller_response_duration_seconds_count', 'a', 403)).toBeUndefined();
    const proxied = m.series(routeA, 200, 'GET', false, labelsOf('a', 200));
    m.observeUpstream(proxied, 0.002);
    m.observeUpstream(proxied, 0.004);
    expect(await sample(registry, 'nginx_ingress_controller_response_duration_seconds_count', 'a', 200)).toBe(2);
  });

  it('after the registry reset the metrics, counts go to new series, not to the ones cached before', async () => {
    const registry = new Registry();
    const m = new GatewayMetrics(registry);
    const before = m.series(routeA, 200, 'GET', false, labelsOf('a', 200));
    before.count.value += 5;
    registry.resetMetrics();
    expect(await sample(registry, 'nginx_ingress_controller_requests', 'a', 200)).toBeUndefined();
    const after = m.series(routeA, 200, 'GET', false, labelsOf('a', 200));
    expect(after).not.toBe(before);
    after.count.value++;
    expect(await sample(registry, 'nginx_ingress_controller_requests', 'a', 200)).toBe(1);
  });
});
