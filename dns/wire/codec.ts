// The parts of dns-packet that its type declarations leave out (name and record codecs, type names), typed here
// once, plus the rcode numbers of RFC 1035 4.1.1 and RFC 6891 9.
import { createRequire } from 'node:module';
import dnsPacket from 'dns-packet';
import type { ResourceRecord } from '../types.ts';
import { nameToWire, wireToName } from './name.ts';
import { installRdataCodecs, type PacketInternals } from './rdata.ts';

/** dns-packet's encoder/decoder pair for one element, with the byte count of its last call. */
interface Codec<T> {
  encode: ((value: T, buf?: Buffer, offset?: number) => Buffer) & { bytes: number };
  decode: ((buf: Buffer, offset?: number) => T) & { bytes: number };
  encodingLength(value: T): number;
}

const raw = dnsPacket as unknown as { name: Codec<string>; answer: Codec<ResourceRecord> } & PacketInternals;
const types = createRequire(import.meta.url)('dns-packet/types.js') as { toString(type: number): string };

// dns-packet reads and writes every name, in owner names and in record data, through this one object: its functions
// are replaced by name.ts's, which keep each label's bytes as they are (`\.`, `\\`, `\DDD` in the text form), as
// miekg/dns does for CoreDNS. Its own split labels at every dot and read them as UTF-8: a forwarded PTR to
// "Mr. Smith._ipp..." lost its instance name, a byte 0xe9 became U+FFFD. Its `mail` option (an SOA or RP mailbox,
// whose first label may hold dots) needs nothing more: such a dot is written `\.` whatever the name.
// dns-packet asks a name's length, then writes it: the last name's wire form is kept for the second call.
let lastText = '';
let lastWire: Buffer = Buffer.from([0]);
function wireOf(text: string): Buffer {
  if (text !== lastText) {
    lastWire = nameToWire(text === '.' ? '' : text);
    lastText = text;
  }
  return lastWire;
}
raw.name.decode = Object.assign(
  (buf: Buffer, offset = 0): string => {
    const r = wireToName(buf, offset);
    raw.name.decode.bytes = r.bytes;
    return r.name === '' ? '.' : r.name;
  },
  { bytes: 0 },
);
raw.name.encode = Object.assign(
  (text: string, buf?: Buffer, offset = 0): Buffer => {
    const wire = wireOf(text);
    const out = buf ?? Buffer.alloc(wire.length);
    wire.copy(out, offset);
    raw.name.encode.bytes = wire.length;
    return out;
  },
  { bytes: 0 },
);
raw.name.encodingLength = (text: string): number => wireOf(text).length;
installRdataCodecs(raw);

/** dns-packet's name codec (name.ts's functions): decode follows compression pointers (backwards only) and throws on bad input. */
export const nameCodec = raw.name;
/** dns-packet's resource record codec (owner name, type, class, TTL, rdata); throws on bad input. */
export const answerCodec = raw.answer;

function nameOfType(qtype: number): string {
  const named = types.toString(qtype);
  return named.startsWith('UNKNOWN_') ? `TYPE${qtype}` : named;
}
// Every type below 256 plus the named ones above (CAA, TA, DLV) in a flat table: the hot path reads one element.
const lowTypeNames = Array.from({ length: 256 }, (_, t) => nameOfType(t));
const highTypeNames = new Map<number, string>();

/** The type as dns-packet names it ("A", "SRV", ...), or "TYPE<n>" (RFC 3597) for the types it does not name. */
export function typeName(qtype: number): string {
  if (qtype < 256) return lowTypeNames[qtype]!;
  let s = highTypeNames.get(qtype);
  if (s === undefined) {
    s = nameOfType(qtype);
    // Bounded: at most 65,280 short strings however many queries ask for odd types.
    highTypeNames.set(qtype, s);
  }
  return s;
}

/** Rcode numbers by name, as the header (low 4 bits) and the OPT record (high 8 bits) carry them. */
export const rcodeNumbers = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
  YXDOMAIN: 6,
  YXRRSET: 7,
  NXRRSET: 8,
  NOTAUTH: 9,
  NOTZONE: 10,
  BADVERS: 16,
  BADCOOKIE: 23,
} as const;

/** A named rcode. */
export type RcodeName = keyof typeof rcodeNumbers;
