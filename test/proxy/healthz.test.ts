// kube-proxy's /healthz and /livez (port 10256): 200 while the rules are current and the node may take load-balanced
// traffic, 503 otherwise, with kube-proxy's JSON body; a node being deleted or marked by the cluster autoscaler is
// not eligible (only /healthz says so).
import { describe, expect, it } from 'vitest';
import { parseKind } from '../../cluster/model/index.ts';
import { healthzAnswer, ProxyHealthz, type HealthzSource } from '../../proxy/healthz.ts';
import { parseHostPort } from '../../runtime/flags.ts';

const node = (extra: { deletionTimestamp?: string; taints?: Array<{ key: string; effect: string }> } = {}) =>
  parseKind('Node', {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: 'node1', ...(extra.deletionTimestamp ? { deletionTimestamp: extra.deletionTimestamp } : {}) },
    spec: { taints: extra.taints ?? [] },
  });
const now = Date.parse('2026-11-26T07:00:00Z');
const synced = now - 5000;
const source = (o: Partial<{ ok: boolean; last: number | undefined; node: ReturnType<typeof node> | undefined }>): HealthzSource => ({
  health: () => (o.ok === false ? { ok: false, reason: 'stale' } : { ok: true }),
  lastSyncedAt: () => ('last' in o ? o.last : synced),
  node: () => ('node' in o ? o.node : node()),
});

describe('kube-proxy health answers', () => {
  it.each<[string, Parameters<typeof source>[0], number, number, boolean]>([
    ['rules current, node eligible', {}, 200, 200, true],
    ['no sync yet', { last: undefined }, 503, 503, true],
    ['a change waiting too long', { ok: false }, 503, 503, true],
    ['the Node being deleted', { node: node({ deletionTimestamp: '2026-11-26T06:59:00Z' }) }, 503, 200, false],
    ['the cluster autoscaler about to remove the node', { node: node({ taints: [{ key: 'ToBeDeletedByClusterAutoscaler', effect: 'NoSchedule' }] }) }, 503, 200, false],
    ['another taint', { node: node({ taints: [{ key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' }] }) }, 200, 200, true],
    ['the Node not in the view', { node: undefined }, 200, 200, true],
  ])('%s: /healthz %i, /livez %i', (_what, o, healthz, livez, eligible) => {
    const h = healthzAnswer('/healthz', source(o), now);
    expect(h.status).toBe(healthz);
    expect(JSON.parse(h.body)).toEqual({ lastUpdated: new Date('last' in o ? (o.last ?? 0) : synced).toISOString(), currentTime: '2026-11-26T07:00:00.000Z', nodeEligible: eligible });
    const l = healthzAnswer('/livez', source(o), now);
    expect(l.status).toBe(livez);
    expect(JSON.parse(l.body)).not.toHaveProperty('nodeEligible');
  });

  it('answers over HTTP, 404 for other paths', async () => {
    const server = new ProxyHealthz(source({}));
    const port = await server.listen(parseHostPort('127.0.0.1:0'));
    try {
      const ok = await fetch(`http://127.0.0.1:${port}/healthz`);
      expect([ok.status, ok.headers.get('content-type')]).toEqual([200, 'application/json']);
      expect((await ok.json()) as object).toMatchObject({ nodeEligible: true });
      expect((await fetch(`http://127.0.0.1:${port}/metrics`)).status).toBe(404);
    } finally {
      await server.close();
    }
  });

  it('on 0.0.0.0 answers on IPv6 too, as kube-proxy\'s Go listener', async () => {
    const server = new ProxyHealthz(source({}));
    const port = await server.listen(parseHostPort('0.0.0.0:0'));
    try {
      for (const host of ['127.0.0.1', '[::1]']) expect((await fetch(`http://${host}:${port}/healthz`)).status).toBe(200);
    } finally {
      await server.close();
    }
  });
});
