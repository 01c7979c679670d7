// Run by lab/nft-elements.ts inside a namespace: holds the netfilter netlink socket there, applies the batches and
// answers the reads sent on stdin (one JSON line each), one JSON line each on stdout.
import { createInterface } from 'node:readline';
import { NetfilterSocket, NftNetlinkError } from '../proxy/nftables/netlink/socket.ts';

let socket: NetfilterSocket;
try {
  socket = new NetfilterSocket();
} catch (e) {
  process.stdout.write(JSON.stringify({ error: (e as Error).message, errno: (e as NftNetlinkError).errno ?? 'EIO' }) + '\n');
  process.exit(1);
}
process.stdout.write(JSON.stringify({ ready: socket.maxBatchBytes }) + '\n');
const lines = createInterface({ input: process.stdin });
lines.on('close', () => socket.close());
// One at a time, in order: the parent waits for each answer before it sends the next.
let chain = Promise.resolve();
lines.on('line', (line) => {
  chain = chain.then(async () => {
    const m = JSON.parse(line) as
      | { batches: Array<{ bytes: string; seqs: number[]; ops: number[]; begin: number }>; names: Record<string, string> }
      | { read: { family: 4 | 6; set: string } };
    try {
      if ('read' in m) {
        const elements = await socket.readElements(m.read.family, m.read.set);
        const wire = elements.map((e) => ({ ...e, key: e.key.toString('base64'), ...(e.data === undefined ? {} : { data: e.data.toString('base64') }) }));
        process.stdout.write(JSON.stringify({ elements: wire }) + '\n');
        return;
      }
      await socket.apply(m.batches.map((b) => ({ ...b, bytes: Buffer.from(b.bytes, 'base64') })), (seq) => m.names[seq] ?? `message ${seq}`);
      process.stdout.write('{"ok":true}\n');
    } catch (e) {
      process.stdout.write(JSON.stringify({ error: (e as Error).message, errno: (e as NftNetlinkError).errno ?? 'EIO' }) + '\n');
    }
  });
});
