// Per-query logging, CoreDNS's `log` plugin: one line per answered query with what CoreDNS's default (common) log
// format carries — client address and port, message ID, type, class, name, protocol, request size, DO bit, buffer
// size, rcode, response flags, response size, duration — as JSON fields of a pino line instead of CoreDNS's text.
// The server calls it behind one check of a field, so without --log-queries the query path does nothing more; with
// it, every line costs a pino write, as CoreDNS warns its plugin costs a busy server.
import type { Logger } from '../../runtime/logger.ts';
import { typeName } from '../wire/codec.ts';
import { parseQuery } from '../wire/query.ts';
import { rcodeLabel } from './metrics.ts';
import type { Client } from './output.ts';

/** CoreDNS's response classes (plugin/pkg/response Classify): which answered queries are logged. */
export const queryClasses = ['success', 'denial', 'error'] as const;
/** One response class. */
export type QueryClass = (typeof queryClasses)[number];

/**
 * Parses `all`, or a comma-separated list of `success`, `denial` and `error` (CoreDNS's `class` takes them
 * space-separated); throws saying what is allowed.
 */
export function parseQueryClasses(raw: string): ReadonlySet<QueryClass> {
  const parts = raw.split(',').map((p) => p.trim());
  if (parts.includes('all') && parts.every((p) => p === 'all' || (queryClasses as readonly string[]).includes(p))) return new Set(queryClasses);
  if (parts.length === 0 || !parts.every((p) => (queryClasses as readonly string[]).includes(p))) {
    throw new Error('must be all, or success, denial and error separated by commas, e.g. denial,error');
  }
  return new Set(parts as QueryClass[]);
}

/** What a log line says of the query; a ParsedQuery has it all. */
export interface LoggedQuery {
  id: number;
  /** Presentation form without the trailing dot ("" for the root). */
  name: string;
  qtype: number;
  qclass: number;
  dnssecOk: boolean;
  /** The EDNS0 UDP size asked for, undefined without EDNS0. */
  udpSize?: number;
  wireSize: number;
}

const classNames: Record<number, string> = { 1: 'IN', 3: 'CH', 4: 'HS', 254: 'NONE', 255: 'ANY' };
/** The class as dig and CoreDNS print it ("IN", "CH", ..., "CLASS<n>", RFC 3597). */
export function className(qclass: number): string {
  return classNames[qclass] ?? `CLASS${qclass}`;
}

/** The header flags of a response as CoreDNS's `{>rflags}` prints them, in its order: "qr,aa,rd,ra". */
export function responseFlags(b2: number, b3: number): string {
  let s = '';
  const add = (set: boolean, f: string) => {
    if (set) s = s === '' ? f : `${s},${f}`;
  };
  add((b2 & 0x80) !== 0, 'qr');
  add((b2 & 0x04) !== 0, 'aa');
  add((b2 & 0x02) !== 0, 'tc');
  add((b2 & 0x01) !== 0, 'rd');
  add((b3 & 0x80) !== 0, 'ra');
  add((b3 & 0x40) !== 0, 'z');
  add((b3 & 0x20) !== 0, 'ad');
  add((b3 & 0x10) !== 0, 'cd');
  return s;
}

/** Offset just past the (possibly compressed) name at `off`, or -1 when it runs past the message. */
function skipName(m: Buffer, off: number): number {
  while (off < m.length) {
    const l = m[off]!;
    if (l === 0) return off + 1;
    if ((l & 0xc0) === 0xc0) return off + 2;
    off += 1 + l;
  }
  return -1;
}

/**
 * The class of the response whose header starts at `at`, as CoreDNS classifies it: NXDOMAIN and NODATA (NOERROR,
 * no answer, an SOA in the authority section) are denial; any other NOERROR (answers, a delegation, nothing) is
 * success; every other rcode is error. (CoreDNS also wants the SOA with NXDOMAIN; every NXDOMAIN of the zone has it.)
 */
export function classifyResponse(resp: Buffer, at: number): QueryClass {
  if (resp.length < at + 12) return 'error';
  const rcode = resp[at + 3]! & 0x0f;
  if (rcode === 3) return 'denial';
  if (rcode !== 0) return 'error';
  const qd = resp.readUInt16BE(at + 4);
  const an = resp.readUInt16BE(at + 6);
  const ns = resp.readUInt16BE(at + 8);
  if (an > 0 || ns === 0) return 'success';
  let off = at + 12;
  for (let i = 0; i < qd && off >= 0; i++) off = (off = skipName(resp, off)) < 0 ? -1 : off + 4;
  for (let i = 0; i < ns && off >= 0 && off + 10 <= resp.length; i++) {
    off = skipName(resp, off);
    if (off < 0 || off + 10 > resp.length) break;
    if (resp.readUInt16BE(off) === 6) return 'denial';
    off += 10 + resp.readUInt16BE(off + 8);
  }
  return 'success';
}

/** Writes one line per answered query of the wanted classes, at info level. */
export class QueryLog {
  readonly #log: Logger;
  readonly #classes: ReadonlySet<QueryClass>;

  constructor(log: Logger, classes: ReadonlySet<QueryClass> = new Set(queryClasses)) {
    this.#log = log;
    this.#classes = classes;
  }

  /**
   * Logs the query `msg` answered with `resp` (its DNS message from offset `prefix`); `q` is what was parsed of
   * it, or undefined for a replayed response, whose query is parsed here. `start` is when it arrived
   * (performance.now()). Never throws.
   */
  record(msg: Buffer, q: LoggedQuery | undefined, resp: Buffer, prefix: 0 | 2, transport: 'udp' | 'tcp', client: Client, start: number): void {
    try {
      const cls = classifyResponse(resp, prefix);
      if (!this.#classes.has(cls)) return;
      if (q === undefined) {
        const p = parseQuery(msg, transport, client);
        if (!p.ok) return;
        q = p;
      }
      const ms = Math.round((performance.now() - start) * 1000) / 1000;
      this.#log.info(
        {
          remote: client.address,
          port: client.port,
          id: q.id,
          type: typeName(q.qtype),
          class: className(q.qclass),
          name: `${q.name}.`,
          proto: transport,
          size: q.wireSize,
          do: q.dnssecOk,
          // CoreDNS's {>bufsize}: 64K over TCP, else the EDNS0 size (at least 512), 512 without EDNS0.
          bufsize: transport === 'tcp' ? 65535 : (q.udpSize ?? 512),
          rcode: rcodeLabel((resp[prefix + 3]! & 0x0f) | extendedRcode(resp, prefix)),
          rflags: responseFlags(resp[prefix + 2]!, resp[prefix + 3]!),
          rsize: resp.length - prefix,
          ms,
        },
        'query',
      );
    } catch {
      // A log line is never worth a failed answer.
    }
  }
}

/** The upper bits of an extended rcode (RFC 6891 6.1.3: BADVERS, BADCOOKIE) from the response's OPT record. */
function extendedRcode(resp: Buffer, prefix: number): number {
  if (resp.length - prefix < 12 || resp.readUInt16BE(prefix + 10) === 0) return 0;
  // wire/response.ts writes its OPT record last, perhaps with relayed options: every record before it is skipped.
  const skipName = (at: number): number => {
    while (at < resp.length) {
      const l = resp[at]!;
      if (l === 0) return at + 1;
      if (l >= 0xc0) return at + 2;
      at += l + 1;
    }
    return resp.length;
  };
  let at = skipName(prefix + 12) + 4;
  let records = resp.readUInt16BE(prefix + 6) + resp.readUInt16BE(prefix + 8) + resp.readUInt16BE(prefix + 10);
  while (records-- > 0 && at + 11 <= resp.length) {
    const fixed = skipName(at);
    if (fixed + 10 > resp.length) return 0;
    if (resp.readUInt16BE(fixed) === 41) return resp[fixed + 4]! << 4;
    at = fixed + 10 + resp.readUInt16BE(fixed + 8);
  }
  return 0;
}
