// runtime/live-list.ts: what a Set does (add, delete, iterate) for the things in flight, and the reason it exists:
// objects that pass through it die young, where a Set under the same churn gets them promoted by V8's young
// collections (the Set's control run shows the effect is real on this Node, so the list's figure means something).
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { LiveList } from '../../runtime/live-list.ts';

const churn = fileURLToPath(new URL('./live-list-churn.ts', import.meta.url));

async function promotedBytes(kind: 'set' | 'list'): Promise<number> {
  const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', churn, kind]);
  return Number(stdout.trim());
}

describe('LiveList', () => {
  it('holds what was added and not deleted, newest first, and counts it', () => {
    const list = new LiveList<string>();
    const a = list.add('a');
    const b = list.add('b');
    const c = list.add('c');
    expect([...list]).toEqual(['c', 'b', 'a']);
    list.delete(b);
    expect([...list]).toEqual(['c', 'a']);
    list.delete(c);
    list.delete(a);
    expect([...list]).toEqual([]);
    expect(list.size).toBe(0);
    list.add('d');
    expect([...list]).toEqual(['d']);
    expect(list.size).toBe(1);
  });

  it('takes an entry out once: deleting it again changes nothing', () => {
    const list = new LiveList<number>();
    const one = list.add(1);
    list.add(2);
    expect(list.delete(one)).toBe(true);
    expect(list.delete(one)).toBe(false);
    expect([...list]).toEqual([2]);
    expect(list.size).toBe(1);
  });

  it('lets the loop over it delete any entry; it visits what is still in it and not what it adds', () => {
    const list = new LiveList<number>();
    const entries = [1, 2, 3, 4, 5].map((n) => list.add(n));
    const seen: number[] = [];
    for (const n of list) {
      seen.push(n);
      list.delete(entries[n - 1]!);
      // On 4, the next one (3) and one further on (1) go too.
      if (n === 4) list.delete(entries[2]!), list.delete(entries[0]!);
      list.add(n * 10);
    }
    expect(seen).toEqual([5, 4, 2]);
    expect([...list]).toEqual([20, 40, 50]);
  });

  it('empties with clear, and entries() gives the entries delete takes', () => {
    const list = new LiveList<string>();
    list.add('a');
    list.add('b');
    for (const e of list.entries()) if (e.value === 'a') list.delete(e);
    expect([...list]).toEqual(['b']);
    list.clear();
    expect([...list]).toEqual([]);
    expect(list.size).toBe(0);
  });

  it('leaves a deleted entry pointing at nothing', () => {
    const list = new LiveList<number>();
    const [a, b, c] = [1, 2, 3].map((n) => list.add(n));
    list.delete(b!);
    expect([b!.prev, b!.next, b!.linked]).toEqual([null, null, false]);
    expect(a!.prev).toBe(c);
    expect(c!.next).toBe(a);
  });

  it('lets what passed through it die young, where a Set gets it promoted', { timeout: 30_000 }, async () => {
    const [viaSet, viaList] = await Promise.all([promotedBytes('set'), promotedBytes('list')]);
    // 40,000 objects of about 1 KB: through a Set most of them reach the old generation; through the list only the
    // 64 in it at each collection could, and they are gone by the next.
    expect(viaSet).toBeGreaterThan(5_000_000);
    expect(viaList).toBeLessThan(1_000_000);
  });
});
