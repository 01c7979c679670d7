import { describe, expect, it } from 'vitest';
import { findOption, relayed } from '../../../dns/forward/options.ts';

/** Options on the wire: code, length, data each. */
const wire = (...opts: Array<[number, number[]]>) => Buffer.concat(opts.map(([code, data]) => Buffer.from([code >> 8, code & 0xff, data.length >> 8, data.length & 0xff, ...data])));
const ecs = [0, 1, 24, 0, 10, 1, 1];
const cookie = [1, 2, 3, 4, 5, 6, 7, 8];

describe('relayed: which client options go upstream', () => {
  const cases: Array<[string, Buffer, Buffer | undefined]> = [
    ['ECS alone, as it is', wire([8, ecs]), wire([8, ecs])],
    ['an option we do not know (end to end), as it is', wire([65001, [1, 2]]), wire([65001, [1, 2]])],
    ['EDNS key tag and CHAIN', wire([14, [0, 20]], [13, [0]]), wire([14, [0, 20]], [13, [0]])],
    ['a cookie alone: nothing', wire([10, cookie]), undefined],
    ['NSID request, EXPIRE, keepalive and padding: nothing', wire([3, []], [9, []], [11, []], [12, [0, 0, 0]]), undefined],
    ['a cookie before ECS: ECS', wire([10, cookie], [8, ecs]), wire([8, ecs])],
    ['ECS between padding and NSID: ECS', wire([12, [0, 0]], [8, ecs], [3, []]), wire([8, ecs])],
    ['none', Buffer.alloc(0), undefined],
  ];
  for (const [name, given, want] of cases) it(name, () => expect(relayed(given)).toEqual(want));
  it('hands back the same buffer when nothing is dropped', () => {
    const b = wire([8, ecs]);
    expect(relayed(b)).toBe(b);
  });
});

describe('findOption', () => {
  it('finds an option whole, or nothing', () => {
    expect(findOption(wire([10, cookie], [8, ecs]), 8)).toEqual(wire([8, ecs]));
    expect(findOption(wire([10, cookie]), 8)).toBeUndefined();
    expect(findOption(undefined, 8)).toBeUndefined();
  });
});
