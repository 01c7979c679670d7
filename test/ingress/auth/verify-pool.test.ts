// Basic-auth password checks in worker threads: the same verdicts as on the event loop, while the gateway's event
// loop keeps running (an anonymous client with a wrong password could otherwise stall every route), and a bounded
// queue that answers 503 beyond it.
import { afterEach, describe, expect, it } from 'vitest';
import { Authenticators } from '../../../ingress/auth/authenticators.ts';
import { verifyPassword } from '../../../ingress/auth/htpasswd.ts';
import { VerifyBusyError, VerifyPool } from '../../../ingress/auth/verify-pool.ts';
import type { BasicAuthPolicy } from '../../../ingress/routes/types.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { authRequest, basic, knownVectors, secret, secretStore } from './fixtures.ts';

// glibc crypt(3) via python3 crypt.crypt('secret', '$6$rounds=50000$saltsalt'): the costliest SHA-crypt accepted,
// about a third of a second of JavaScript per check.
const slowHash = '$6$rounds=50000$saltsalt$7gbR05y.uvOwUDejqr39kOFo1./Wba9ZbuMT/8YAvmpCrjGpTmLDweAcoz8p43lkh2KyaW53DuTKzn3OEt5wb.';

const pools: VerifyPool[] = [];
const opened: Authenticators[] = [];
afterEach(async () => {
  for (const a of opened.splice(0)) a.close();
  await Promise.all(pools.splice(0).map((p) => p.close()));
});

function pool(options: ConstructorParameters<typeof VerifyPool>[0] = {}): VerifyPool {
  const p = new VerifyPool(options);
  pools.push(p);
  return p;
}

/** The longest time the event loop went without running a 5 ms timer while `work` ran. */
async function longestStall(work: () => Promise<unknown>): Promise<number> {
  let last = performance.now();
  let longest = 0;
  const timer = setInterval(() => {
    const t = performance.now();
    longest = Math.max(longest, t - last);
    last = t;
  }, 5);
  try {
    await work();
  } finally {
    clearInterval(timer);
  }
  return Math.max(longest, performance.now() - last);
}

describe('VerifyPool', () => {
  it('gives the verdicts verifyPassword gives, for every scheme', async () => {
    const p = pool({ size: 2 });
    const checks = knownVectors.flatMap((v) => [v.password, `${v.password}x`, ''].map((password) => ({ password, entry: { hash: v.hash, scheme: v.scheme } })));
    const got = await Promise.all(checks.map((c) => p.verify(c.password, c.entry)));
    const want = await Promise.all(checks.map((c) => verifyPassword(c.password, c.entry)));
    expect(got).toEqual(want);
    expect(got.filter(Boolean)).toHaveLength(knownVectors.length);
  });

  it('refuses a check beyond maxQueued with VerifyBusyError, and serves the others', async () => {
    const p = pool({ size: 1, maxQueued: 2 });
    const entry = { hash: slowHash, scheme: 'sha512-crypt' as const };
    const running = [p.verify('secret', entry), p.verify('no', entry), p.verify('no', entry)];
    await expect(p.verify('no', entry)).rejects.toBeInstanceOf(VerifyBusyError);
    expect(await Promise.all(running)).toEqual([true, false, false]);
  }, 20_000);
});

describe('basic auth through Authenticators', () => {
  const ref = { namespace: 'team', name: 'htpasswd' };
  const policy: BasicAuthPolicy = { type: 'basic', secret: ref, realm: 'Team' };

  it('wrong passwords against a costly hash do not stall the event loop', async () => {
    const store = secretStore();
    store.secrets.set('team/htpasswd', secret(ref, { auth: `alice:${slowHash}\n` }));
    const a = new Authenticators({ secrets: store.lookup, log: silentLogger() });
    opened.push(a);
    const auth = a.get('team/app', policy);
    let statuses: number[] = [];
    const stall = await longestStall(async () => {
      const results = await Promise.all(['x', 'y', 'secret'].map((pw) => auth.check(authRequest(basic('alice', pw)))));
      statuses = results.map((r) => (r.allow ? 200 : r.status));
    });
    expect(statuses).toEqual([401, 401, 200]);
    // Each check costs about 300 ms of CPU; on the event loop the timer would wait that long at least.
    expect(stall).toBeLessThan(200);
  }, 20_000);

  it('too many waiting checks: 503, not a verdict', async () => {
    const store = secretStore();
    store.secrets.set('team/htpasswd', secret(ref, { auth: `alice:${slowHash}\n` }));
    const a = new Authenticators({ secrets: store.lookup, log: silentLogger(), verifyPool: { size: 1, maxQueued: 1 } });
    opened.push(a);
    const auth = a.get('team/app', policy);
    const results = await Promise.all(['a', 'b', 'c'].map((pw) => auth.check(authRequest(basic('alice', pw)))));
    expect(results.map((r) => (r.allow ? 200 : r.status))).toEqual([401, 401, 503]);
  }, 20_000);
});
