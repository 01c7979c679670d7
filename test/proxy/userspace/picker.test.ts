import { describe, expect, it } from 'vitest';
import type { Target } from '../../../proxy/plan/types.ts';
import { EndpointPicker, ListenerPicker, targetKey } from '../../../proxy/userspace/picker.ts';

const ep = (n: number): Target => ({ ip: `10.0.0.${n}`, port: 8080 });
const three = [ep(1), ep(2), ep(3)];

/** A clock the test moves by hand. */
function clock(start = 1_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

function counts(picker: EndpointPicker, picks: Array<[client: string]>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [client] of picks) {
    const t = picker.pick(client);
    const k = t ? targetKey(t) : 'none';
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

describe('targetKey', () => {
  it.each([
    [{ ip: '10.0.0.1', port: 80 }, '10.0.0.1:80'],
    [{ ip: 'fd00::1', port: 80 }, '[fd00::1]:80'],
  ])('%j -> %s', (t, key) => expect(targetKey(t)).toBe(key));
});

describe('EndpointPicker without affinity', () => {
  it('spreads picks exactly evenly, whoever the clients are', () => {
    const picker = new EndpointPicker(three, 0);
    const c = counts(picker, Array.from({ length: 60 }, (_, i): [string] => [`192.168.0.${i % 4}`]));
    expect(c).toEqual({ '10.0.0.1:8080': 20, '10.0.0.2:8080': 20, '10.0.0.3:8080': 20 });
  });

  it('picks nothing without endpoints', () => {
    expect(new EndpointPicker([], 0).pick('1.2.3.4')).toBeUndefined();
  });

  it('avoids the endpoint that just failed, and gives up when it is the only one', () => {
    const picker = new EndpointPicker(three, 0);
    for (let i = 0; i < 10; i++) expect(picker.pick('c', ep(2))).not.toEqual(ep(2));
    expect(new EndpointPicker([ep(1)], 0).pick('c', ep(1))).toBeUndefined();
  });

  it('takes new endpoints in place and stays even over them', () => {
    const picker = new EndpointPicker(three, 0);
    picker.update([ep(4), ep(5)], 0);
    expect(picker.size).toBe(2);
    expect(counts(picker, Array.from({ length: 10 }, (): [string] => ['c']))).toEqual({ '10.0.0.4:8080': 5, '10.0.0.5:8080': 5 });
  });
});

describe('EndpointPicker with ClientIP affinity', () => {
  it('keeps a client on its endpoint while it returns within the timeout, then lets it move', () => {
    const t = clock();
    const picker = new EndpointPicker(three, 10, t.now);
    const first = picker.pick('192.168.0.9');
    for (let i = 0; i < 5; i++) {
      t.advance(9_000); // each connection renews the timeout
      expect(picker.pick('192.168.0.9')).toEqual(first);
    }
    t.advance(10_001);
    expect(picker.pick('192.168.0.9')).not.toEqual(first);
  });

  it('spreads different clients evenly', () => {
    const picker = new EndpointPicker(three, 60);
    const c = counts(picker, Array.from({ length: 60 }, (_, i): [string] => [`192.168.1.${i}`]));
    expect(Object.values(c)).toEqual([20, 20, 20]);
  });

  it('moves the client when its endpoint fails or goes away', () => {
    const picker = new EndpointPicker(three, 60);
    const first = picker.pick('c')!;
    const second = picker.pick('c', first)!;
    expect(second).not.toEqual(first);
    expect(picker.pick('c')).toEqual(second);
    picker.update(three.filter((e) => targetKey(e) !== targetKey(second)), 60);
    const third = picker.pick('c')!;
    expect(third).not.toEqual(second);
    expect(picker.pick('c')).toEqual(third);
  });

  it('prunes expired entries, and drops them all when affinity is turned off', () => {
    const t = clock();
    const picker = new EndpointPicker(three, 1, t.now);
    for (let i = 0; i < 50; i++) picker.pick(`10.1.0.${i}`);
    expect(picker.stickyClients).toBe(50);
    t.advance(1_001);
    picker.pick('10.1.1.1');
    expect(picker.stickyClients).toBe(1);
    picker.update(three, 0);
    expect(picker.stickyClients).toBe(0);
  });
});

describe('ListenerPicker', () => {
  const local = [ep(1)];
  const all = [ep(1), ep(2)];
  const sources = ['127.0.0.0/8', '::1/128', '192.168.50.1', 'fd00:50::1', '10.244.0.0/16'];
  it.each([
    ['loopback', '127.0.0.1', true],
    ['this node\'s address', '192.168.50.1', true],
    ['this node\'s IPv6 address', 'fd00:50::1', true],
    ['a pod', '10.244.2.7', true],
    ['a pod seen through a dual-stack socket', '::ffff:10.244.2.7', true],
    ['a client outside', '192.168.50.2', false],
    ['an IPv6 client outside', 'fd00:50::2', false],
  ])('%s (%s) takes the short-cut: %s', (_name, ip, shortcut) => {
    const picker = new ListenerPicker({ endpoints: local, affinitySeconds: 0, shortcut: { endpoints: all, sources } });
    expect(picker.shortcuts(ip)).toBe(shortcut);
    const picks = new Set(Array.from({ length: 4 }, () => targetKey(picker.pick(ip)!)));
    expect([...picks].sort()).toEqual((shortcut ? all : local).map(targetKey));
  });

  it('without a short-cut every client picks among the endpoints, and the client IP is not needed', () => {
    const picker = new ListenerPicker({ endpoints: local, affinitySeconds: 0 });
    expect([picker.needsClientIP, picker.shortcuts('127.0.0.1'), targetKey(picker.pick('127.0.0.1')!)]).toEqual([false, false, '10.0.0.1:8080']);
    picker.update({ endpoints: [], affinitySeconds: 0, shortcut: { endpoints: all, sources } });
    expect([picker.needsClientIP, picker.pick('192.168.50.2'), picker.endpoints.length]).toEqual([true, undefined, 2]);
  });
});
