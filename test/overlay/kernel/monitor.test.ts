// The kernel-event parser: rtnetlink notifications as the kernel sends them (built here byte by byte, host byte
// order) reduced to the events that can undo the overlay's work; and the real socket in a fresh namespace.
import { endianness } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetnsLab } from '../../../lab/netns.ts';
import { parseKernelEvents, type KernelEvent } from '../../../overlay/kernel/monitor.ts';
import { waitFor } from '../../helpers/wait.ts';

const LE = endianness() === 'LE';
const u16 = (n: number) => {
  const b = Buffer.alloc(2);
  if (LE) b.writeUInt16LE(n);
  else b.writeUInt16BE(n);
  return b;
};
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  if (LE) b.writeUInt32LE(n);
  else b.writeUInt32BE(n);
  return b;
};
/** One netlink message: header (length, type, flags, seq, pid) and body, padded to 4 bytes. */
function message(type: number, body: Buffer): Buffer {
  const length = 16 + body.length;
  const pad = Buffer.alloc((4 - (length % 4)) % 4);
  return Buffer.concat([u32(length), u16(type), u16(0), u32(0), u32(0), body, pad]);
}
/** ifinfomsg: family, pad, type, index, flags, change. */
const ifinfo = (index: number, flags: number) => Buffer.concat([Buffer.from([0, 0]), u16(1), u32(index), u32(flags), u32(0)]);
/** ifaddrmsg / ndmsg: 4 bytes, then the index. */
const indexed = (index: number) => Buffer.concat([Buffer.from([2, 24, 0, 0]), u32(index)]);
/** rtmsg (12 bytes) with RTA_DST and RTA_OIF attributes. */
const rtmsg = (oif: number) => Buffer.concat([Buffer.from([2, 24, 0, 0, 254, 4, 0, 1]), u32(0), u16(8), u16(1), Buffer.from([10, 244, 2, 0]), u16(8), u16(4), u32(oif)]);

describe('parseKernelEvents', () => {
  it('reports deletions and links going down, with their interface, and skips the rest', () => {
    const datagram = Buffer.concat([
      message(16, ifinfo(7, 0x1043)), // RTM_NEWLINK, up: nothing
      message(16, ifinfo(7, 0x1002)), // RTM_NEWLINK, down
      message(17, ifinfo(7, 0x1043)), // RTM_DELLINK
      message(20, indexed(7)), // RTM_NEWADDR: nothing
      message(21, indexed(7)), // RTM_DELADDR
      message(28, indexed(7)), // RTM_NEWNEIGH: nothing
      message(29, indexed(9)), // RTM_DELNEIGH (or an FDB entry)
      message(24, rtmsg(7)), // RTM_NEWROUTE: nothing
      message(25, rtmsg(9)), // RTM_DELROUTE via interface 9
    ]);
    expect(parseKernelEvents(datagram)).toEqual<KernelEvent[]>([
      { what: 'link-down', index: 7 },
      { what: 'link-deleted', index: 7 },
      { what: 'address-deleted', index: 7 },
      { what: 'neighbour-deleted', index: 9 },
      { what: 'route-deleted', index: 9 },
    ]);
  });

  it('stops at a truncated or malformed message without throwing', () => {
    const good = message(21, indexed(3));
    expect(parseKernelEvents(Buffer.concat([good, good.subarray(0, 10)]))).toEqual([{ what: 'address-deleted', index: 3 }]);
    expect(parseKernelEvents(Buffer.concat([u32(4), Buffer.alloc(12)]))).toEqual([]);
    expect(parseKernelEvents(message(25, Buffer.concat([Buffer.alloc(12), u16(2), u16(4)])))).toEqual([]);
  });
});

describe('watchKernel in a network namespace', () => {
  let lab: NetnsLab;
  let ns: string;
  beforeAll(async () => {
    lab = NetnsLab.create();
    ns = await lab.ns('monitor');
  });
  afterAll(async () => {
    await lab?.destroy();
  });

  it('reports a route deleted and a link set down and deleted, as `ip` makes them', async () => {
    // The socket belongs to the namespace of the process that opens it: run a small watcher inside the namespace.
    const script = `
      import { watchKernel } from ${JSON.stringify(new URL('../../../overlay/kernel/monitor.ts', import.meta.url).pathname)};
      watchKernel((e) => process.stdout.write(JSON.stringify(e) + '\\n'));
      process.stdout.write('ready\\n');
      setInterval(() => {}, 1000);`;
    const child = lab.spawn(ns, process.execPath, ['--input-type=module', '-e', script]);
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    await waitFor('the watcher', () => out.includes('ready'), 10_000);
    await lab.exec(ns, 'ip', ['link', 'add', 'mon0', 'type', 'veth', 'peer', 'name', 'mon1']);
    await lab.exec(ns, 'ip', ['link', 'set', 'mon1', 'up']);
    await lab.exec(ns, 'ip', ['link', 'set', 'mon0', 'up']);
    await lab.exec(ns, 'ip', ['addr', 'add', '10.9.0.1/24', 'dev', 'mon0']);
    await lab.exec(ns, 'ip', ['route', 'add', '10.8.0.0/16', 'via', '10.9.0.2', 'dev', 'mon0']);
    const index = Number((await lab.exec(ns, 'cat', ['/sys/class/net/mon0/ifindex'])).stdout.trim());
    await lab.exec(ns, 'ip', ['route', 'del', '10.8.0.0/16']);
    await lab.exec(ns, 'ip', ['link', 'set', 'mon0', 'down']);
    await lab.exec(ns, 'ip', ['link', 'del', 'mon0']);
    const events = () => out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as KernelEvent);
    await waitFor('the deletion of the link', () => events().some((e) => e.what === 'link-deleted'), 5000);
    const mine = events().filter((e) => e.index === index).map((e) => e.what);
    expect(mine).toContain('route-deleted');
    expect(mine).toContain('link-down');
    expect(mine.at(-1)).toBe('link-deleted');
    child.kill();
  });
});
