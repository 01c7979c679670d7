// Runs a list of OverlayKernel operations and collects one JSON-able result each, so that the same list can run
// on NetlinkKernel in a namespace (driver.ts) and on FakeKernel in the test process, and the results compared.
import type { OverlayKernel } from '../../../overlay/kernel/types.ts';

/** One operation; a string "$index:NAME" anywhere in args stands for that interface's index at that moment. */
export interface KernelOp {
  op: keyof OverlayKernel | 'bulk';
  args?: unknown[];
}

/** The outcome of one operation: its value, or the error's identity. */
export type OpResult = { ok: true; value: unknown } | { ok: false; error: { name: string; code?: string; errno?: string; message: string } };

/** Options of the "bulk" operation: `count` × (neighbour + FDB entry + route) on a VXLAN device, timed. */
export interface BulkArgs {
  vxlan: string;
  count: number;
  /** The first node's number (default 0): a second run with another offset adds other nodes' entries. */
  offset?: number;
  /** Await each request before sending the next. */
  sequential?: boolean;
  /** Also dump links, neighbours, FDB and routes, 5 times each, while the writes are in flight. */
  readWhileWriting?: boolean;
}

/** Runs the operations in order; a failure is recorded and the next one runs. */
export async function runOps(kernel: OverlayKernel, ops: readonly KernelOp[]): Promise<OpResult[]> {
  const results: OpResult[] = [];
  for (const { op, args = [] } of ops) {
    try {
      const resolved = (await resolve(kernel, args)) as unknown[];
      const value = op === 'bulk' ? await bulk(kernel, resolved[0] as BulkArgs) : await (kernel[op] as (...a: unknown[]) => unknown)(...resolved);
      results.push({ ok: true, value: value ?? null });
    } catch (e) {
      const err = e as { name?: string; code?: string; errno?: string; message?: string };
      results.push({ ok: false, error: { name: err.name ?? 'Error', code: err.code, errno: err.errno, message: err.message ?? String(e) } });
    }
  }
  return results;
}

async function resolve(kernel: OverlayKernel, value: unknown): Promise<unknown> {
  if (typeof value === 'string' && value.startsWith('$index:')) return (await kernel.link(value.slice('$index:'.length)))?.index ?? -1;
  if (Array.isArray(value)) return Promise.all(value.map((v) => resolve(kernel, v)));
  if (value && typeof value === 'object') {
    const entries = await Promise.all(Object.entries(value).map(async ([k, v]) => [k, await resolve(kernel, v)] as const));
    return Object.fromEntries(entries);
  }
  return value;
}

/** The entries of the bulk operation: node i has MAC 0a:58:0a:HI:LO:00, gateway 10.HI.LO.0, VTEP 192.168.x.y. */
export function bulkEntries(count: number, offset = 0): { mac: string; gateway: string; vtep: string }[] {
  return Array.from({ length: count }, (_, n) => {
    const i = n + offset;
    const hi = 100 + ((i >> 8) & 0xff);
    const lo = i & 0xff;
    return { mac: `0a:58:0a:${hi.toString(16)}:${lo.toString(16).padStart(2, '0')}:00`, gateway: `10.${hi}.${lo}.0`, vtep: `192.168.${i >> 8}.${(lo % 250) + 2}` };
  });
}

async function bulk(kernel: OverlayKernel, { vxlan, count, offset, sequential, readWhileWriting }: BulkArgs): Promise<{ entries: number; ms: number; reads?: number }> {
  const index = (await kernel.link(vxlan))?.index;
  if (index === undefined) throw new Error(`no interface ${vxlan}`);
  const ops: (() => Promise<void>)[] = [];
  for (const { mac, gateway, vtep } of bulkEntries(count, offset)) {
    ops.push(() => kernel.replaceNeighbour({ index, ip: gateway, mac, permanent: true }));
    ops.push(() => kernel.replaceFdb({ index, mac, dst: vtep, permanent: true }));
    ops.push(() => kernel.addRoute({ dst: `${gateway}/24`, gateway, index, onlink: true }));
  }
  const reads: (() => Promise<unknown[]>)[] = [];
  for (let i = 0; readWhileWriting && i < 5; i++) reads.push(() => kernel.links(), () => kernel.neighbours(index), () => kernel.fdb(index), () => kernel.routes(index));
  const start = performance.now();
  const read = Promise.all(reads.map((r) => r()));
  if (sequential) for (const op of ops) await op();
  else await Promise.all(ops.map((op) => op()));
  const ms = Math.round((performance.now() - start) * 10) / 10;
  return readWhileWriting ? { entries: ops.length, ms, reads: (await read).length } : { entries: ops.length, ms };
}
