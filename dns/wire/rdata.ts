// Record data that dns-packet would not relay byte for byte, made exact as miekg/dns relays it for CoreDNS's forward:
// - character-strings (CAA's tag and value, HINFO, NAPTR's flags, services and regexp), which dns-packet reads and
//   writes as UTF-8, so a byte outside it became the three bytes of U+FFFD: here each byte is one character
//   (latin1), read and written back as it was;
// - the names in the data of types dns-packet does not know (MD, MF, MB, MG, MR, MINFO of RFC 1035; AFSDB, RT, PX,
//   KX, SIG, NXT), which it keeps as raw bytes: a name there may be compressed (RFC 3597 §4 lets RFC 1035's types be
//   compressed and asks receivers to decompress those and the others), and a pointer into the upstream's message
//   means nothing in ours. Their data is kept as raw bytes with every name written out whole.
// installRdataCodecs() puts these in dns-packet's place; codec.ts calls it once.
import { nameToWire, wireToName } from './name.ts';

/** The parts of a type's data in order: a fixed number of bytes, a name, or the rest of the data. */
type Part = number | 'name' | 'rest';

// Types dns-packet keeps as raw bytes whose data holds names (RFC 3597 §4's list), by number.
const nameLayouts: ReadonlyMap<number, readonly Part[]> = new Map<number, readonly Part[]>([
  [3, ['name']], // MD
  [4, ['name']], // MF
  [7, ['name']], // MB
  [8, ['name']], // MG
  [9, ['name']], // MR
  [14, ['name', 'name']], // MINFO: RMAILBX, EMAILBX
  [18, [2, 'name']], // AFSDB
  [21, [2, 'name']], // RT
  [24, [18, 'name', 'rest']], // SIG: the fields of RRSIG, then the signer's name and the signature
  [26, [2, 'name', 'name']], // PX
  [30, ['name', 'rest']], // NXT
  [36, [2, 'name']], // KX
]);

/**
 * The data of a record of type `type` at `start` (rdlength bytes) of `msg` with every name written out whole, or
 * undefined when the type has no names or the data does not hold its layout (then it stays as it came). Throws
 * NameError for a name that cannot be read.
 */
export function decompressedData(msg: Buffer, type: number, start: number, length: number): Buffer | undefined {
  const layout = nameLayouts.get(type);
  if (!layout) return undefined;
  const end = start + length;
  const parts: Buffer[] = [];
  let at = start;
  for (const part of layout) {
    if (part === 'name') {
      if (at >= end) return undefined;
      const n = wireToName(msg, at);
      parts.push(nameToWire(n.name));
      at += n.bytes;
    } else if (part === 'rest') {
      parts.push(msg.subarray(at, end));
      at = end;
    } else {
      parts.push(msg.subarray(at, at + part));
      at += part;
    }
    if (at > end) return undefined;
  }
  return at === end ? Buffer.concat(parts) : undefined;
}

/** dns-packet's shape of a codec for one type's data (the two length bytes included). */
interface DataCodec {
  encode: ((data: never, buf?: Buffer, offset?: number) => Buffer) & { bytes: number };
  decode: ((buf: Buffer, offset?: number) => unknown) & { bytes: number };
  encodingLength(data: never): number;
}

/** One field of a data object: a byte, two bytes, a character-string, a name, or the rest as a string. */
type Field = readonly [key: string, kind: 'u8' | 'u16' | 'str' | 'name' | 'rest'];

const byteLength = (s: unknown) => (typeof s === 'string' ? Buffer.byteLength(s, 'latin1') : 0);

/** A codec for data made of `fields`, character-strings and the rest read and written as latin1 (one byte each). */
function fieldsCodec(fields: readonly Field[], before: (data: Record<string, unknown>) => void = () => {}, after: (data: Record<string, unknown>) => void = () => {}): Omit<DataCodec, 'encode' | 'decode'> & { encode: DataCodec['encode']; decode: DataCodec['decode'] } {
  const lengthOf = (data: Record<string, unknown>): number => {
    let n = 2;
    for (const [key, kind] of fields) {
      const v = data[key];
      if (kind === 'u8') n += 1;
      else if (kind === 'u16') n += 2;
      else if (kind === 'str') n += 1 + byteLength(v);
      else if (kind === 'rest') n += byteLength(v);
      else n += nameToWire(String(v ?? '').replace(/^\.$/, '')).length;
    }
    return n;
  };
  const encode = Object.assign(
    (input: never, buf?: Buffer, offset = 0): Buffer => {
      const data = input as Record<string, unknown>;
      before(data);
      const size = lengthOf(data);
      const out = buf ?? Buffer.alloc(size);
      let at = offset + 2;
      for (const [key, kind] of fields) {
        const v = data[key];
        if (kind === 'u8') out[at++] = Number(v ?? 0) & 0xff;
        else if (kind === 'u16') {
          out.writeUInt16BE(Number(v ?? 0) & 0xffff, at);
          at += 2;
        } else if (kind === 'str') {
          const s = String(v ?? '');
          if (byteLength(s) > 255) throw new RangeError(`a character-string of ${byteLength(s)} bytes, longer than 255`);
          out[at] = byteLength(s);
          at += 1 + out.write(s, at + 1, 'latin1');
        } else if (kind === 'rest') at += out.write(String(v ?? ''), at, 'latin1');
        else {
          const w = nameToWire(String(v ?? '').replace(/^\.$/, ''));
          w.copy(out, at);
          at += w.length;
        }
      }
      out.writeUInt16BE(at - offset - 2, offset);
      encode.bytes = at - offset;
      return out;
    },
    { bytes: 0 },
  );
  const decode = Object.assign(
    (buf: Buffer, offset = 0): unknown => {
      const end = offset + 2 + buf.readUInt16BE(offset);
      if (end > buf.length) throw new RangeError('record data runs past the end of the message');
      const data: Record<string, unknown> = {};
      let at = offset + 2;
      for (const [key, kind] of fields) {
        if (kind === 'u8') data[key] = buf.readUInt8(at++);
        else if (kind === 'u16') {
          data[key] = buf.readUInt16BE(at);
          at += 2;
        } else if (kind === 'str') {
          const len = buf.readUInt8(at);
          if (at + 1 + len > end) throw new RangeError('a character-string runs past its record');
          data[key] = buf.toString('latin1', at + 1, at + 1 + len);
          at += 1 + len;
        } else if (kind === 'rest') {
          data[key] = buf.toString('latin1', at, end);
          at = end;
        } else {
          const n = wireToName(buf, at);
          data[key] = n.name === '' ? '.' : n.name;
          at += n.bytes;
        }
      }
      after(data);
      decode.bytes = end - offset;
      return data;
    },
    { bytes: 0 },
  );
  return { encode, decode, encodingLength: (data: never) => lengthOf(data as Record<string, unknown>) };
}

/** The dns-packet module's exported pieces this file replaces. */
export interface PacketInternals {
  answer: { decode: ((buf: Buffer, offset?: number) => { type: string; data?: unknown }) & { bytes: number } };
  caa: DataCodec;
  hinfo: DataCodec;
  naptr: DataCodec;
}

/**
 * Replaces dns-packet's CAA, HINFO and NAPTR codecs by byte-exact ones, and wraps its record decoder so that the
 * data of the types in nameLayouts comes out with whole names. Each replacement keeps the object dns-packet's own
 * functions reach (they call `rcaa.encode`, `answer.decode`, ... through those objects).
 */
export function installRdataCodecs(p: PacketInternals): void {
  const caaCritical = 0x80;
  Object.assign(
    p.caa,
    fieldsCodec(
      [
        ['flags', 'u8'],
        ['tag', 'str'],
        ['value', 'rest'],
      ],
      (d) => {
        if (d.issuerCritical) d.flags = Number(d.flags ?? 0) | caaCritical;
      },
      (d) => {
        d.issuerCritical = (Number(d.flags) & caaCritical) !== 0;
      },
    ),
  );
  Object.assign(
    p.hinfo,
    fieldsCodec([
      ['cpu', 'str'],
      ['os', 'str'],
    ]),
  );
  Object.assign(
    p.naptr,
    fieldsCodec([
      ['order', 'u16'],
      ['preference', 'u16'],
      ['flags', 'str'],
      ['services', 'str'],
      ['regexp', 'str'],
      ['replacement', 'name'],
    ]),
  );
  const decodeRecord = p.answer.decode;
  p.answer.decode = Object.assign(
    (buf: Buffer, offset = 0) => {
      const rr = decodeRecord(buf, offset);
      // dns-packet's decoder writes its byte count on `answer.decode`, which is this function now.
      const bytes = p.answer.decode.bytes;
      // dns-packet keeps the data of the types it has no codec for (named, as AFSDB, or not) as a Buffer.
      if (Buffer.isBuffer(rr.data)) {
        const start = offset + bytes - rr.data.length;
        // The type is the 2 bytes after the owner name, 10 bytes before the data.
        const whole = decompressedData(buf, buf.readUInt16BE(start - 10), start, rr.data.length);
        if (whole) rr.data = whole;
      }
      p.answer.decode.bytes = bytes;
      return rr;
    },
    { bytes: 0 },
  );
}
