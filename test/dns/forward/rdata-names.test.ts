// Names inside forwarded records reach the client with the labels the upstream sent, as CoreDNS's forward relays
// them (miekg/dns keeps every label byte): a label holding a dot ("Mr. Smith", a DNS-SD instance name), a space or a
// byte outside ASCII, in an owner name, in CNAME/PTR/NS/MX/SRV/SOA/NSEC/RRSIG data. Found by an audit: dns-packet
// decoded labels as UTF-8 text joined by dots, so `Mr. Smith._ipp` came back as the labels `Mr`, ` Smith`, `_ipp`
// and the byte 0xe9 as the three bytes of U+FFFD.
import { createSocket, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { Forwarder } from '../../../dns/forward/forwarder.ts';
import { NameError, nameToWire, wireToName } from '../../../dns/wire/name.ts';
import { encodeAnswer } from '../../../dns/wire/response.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { query } from './fake-upstream.ts';

const open: Socket[] = [];
afterEach(() => {
  for (const s of open.splice(0)) s.close();
});

/** A name's wire form from its labels, given as latin1 strings (any byte). */
function wire(...labels: string[]): Buffer {
  return Buffer.concat([...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'latin1')])), Buffer.from([0])]);
}

/** One record, uncompressed but for an owner given as a Buffer (such as the pointer c00c to the question). */
function record(owner: Buffer, type: number, rdata: Buffer, ttl = 300): Buffer {
  const fixed = Buffer.alloc(10);
  fixed.writeUInt16BE(type, 0);
  fixed.writeUInt16BE(1, 2);
  fixed.writeUInt32BE(ttl, 4);
  fixed.writeUInt16BE(rdata.length, 8);
  return Buffer.concat([owner, fixed, rdata]);
}

const toQuestion = Buffer.from([0xc0, 0x0c]);
const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);
const u32 = (n: number) => Buffer.from([n >>> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]);

/** A UDP upstream that answers every query with its question and `answers` (one record each), nothing else. */
async function rawUpstream(answers: Buffer[]): Promise<{ host: string; port: number; text: string }> {
  const s = createSocket('udp4');
  s.on('message', (msg, from) => {
    // The question ends 4 bytes after its name's root label; our query's OPT record follows.
    let end = 12;
    while (msg[end] !== 0) end += msg[end]! + 1;
    end += 5;
    const h = Buffer.from(msg.subarray(0, 12));
    h[2] = 0x81;
    h[3] = 0x80;
    h.writeUInt16BE(answers.length, 6);
    h.writeUInt16BE(0, 8);
    h.writeUInt16BE(0, 10);
    s.send(Buffer.concat([h, msg.subarray(12, end), ...answers]), from.port, from.address);
  });
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
  open.push(s);
  const port = s.address().port;
  return { host: '127.0.0.1', port, text: `127.0.0.1:${port}` };
}

const instance = wire('Mr. Smith', '_ipp', '_tcp', 'example', 'com');
const rows: Array<{ what: string; type: string; answers: Buffer[] }> = [
  { what: 'a PTR target with a dot in a label', type: 'PTR', answers: [record(toQuestion, 12, instance)] },
  { what: 'a PTR target with a byte outside ASCII', type: 'PTR', answers: [record(toQuestion, 12, wire('caf\xe9', 'example', 'com'))] },
  { what: 'a PTR target with a space, a backslash and a zero byte', type: 'PTR', answers: [record(toQuestion, 12, wire('a b\\c\x00', 'example'))] },
  {
    what: 'a CNAME chain through an owner with a dot in a label',
    type: 'A',
    answers: [record(toQuestion, 5, instance), record(instance, 5, wire('x.y', 'example', 'com')), record(wire('x.y', 'example', 'com'), 1, Buffer.from([192, 0, 2, 1]))],
  },
  { what: 'an MX exchange and an SRV target with dots in labels', type: 'MX', answers: [record(toQuestion, 15, Buffer.concat([u16(10), wire('mail.relay', 'example')])), record(toQuestion, 33, Buffer.concat([u16(0), u16(1), u16(80), instance]))] },
  { what: 'an SOA whose mailbox has a dot in its local part', type: 'SOA', answers: [record(toQuestion, 6, Buffer.concat([wire('ns', 'example'), wire('john.doe', 'example'), u32(1), u32(2), u32(3), u32(4), u32(5)]))] },
  { what: 'an NS record and a DNAME', type: 'NS', answers: [record(toQuestion, 2, wire('ns\xff', 'example')), record(toQuestion, 39, wire('new.tree', 'example'))] },
  { what: "an NSEC's next name", type: 'NSEC', answers: [record(toQuestion, 47, Buffer.concat([wire('b.c', 'example'), Buffer.from([0, 1, 0x40])]))] },
  {
    what: "an RRSIG's signer",
    type: 'RRSIG',
    answers: [record(toQuestion, 46, Buffer.concat([u16(1), Buffer.from([8, 2]), u32(300), u32(2), u32(1), u16(7), wire('sign.er', 'example'), Buffer.alloc(16, 0xee)]))],
  },
];

describe('names in forwarded records', () => {
  it.each(rows)('keep their labels: $what', async ({ type, answers }) => {
    const up = await rawUpstream(answers);
    const f = new Forwarder({ upstreams: [up], log: silentLogger(), cache: { maxEntries: 0 } });
    try {
      const q = query('q.example', type, { dnssecOk: true });
      const answer = await f.handle(q);
      expect(answer.rcode).toBe('NOERROR');
      const enc = encodeAnswer(answer, q.lname);
      expect(enc.an).toBe(answers.length);
      expect(enc.body.toString('hex')).toBe(Buffer.concat(answers).toString('hex'));
    } finally {
      await f.close();
    }
  });
});

// Found by an audit: dns-packet keeps the data of types it has no codec for (MB, MG, MR, MINFO, AFSDB, ...) as raw
// bytes, so a compressed name there (RFC 3597 §4 allows it in RFC 1035's types) kept a pointer into the upstream's
// message, and it read CAA, HINFO and NAPTR character-strings as UTF-8 (0xff became U+FFFD's three bytes).
const question = wire('q', 'example');
const str = (s: string) => Buffer.concat([Buffer.from([s.length]), Buffer.from(s, 'latin1')]);
const exact: Array<{ what: string; type: string; sent: Buffer[]; relayed: Buffer[] }> = [
  { what: 'an MB whose name points at the question', type: 'TYPE7', sent: [record(toQuestion, 7, toQuestion)], relayed: [record(toQuestion, 7, question)] },
  { what: 'an MG and an MR with a dot in a label', type: 'TYPE8', sent: [record(toQuestion, 8, wire('john.doe', 'example')), record(toQuestion, 9, Buffer.concat([Buffer.from([3]), Buffer.from('new'), toQuestion]))], relayed: [record(toQuestion, 8, wire('john.doe', 'example')), record(toQuestion, 9, wire('new', 'q', 'example'))] },
  { what: 'an MINFO with both mailboxes compressed', type: 'TYPE14', sent: [record(toQuestion, 14, Buffer.concat([Buffer.from([5]), Buffer.from('admin'), toQuestion, Buffer.from([5]), Buffer.from('error'), toQuestion]))], relayed: [record(toQuestion, 14, Buffer.concat([wire('admin', 'q', 'example'), wire('error', 'q', 'example')]))] },
  { what: 'an AFSDB and a KX whose names point at the question', type: 'TYPE18', sent: [record(toQuestion, 18, Buffer.concat([u16(1), toQuestion])), record(toQuestion, 36, Buffer.concat([u16(5), toQuestion]))], relayed: [record(toQuestion, 18, Buffer.concat([u16(1), question])), record(toQuestion, 36, Buffer.concat([u16(5), question]))] },
  { what: 'a CAA value that is not UTF-8', type: 'TYPE257', sent: [record(toQuestion, 257, Buffer.concat([Buffer.from([0x80]), str('issue'), Buffer.from('ca\xff;\x00x', 'latin1')]))], relayed: [record(toQuestion, 257, Buffer.concat([Buffer.from([0x80]), str('issue'), Buffer.from('ca\xff;\x00x', 'latin1')]))] },
  { what: 'an HINFO and a NAPTR with bytes outside UTF-8', type: 'TYPE13', sent: [record(toQuestion, 13, Buffer.concat([str('caf\xe9'), str('\xff')])), record(toQuestion, 35, Buffer.concat([u16(1), u16(2), str('U'), str('E2U+sip'), str('!^.*$!sip:\xe9@x!'), wire('r.e', 'example')]))], relayed: [record(toQuestion, 13, Buffer.concat([str('caf\xe9'), str('\xff')])), record(toQuestion, 35, Buffer.concat([u16(1), u16(2), str('U'), str('E2U+sip'), str('!^.*$!sip:\xe9@x!'), wire('r.e', 'example')]))] },
];

describe('record data with names or bytes dns-packet would change', () => {
  it.each(exact)('is relayed with whole names and every byte: $what', async ({ type, sent, relayed }) => {
    const up = await rawUpstream(sent);
    const f = new Forwarder({ upstreams: [up], log: silentLogger(), cache: { maxEntries: 0 } });
    try {
      const q = query('q.example', type);
      const answer = await f.handle(q);
      expect(answer.rcode).toBe('NOERROR');
      const enc = encodeAnswer(answer, q.lname);
      expect(enc.an).toBe(sent.length);
      expect(enc.body.toString('hex')).toBe(Buffer.concat(relayed).toString('hex'));
    } finally {
      await f.close();
    }
  });
});

describe('wireToName and nameToWire', () => {
  const rows: Array<[string, Buffer, string]> = [
    ['plain labels', wire('www', 'Example', 'com'), 'www.Example.com'],
    ['the root', wire(), ''],
    ['a dot and a backslash', wire('a.b\\c', 'x'), 'a\\.b\\\\c.x'],
    ['a space, a zero byte, 0x7f and 0xe9', wire('a b\x00\x7f\xe9', 'x'), 'a\\032b\\000\\127\\233.x'],
  ];
  it.each(rows)('%s: one text form and back', (_, bytes, text) => {
    expect(wireToName(bytes, 0)).toEqual({ name: text, bytes: bytes.length });
    expect(nameToWire(text).toString('hex')).toBe(bytes.toString('hex'));
  });

  it('follows a pointer back, counting the bytes up to it', () => {
    const msg = Buffer.concat([wire('x.y', 'example'), Buffer.from([3, 0x77, 0x77, 0x77, 0xc0, 0x00])]);
    expect(wireToName(msg, 13)).toEqual({ name: 'www.x\\.y.example', bytes: 6 });
  });

  it.each([
    ['a pointer forward', Buffer.from([0xc0, 0x02, 0])],
    ['a pointer to itself', Buffer.from([1, 0x61, 0xc0, 0x00])],
    ['a reserved label type', Buffer.from([0x40, 0])],
    ['a name past the end', Buffer.from([5, 0x61])],
    ['a name over 255 bytes', Buffer.concat([...Array.from({ length: 5 }, () => Buffer.concat([Buffer.from([63]), Buffer.alloc(63, 0x61)])), Buffer.from([0])])],
  ])('refuses %s', (_, msg) => {
    expect(() => wireToName(msg, 0)).toThrow(NameError);
  });

  // dns-packet's NAPTR decoder reads its strings past a short record's end and asks for the name at NaN: a loop
  // that never ended before this check (found by the fuzz test).
  it.each([Number.NaN, -1, 1.5])('refuses the offset %s', (offset) => {
    expect(() => wireToName(wire('a'), offset)).toThrow(NameError);
  });
});
