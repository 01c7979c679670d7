// The conntrack settings kube-proxy makes on start: planned as a pure table, then applied to files (a temp copy of
// the /proc and /sys files, one of them refusing writes as nf_conntrack_max does outside the host's namespace).
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { applyConntrack, conntrackDefaults, planConntrack, type ConntrackWrite } from '../../proxy/conntrack-tuning.ts';
import { captureLogger } from '../helpers/wait.ts';

const kernelDefaults = { max: 65_536, hashsize: 16_384, tcpEstablished: 432_000, tcpCloseWait: 60, tcpBeLiberal: 0, udp: 30, udpStream: 120 };
const show = (ws: ConntrackWrite[]) => ws.map((w) => `${w.file} ${w.was} -> ${w.value}`);

describe('planConntrack', () => {
  it.each<[string, Parameters<typeof planConntrack>, string[]]>([
    ["kube-proxy's defaults on a 2-core machine with the kernel's values", [conntrackDefaults, 2, kernelDefaults], ['max 65536 -> 131072', 'hashsize 16384 -> 32768', 'tcpEstablished 432000 -> 86400', 'tcpCloseWait 60 -> 3600']],
    ['16 cores: per core wins over the floor', [conntrackDefaults, 16, kernelDefaults], ['max 65536 -> 524288', 'hashsize 16384 -> 131072', 'tcpEstablished 432000 -> 86400', 'tcpCloseWait 60 -> 3600']],
    ['a larger table already: never lowered, hash size left', [conntrackDefaults, 2, { ...kernelDefaults, max: 1_000_000 }], ['tcpEstablished 432000 -> 86400', 'tcpCloseWait 60 -> 3600']],
    ['already as wanted: nothing', [conntrackDefaults, 2, { max: 131_072, hashsize: 32_768, tcpEstablished: 86_400, tcpCloseWait: 3_600, tcpBeLiberal: 0 }], []],
    ['0 leaves each alone; be-liberal asked', [{ maxPerCore: 0, min: 0, tcpEstablishedSeconds: 0, tcpCloseWaitSeconds: 0, tcpBeLiberal: true }, 2, kernelDefaults], ['tcpBeLiberal 0 -> 1']],
    ['the conntrack module not loaded: nothing', [conntrackDefaults, 2, {}], []],
    ['the UDP time-outs when asked (kube-proxy udpTimeout, udpStreamTimeout)', [{ ...conntrackDefaults, maxPerCore: 0, udpSeconds: 10, udpStreamSeconds: 120 }, 2, kernelDefaults], ['tcpEstablished 432000 -> 86400', 'tcpCloseWait 60 -> 3600', 'udp 30 -> 10']],
  ])('%s', (_what, args, want) => {
    expect(show(planConntrack(...args))).toEqual(want);
  });
});

describe('applyConntrack', () => {
  let dir = '';
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes what differs, and when the table size is refused leaves the hash size alone and goes on', async () => {
    dir = await mkdtemp(join(tmpdir(), 'netplane-conntrack-'));
    const files = { max: join(dir, 'max'), hashsize: join(dir, 'hashsize'), tcpEstablished: join(dir, 'est'), tcpCloseWait: join(dir, 'cw'), tcpBeLiberal: join(dir, 'lib'), udp: join(dir, 'udp'), udpStream: join(dir, 'udp-stream') };
    for (const [k, v] of Object.entries(kernelDefaults)) await writeFile(files[k as keyof typeof files], `${v}\n`);
    // A number the kernel shows and refuses to change, even for root (a 0444 sysctl), as nf_conntrack_max is outside
    // the host's own network namespace.
    const refusing = { ...files, max: '/proc/sys/kernel/random/entropy_avail' };
    const { log, records } = captureLogger();
    const done = await applyConntrack(conntrackDefaults, 2, log, refusing);
    expect(show(done)).toEqual(['tcpEstablished 432000 -> 86400', 'tcpCloseWait 60 -> 3600']);
    expect((await readFile(files.tcpEstablished, 'utf8')).trim()).toBe('86400');
    expect((await readFile(files.hashsize, 'utf8')).trim()).toBe('16384');
    expect(records.filter((r) => r.msg === 'conntrack setting changed')).toHaveLength(2);
    expect(records.filter((r) => r.msg === 'cannot change a conntrack setting; leaving it as it is').map((r) => r.setting)).toEqual(['/proc/sys/kernel/random/entropy_avail']);
  });
});
