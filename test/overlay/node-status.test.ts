// Kubernetes mode: once the overlay is up, the Node's NetworkUnavailable condition goes to False through the real
// client and the test API server (nodes/status, a strategic merge patch that keeps the kubelet's conditions), once
// per Node, again for a Node made anew or still tainted, and retried while the API refuses.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadKubeConfig } from '../../cluster/kubernetes/config.ts';
import { KubernetesSource } from '../../cluster/kubernetes/source.ts';
import { Store } from '../../cluster/store.ts';
import { kubernetesStatusPatcher, NetworkConditionReporter, networkUnavailableTaint, type PatchNodeStatus } from '../../overlay/node-status.ts';
import { TestApiServer } from '../apiserver/server.ts';
import { captureLogger, waitFor } from '../helpers/wait.ts';
import { rawNode } from './fixtures.ts';

const ready = { type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status' };
const unavailable = { type: 'NetworkUnavailable', status: 'True', reason: 'NoRouteCreated', message: 'Node created without a route' };

/** node1 as a cloud controller leaves it: NetworkUnavailable True, tainted, and the kubelet's Ready condition. */
function registered(taint = true): Record<string, unknown> {
  const n = rawNode('node1', { podCIDRs: ['10.244.1.0/24'], ip: '192.168.60.1' }) as { spec: Record<string, unknown>; status: Record<string, unknown> };
  if (taint) n.spec.taints = [{ key: networkUnavailableTaint, effect: 'NoSchedule' }];
  n.status.conditions = [unavailable, ready];
  return n as Record<string, unknown>;
}

describe('NetworkConditionReporter against the API server', () => {
  let api: TestApiServer;
  let source: KubernetesSource;
  let store: Store;
  let reporters: NetworkConditionReporter[];
  let records: Array<Record<string, unknown>>;
  let failures: number;
  let make: (repeatMs?: number) => Promise<NetworkConditionReporter>;

  beforeEach(async () => {
    api = await TestApiServer.start();
    const kc = loadKubeConfig(await api.kubeconfigPath());
    const captured = captureLogger();
    records = captured.records;
    store = new Store(['Node']);
    source = new KubernetesSource(kc, { log: captured.log, initialBackoffMs: 50, maxBackoffMs: 200 });
    const real = await kubernetesStatusPatcher(kc);
    failures = 0;
    const patch: PatchNodeStatus = async (name, status) => {
      if (failures-- > 0) throw new Error('connection refused');
      await real(name, status);
    };
    reporters = [];
    make = async (repeatMs) => {
      const r = new NetworkConditionReporter({ nodeName: 'node1', patch, store, log: captured.log, retryBaseMs: 10, retryMaxMs: 20, ...(repeatMs !== undefined ? { repeatMs } : {}) });
      reporters.push(r);
      return r;
    };
  });
  afterEach(async () => {
    for (const r of reporters) r.stop();
    await source.stop();
    await api.close();
  });

  const conditions = async () => ((await (await fetch(`${api.url}/api/v1/nodes/node1`)).json()) as { status: { conditions: Array<Record<string, string>> } }).status.conditions;
  const statusPatches = () => api.requests.filter((r) => r.method === 'PATCH' && r.path === '/api/v1/nodes/node1/status').length;

  it('sets NetworkUnavailable to False once, keeping the other conditions', async () => {
    api.apply(registered());
    await source.start(store);
    const r = await make();
    r.up();
    r.up();
    await r.settled();
    const got = await conditions();
    expect(got).toHaveLength(2);
    expect(got[0]).toMatchObject({ type: 'NetworkUnavailable', status: 'False', reason: 'NetplaneOverlayIsUp', message: 'netplane overlay is running on this node' });
    expect(got[0]!.lastTransitionTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(got[1]).toEqual(ready);
    r.up();
    await r.settled();
    expect(statusPatches()).toBe(1);
    expect(records).toContainEqual(expect.objectContaining({ msg: "set this node's NetworkUnavailable condition to False" }));
  });

  it('reports again for a Node made anew, and while the taint stays past repeatMs', async () => {
    api.apply(registered(false));
    await source.start(store);
    const r = await make(0);
    r.up();
    await r.settled();
    api.remove('v1', 'Node', 'node1');
    await waitFor('the Node gone from the view', () => store.get('Node', 'node1') === undefined);
    r.up(); // nothing to patch while it is gone
    api.apply(registered(false));
    await waitFor('the Node back', () => store.get('Node', 'node1') !== undefined);
    r.up();
    await r.settled();
    expect((await conditions())[0]).toMatchObject({ type: 'NetworkUnavailable', status: 'False' });
    expect(statusPatches()).toBe(2);
    r.up();
    await r.settled();
    expect(statusPatches()).toBe(2);
    // Tainted (the condition was set back, or the lifecycle controller has not caught up): again, past repeatMs.
    api.apply(registered(true));
    await waitFor('the taint in the view', () => store.get('Node', 'node1')?.spec.taints.includes(networkUnavailableTaint) === true);
    r.up();
    await r.settled();
    expect(statusPatches()).toBe(3);
  });

  it('retries while the API refuses, then sets it', async () => {
    api.apply(registered());
    await source.start(store);
    failures = 2;
    const r = await make();
    r.up();
    await waitFor('the condition', async () => (await conditions())[0]!.status === 'False', 3000);
    expect(records.filter((l) => l.msg === "cannot set this node's NetworkUnavailable condition to False (needs patch on nodes/status); retrying")).toHaveLength(2);
  });
});
