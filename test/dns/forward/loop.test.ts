import { describe, expect, it } from 'vitest';
import { LoopDetector, loopCheckLabel } from '../../../dns/forward/loop.ts';
import { Forwarder } from '../../../dns/forward/forwarder.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { startUpstream } from './fake-upstream.ts';

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

describe('loop check through a forwarder', () => {
  it('asks an upstream that did not answer again, so a loop that shows later is found (found by an audit: one probe at start)', async () => {
    const loops = new LoopDetector();
    let asked = 0;
    // Silent at first (still starting); the second probe comes back to this server, as through a loop.
    const up = await startUpstream((q) => {
      asked++;
      if (asked === 1) return 'silent';
      loops.heard(q.name.toLowerCase());
      return { rcode: 'NXDOMAIN' };
    });
    const f = new Forwarder({ upstreams: [up.hostPort], log: silentLogger(), loops, timeoutMs: 200 });
    try {
      await f.checkLoops(100, 3000);
      expect(asked).toBe(2);
      expect(f.looping.upstreams).toEqual([up.hostPort.text]);
    } finally {
      await f.close();
      await up.close();
    }
  });
});
