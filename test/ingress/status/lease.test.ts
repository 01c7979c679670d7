// Leader election over a coordination.k8s.io Lease, through the real client library against the test API server:
// one of two candidates leads, a released Lease is taken over at once, a crashed leader's only after it expires,
// and a leader cut off from the API steps down within the renew deadline.
import { CoordinationV1Api } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { loadKubeConfig } from '../../../cluster/kubernetes/config.ts';
import { kubernetesLeaseStore } from '../../../ingress/status/kube.ts';
import { LeaderElector } from '../../../ingress/status/lease.ts';
import { TestApiServer } from '../../apiserver/server.ts';
import { captureLogger, waitFor } from '../../helpers/wait.ts';

const ttlMs = 1000;

describe('LeaderElector', () => {
  let api: TestApiServer;
  const electors: LeaderElector[] = [];
  afterEach(async () => {
    for (const e of electors.splice(0)) await e.stop({ release: false });
    await api?.close();
  });

  async function candidates(...names: string[]) {
    const kc = loadKubeConfig(await api.kubeconfigPath());
    const events: string[] = [];
    const out = names.map((identity) => {
      const e = new LeaderElector({
        lease: kubernetesLeaseStore(kc, 'ops', 'gw-leader'),
        identity,
        leaseDurationMs: ttlMs,
        renewDeadlineMs: ttlMs / 2,
        retryPeriodMs: ttlMs / 15,
        log: captureLogger().log,
        onStartedLeading: () => events.push(`${identity} leads`),
        onStoppedLeading: () => events.push(`${identity} stops`),
      });
      electors.push(e);
      return e;
    });
    const lease = async () => (await kc.makeApiClient(CoordinationV1Api).readNamespacedLease({ name: 'gw-leader', namespace: 'ops' })).spec!;
    return { out, events, lease };
  }

  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  it('lets exactly one of two candidates lead, steadily, and names it in the Lease', async () => {
    api = await TestApiServer.start();
    const { out, events, lease } = await candidates('a', 'b');
    for (const e of out) e.start();
    await waitFor('a leader', () => out.some((e) => e.leading));
    await sleep(ttlMs * 2);
    const leaders = out.filter((e) => e.leading);
    expect(leaders).toHaveLength(1);
    const leader = leaders[0] === out[0] ? 'a' : 'b';
    expect(events).toEqual([`${leader} leads`]);
    const spec = await lease();
    expect(spec).toMatchObject({ holderIdentity: leader, leaseDurationSeconds: 1, leaseTransitions: 0 });
    // Renewed all along: the API server refuses times without six fraction digits.
    expect(Date.now() - Date.parse(String(spec.renewTime))).toBeLessThan(ttlMs);
  });

  it('hands a released Lease to the other candidate at its next attempt', async () => {
    api = await TestApiServer.start();
    const { out: [a, b], events, lease } = await candidates('a', 'b');
    a!.start();
    await waitFor('a to lead', () => a!.leading);
    b!.start();
    await sleep(ttlMs / 5);
    expect(b!.leading).toBe(false);
    const released = Date.now();
    await a!.stop({ release: true });
    await waitFor('b to lead', () => b!.leading, 2000, 5);
    expect(Date.now() - released).toBeLessThan(ttlMs / 2);
    expect(await a!.otherHolder(100)).toBe('b');
    expect(events).toEqual(['a leads', 'a stops', 'b leads']);
    expect(await lease()).toMatchObject({ holderIdentity: 'b', leaseTransitions: 1 });
  });

  it('takes over from a leader that vanished only once the lease duration has passed', async () => {
    api = await TestApiServer.start();
    const { out: [a, b] } = await candidates('a', 'b');
    a!.start();
    await waitFor('a to lead', () => a!.leading);
    b!.start();
    await sleep(ttlMs / 5);
    // A crash: a neither renews nor releases.
    const crashed = Date.now();
    await a!.stop({ release: false });
    await waitFor('b to lead', () => b!.leading, 4000, 5);
    // b counts the duration from when it first saw a's last renewal, by its own clock.
    expect(Date.now() - crashed).toBeGreaterThanOrEqual(ttlMs * 0.75);
    expect(Date.now() - crashed).toBeLessThan(ttlMs * 2.5);
  });

  it('steps down when it cannot renew within the renew deadline, and leads again once the API is back', async () => {
    api = await TestApiServer.start();
    const { out: [a], events } = await candidates('a');
    a!.start();
    await waitFor('a to lead', () => a!.leading);
    await api.goDown();
    const cut = Date.now();
    await waitFor('a to step down', () => !a!.leading, 3000, 5);
    expect(Date.now() - cut).toBeGreaterThanOrEqual(ttlMs / 2 - ttlMs / 15);
    expect(Date.now() - cut).toBeLessThan(ttlMs);
    await api.comeUp();
    await waitFor('a to lead again', () => a!.leading, 3000);
    expect(events).toEqual(['a leads', 'a stops', 'a leads']);
  });
});
