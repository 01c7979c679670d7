// Run by live-list.test.ts as `node --expose-gc live-list-churn.ts set|list`: 40,000 objects pass through a Set or a
// LiveList, 64 of them in it at a time, with a young-generation collection after every 1,000; prints how many bytes
// the old generation grew by, which is what the collections promoted.
import { getHeapSpaceStatistics } from 'node:v8';
import { setImmediate as tick } from 'node:timers/promises';
import { LiveList } from '../../runtime/live-list.ts';

const kind = process.argv[2];
const gc = (globalThis as { gc?: (options?: object) => void }).gc;
if (gc === undefined || (kind !== 'set' && kind !== 'list')) {
  process.stderr.write('usage: node --expose-gc live-list-churn.ts set|list\n');
  process.exit(2);
}
const oldUsed = () => getHeapSpaceStatistics().find((s) => s.space_name === 'old_space')!.space_used_size;
const set = new Set<object>();
const list = new LiveList<object>();
const add = (o: object): (() => void) => {
  if (kind === 'set') {
    set.add(o);
    return () => set.delete(o);
  }
  const entry = list.add(o);
  return () => list.delete(entry);
};

const inFlight: Array<() => void> = [];
gc();
await tick();
const before = oldUsed();
for (let round = 0; round < 40; round++) {
  for (let i = 0; i < 1000; i++) {
    inFlight.push(add({ payload: new Array(100).fill(round) }));
    if (inFlight.length > 64) inFlight.shift()!();
  }
  await tick();
  gc({ type: 'minor', execution: 'sync' });
}
process.stdout.write(`${oldUsed() - before}\n`);
