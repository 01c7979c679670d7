// DNS messages on a stream (TCP, TLS) for the tests' scripted upstreams: each with its two-byte length first.
import type { Socket } from 'node:net';
import dnsPacket from 'dns-packet';

/** Calls `each` with every whole message that arrives on `socket`, in order. */
export function onFrames(socket: Socket, each: (msg: Buffer) => void): void {
  let got = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    got = Buffer.concat([got, chunk]);
    while (got.length >= 2 && got.length >= 2 + got.readUInt16BE(0)) {
      const msg = Buffer.from(got.subarray(2, 2 + got.readUInt16BE(0)));
      got = got.subarray(2 + msg.length);
      each(msg);
    }
  });
}

/** Writes one message, its length first. */
export function writeFrame(socket: Socket, msg: Buffer): void {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(msg.length);
  socket.write(Buffer.concat([len, msg]));
}

/** The reply to a query whose one answer is a TXT record of the question's name. */
export function txtReply(query: Buffer): Buffer {
  const p = dnsPacket.decode(query);
  const name = p.questions![0]!.name;
  return dnsPacket.encode({ type: 'response', id: p.id, flags: dnsPacket.RECURSION_AVAILABLE, questions: p.questions, answers: [{ name, type: 'TXT', ttl: 60, data: name }] });
}
