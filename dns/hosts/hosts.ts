// Static names from a hosts file (`--hosts FILE`), as CoreDNS's hosts plugin serves them: A and AAAA for the names
// listed, PTR for their addresses, NOERROR with no answer for a listed name asked another type, and every other
// name passed on (CoreDNS's `fallthrough`). The file is read again when it changes; a line that cannot be read is
// logged with its number and left out, and a file that cannot be read keeps the last good one.
import { isIPv4, isIPv6 } from 'node:net';
import type { DnsAnswer, DnsHandler, DnsQuery, HandlerResult, ResourceRecord } from '../types.ts';
import { parseReverseName, reverseName } from '../zone/parse.ts';

/** The names and addresses of one hosts file. */
export interface HostsTable {
  /** Lower-case name (no trailing dot) → its addresses. */
  byName: Map<string, string[]>;
  /** Reverse name (`x.in-addr.arpa`, nibbles `.ip6.arpa`) → the names of that address, first listed first. */
  byReverse: Map<string, string[]>;
}

/** A line left out, and why. */
export interface HostsProblem {
  line: number;
  reason: string;
}

const label = /^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/;

/** Reads hosts-file text: `ADDRESS NAME [NAME...]` per line, `#` comments. Pure. */
export function parseHosts(text: string): { table: HostsTable; problems: HostsProblem[] } {
  const table: HostsTable = { byName: new Map(), byReverse: new Map() };
  const problems: HostsProblem[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*/, '').trim();
    if (line === '') return;
    const [address = '', ...names] = line.split(/\s+/);
    // An IPv6 zone (fe80::1%eth0) means nothing to a DNS client.
    if ((!isIPv4(address) && !isIPv6(address)) || address.includes('%')) return void problems.push({ line: i + 1, reason: `${JSON.stringify(address)} is not an IP address` });
    if (names.length === 0) return void problems.push({ line: i + 1, reason: 'no name after the address' });
    for (const n of names) {
      const name = n.toLowerCase().replace(/\.$/, '');
      if (name.length > 253 || !name.split('.').every((l) => label.test(l))) {
        problems.push({ line: i + 1, reason: `${JSON.stringify(n)} is not a host name` });
        continue;
      }
      const list = table.byName.get(name) ?? [];
      if (!list.includes(address)) list.push(address);
      table.byName.set(name, list);
      const rev = reverseName(address);
      const back = table.byReverse.get(rev) ?? [];
      if (!back.includes(name)) back.push(name);
      table.byReverse.set(rev, back);
    }
  });
  return { table, problems };
}

/** The names of `first` and then of `second` (each name's and each address's entries in that order, once). Pure. */
export function mergeHosts(first: HostsTable, second: HostsTable): HostsTable {
  const merge = (a: Map<string, string[]>, b: Map<string, string[]>) => {
    const out = new Map<string, string[]>();
    for (const m of [a, b]) for (const [k, v] of m) out.set(k, [...new Set([...(out.get(k) ?? []), ...v])]);
    return out;
  };
  return { byName: merge(first.byName, second.byName), byReverse: merge(first.byReverse, second.byReverse) };
}

/** Options of the hosts handler. */
export interface HostsOptions {
  /** Entries written in the Corefile (CoreDNS's inline hosts lines): answered before the file's, with them. */
  inline?: HostsTable;
  /** Answer no PTR from the table (CoreDNS's no_reverse). */
  noReverse?: boolean;
}

/** Answers the names of a hosts table; passes the rest. */
export class HostsHandler implements DnsHandler {
  readonly name = 'hosts';
  #table: HostsTable = { byName: new Map(), byReverse: new Map() };
  #ttl: number;
  #o: HostsOptions;
  #generation = 0;
  /** Answers by type and name, for the current table: the server reuses the bytes of an answer object. */
  #memo = new Map<string, DnsAnswer>();

  constructor(ttl: number, options: HostsOptions = {}) {
    this.#ttl = ttl;
    this.#o = options;
    if (options.inline) this.#table = options.inline;
  }

  /** Serves a new table (the file's: the inline entries come first) from the next query on. */
  replace(file: HostsTable): void {
    const table = this.#o.inline ? mergeHosts(this.#o.inline, file) : file;
    this.#table = table;
    this.#memo = new Map();
    this.#generation++;
  }

  /** Changes with every new table: answers are a function of the table. */
  version(): number {
    return this.#generation;
  }

  /** Names served. */
  get size(): number {
    return this.#table.byName.size;
  }

  handle(q: DnsQuery): HandlerResult {
    // The table is class IN; ANY gets the same answers. Other classes (CH, HS) pass on, before the memo: its key
    // has no class.
    if (q.qclass !== 1 && q.qclass !== 255) return 'pass';
    const key = `${q.qtype} ${q.lname}`;
    const known = this.#memo.get(key);
    if (known !== undefined) return known;
    const answer = this.#answer(q);
    if (answer !== 'pass') this.#memo.set(key, answer);
    return answer;
  }

  #answer(q: DnsQuery): HandlerResult {
    const addresses = this.#table.byName.get(q.lname);
    if (addresses !== undefined) {
      const want = q.type === 'A' ? isIPv4 : q.type === 'AAAA' ? isIPv6 : undefined;
      const answers: ResourceRecord[] = want === undefined ? [] : addresses.filter((a) => want(a)).map((data) => ({ name: q.name, type: q.type as 'A', ttl: this.#ttl, class: 'IN', data }));
      return { rcode: 'NOERROR', authoritative: true, answers, authorities: [], additionals: [], source: this.name };
    }
    if (q.type === 'PTR' && !this.#o.noReverse && parseReverseName(q.lname) !== undefined) {
      const names = this.#table.byReverse.get(q.lname);
      if (names !== undefined) {
        const answers = names.map((n) => ({ name: q.name, type: 'PTR' as const, ttl: this.#ttl, class: 'IN' as const, data: n }));
        return { rcode: 'NOERROR', authoritative: true, answers, authorities: [], additionals: [], source: this.name };
      }
    }
    return 'pass';
  }
}
