import { describe, expect, it } from 'vitest';
import { LoopDetector, loopCheckLabel } from '../../../dns/forward/loop.ts';

describe('loop detector', () => {
  it('recognises only the probe names it handed out, each once', () => {
    const loops = new LoopDetector();
    const heard: string[] = [];
    const one = loops.probeName(() => heard.push('one'));
    const two = loops.probeName(() => heard.push('two'));
    expect(one).toMatch(new RegExp(`^[0-9a-f]{16}\\.${loopCheckLabel}$`));
    expect(two).not.toBe(one);
    const rows: Array<[string, boolean]> = [
      ['www.example.com', false],
      [`someone-else.${loopCheckLabel}`, false],
      [loopCheckLabel, false],
      [two, true],
      [two, false],
    ];
    for (const [name, want] of rows) expect([name, loops.heard(name)]).toEqual([name, want]);
    expect(heard).toEqual(['two']);
  });
});
