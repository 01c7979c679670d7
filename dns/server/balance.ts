// Address records in a different order per response, as CoreDNS's loadbalance plugin does (in every default
// Corefile): without it every client that takes the first address (Go's dialer, Java, gRPC pick_first, curl) lands
// on the same endpoint of a headless Service or the same address of an external name.
//
// CoreDNS (plugin/loadbalance/loadbalance.go) handles NOERROR responses only, and each of the answer, authority and
// additional sections on its own: the records are regrouped as CNAMEs, then the others, then A and AAAA, then MX
// (so a CNAME always precedes the addresses it leads to, which glibc insists on), and the A/AAAA group and the MX
// group are each shuffled. Here the regrouping is done once, on the encoded bytes the server caches per answer, and
// each response then rotates each group by a counter the server advances per response: every address comes first
// equally often, and the cost per response is a copy of the group's bytes. Byte-for-byte replays (replay.ts) are
// rotated the same way after they are copied. Rotation rather than a full shuffle is what dnsmasq and BIND's
// `rrset-order cyclic` do; clients that take the first address get the same spread either way.
import type { EncodedAnswer } from '../wire/response.ts';

/** How the server orders address records per response: CoreDNS's `loadbalance round_robin`, or as the handler gave them. */
export type LoadBalance = 'round_robin' | 'off';

/** The load-balance policies, for flag checking. */
export const loadBalancePolicies: readonly LoadBalance[] = ['round_robin', 'off'];

/** A group of records rotated per response: the body offset of each record's start, then the group's end. */
type Group = Int32Array;

/** What the server keeps per encoded answer to rotate its address (and MX) records. */
export interface BalancePlan {
  /** The groups to rotate, by body offsets; each has at least two records. */
  readonly groups: readonly Group[];
}

const typeA = 1;
const typeCNAME = 5;
const typeMX = 15;
const typeAAAA = 28;

/** One record's place in the body. */
interface Span {
  start: number;
  end: number;
  type: number;
}

/** The records of an encoded body, or null when it does not parse (then nothing is balanced). */
function spans(body: Buffer, count: number): Span[] | null {
  const out: Span[] = [];
  let i = 0;
  for (let n = 0; n < count; n++) {
    const start = i;
    // Owner names are written uncompressed, or as one pointer to the question (response.ts).
    for (;;) {
      if (i >= body.length) return null;
      const l = body[i]!;
      if (l === 0) {
        i++;
        break;
      }
      if (l >= 0xc0) {
        i += 2;
        break;
      }
      if (l > 63) return null;
      i += l + 1;
    }
    if (i + 10 > body.length) return null;
    const type = body.readUInt16BE(i);
    const end = i + 10 + body.readUInt16BE(i + 8);
    if (end > body.length) return null;
    out.push({ start, end, type });
    i = end;
  }
  return i === body.length ? out : null;
}

/**
 * Regroups an answer's records as CoreDNS's loadbalance does (per section: CNAME, others, A and AAAA, MX) and finds
 * the groups to rotate. Returns the answer unchanged and no plan when there is nothing to rotate, when the rcode is
 * not NOERROR, or when the body does not parse.
 */
export function planBalance(enc: EncodedAnswer): { enc: EncodedAnswer; plan: BalancePlan | null } {
  if (enc.rcode !== 0) return { enc, plan: null };
  const all = spans(enc.body, enc.an + enc.ns + enc.ar);
  if (all === null) return { enc, plan: null };
  const parts: Buffer[] = [];
  const groups: Group[] = [];
  let reordered = false;
  let at = 0;
  let from = 0;
  for (const size of [enc.an, enc.ns, enc.ar]) {
    const section = all.slice(from, from + size);
    from += size;
    const cname = section.filter((s) => s.type === typeCNAME);
    const address = section.filter((s) => s.type === typeA || s.type === typeAAAA);
    const mx = section.filter((s) => s.type === typeMX);
    const rest = section.filter((s) => s.type !== typeCNAME && s.type !== typeA && s.type !== typeAAAA && s.type !== typeMX);
    const order = [...cname, ...rest, ...address, ...mx];
    for (let k = 0; k < order.length; k++) reordered ||= order[k] !== section[k];
    for (const [list, first] of [
      [address, cname.length + rest.length],
      [mx, cname.length + rest.length + address.length],
    ] as const) {
      if (list.length < 2) continue;
      const g = new Int32Array(list.length + 1);
      let o = at;
      for (let k = 0; k < first; k++) o += order[k]!.end - order[k]!.start;
      for (let k = 0; k < list.length; k++) {
        g[k] = o;
        o += list[k]!.end - list[k]!.start;
      }
      g[list.length] = o;
      groups.push(g);
    }
    for (const s of order) {
      parts.push(enc.body.subarray(s.start, s.end));
      at += s.end - s.start;
    }
  }
  if (groups.length === 0) return { enc, plan: null };
  return { enc: reordered ? { ...enc, body: Buffer.concat(parts) } : enc, plan: { groups } };
}

/** Scratch memory for one group's bytes (a response is at most 65535 bytes). */
const scratch = Buffer.allocUnsafe(65536);

/**
 * Rotates every group of `plan` by `turn` records, in place, in a response whose body (the records) starts at
 * `bodyAt` in `out`: the record at index `turn % n` comes first. Never throws on a plan made for this body.
 */
export function rotate(out: Buffer, bodyAt: number, plan: BalancePlan, turn: number): void {
  for (const g of plan.groups) {
    const n = g.length - 1;
    const r = turn % n;
    if (r === 0) continue;
    const start = bodyAt + g[0]!;
    const split = bodyAt + g[r]!;
    const end = bodyAt + g[n]!;
    const len = end - start;
    const head = end - split;
    const lead = split - start;
    if (len > 64) {
      out.copy(scratch, 0, start, end);
      scratch.copy(out, start, lead, len);
      scratch.copy(out, start + head, 0, lead);
      continue;
    }
    // A byte loop for a few records: Buffer.copy's fixed cost outweighs it below about 64 bytes.
    for (let i = 0; i < len; i++) scratch[i] = out[start + i]!;
    for (let i = 0; i < head; i++) out[start + i] = scratch[lead + i]!;
    for (let i = 0; i < lead; i++) out[start + head + i] = scratch[i]!;
  }
}

/** A copy of the body with every group rotated by `turn` (for responses that are compressed and cut to fit). */
export function rotatedBody(body: Buffer, plan: BalancePlan, turn: number): Buffer {
  const copy = Buffer.from(body);
  rotate(copy, 0, plan, turn);
  return copy;
}
