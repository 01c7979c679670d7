// The nftables backend's netlink socket for set elements, opened inside a lab namespace: tests and benchmarks run
// the backend in their own process (in the host's namespace) and nft inside the namespace, so the socket must be
// there too. A child process started in the namespace (nft-elements-child.ts) holds it and applies the batches
// it is sent, one JSON line each way per apply; the cost of that hop is a copy of the batch.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Family } from '../proxy/nftables/model.ts';
import type { Batch } from '../proxy/nftables/netlink/batch.ts';
import type { RawElement } from '../proxy/nftables/netlink/dump.ts';
import { NftNetlinkError, type ElementChannel } from '../proxy/nftables/netlink/socket.ts';

const childScript = fileURLToPath(new URL('./nft-elements-child.ts', import.meta.url));

/** A RawElement on the pipe: its buffers in base64. */
export type WireElement = { key: string; data?: string; verdict?: { code: number; chain?: string }; flags: number };
type Answer = { ready: number } | { ok: true } | { elements: WireElement[] } | { error: string; errno: string };

/** An ElementChannel whose socket lives in network namespace `ns`. */
export class NamespacedElementChannel implements ElementChannel {
  readonly maxBatchBytes: number;
  #child: ChildProcess;
  #answers: Array<(a: Answer) => void> = [];
  #kill: () => void;

  private constructor(child: ChildProcess, maxBatchBytes: number, answers: Array<(a: Answer) => void>, kill: () => void) {
    this.#child = child;
    this.maxBatchBytes = maxBatchBytes;
    this.#answers = answers;
    this.#kill = kill;
  }

  /** Starts the child in `ns`; rejects when it cannot open its socket. */
  static async open(ns: string): Promise<NamespacedElementChannel> {
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, childScript], { stdio: ['pipe', 'pipe', 'inherit'] });
    const kill = () => child.kill('SIGKILL');
    process.once('exit', kill);
    const answers: Array<(a: Answer) => void> = [];
    createInterface({ input: child.stdout! }).on('line', (line) => answers.shift()?.(JSON.parse(line) as Answer));
    child.once('exit', () => {
      for (const a of answers.splice(0)) a({ error: 'the netlink child exited', errno: 'EPIPE' });
    });
    const first = await new Promise<Answer>((resolve) => answers.push(resolve));
    if ('error' in first) throw new NftNetlinkError(first.error, first.errno);
    if (!('ready' in first)) throw new Error('the netlink child answered before it was asked');
    return new NamespacedElementChannel(child, first.ready, answers, kill);
  }

  async apply(batches: readonly Batch[], describe: (seq: number) => string): Promise<void> {
    const names = Object.fromEntries(batches.flatMap((b) => [b.begin, ...b.seqs]).map((s) => [s, describe(s)]));
    await this.#ask({ batches: batches.map((b) => ({ ...b, bytes: b.bytes.toString('base64') })), names });
  }

  async readElements(family: Family, set: string): Promise<RawElement[]> {
    const a = await this.#ask({ read: { family, set } });
    if (!('elements' in a)) throw new Error('the netlink child answered a read without elements');
    return a.elements.map(({ key, data, verdict, flags }) => ({ key: Buffer.from(key, 'base64'), flags, ...(data === undefined ? {} : { data: Buffer.from(data, 'base64') }), ...(verdict ? { verdict } : {}) }));
  }

  async #ask(message: unknown): Promise<Answer> {
    const answer = new Promise<Answer>((resolve) => this.#answers.push(resolve));
    this.#child.stdin!.write(JSON.stringify(message) + '\n');
    const a = await answer;
    if ('error' in a) throw new NftNetlinkError(a.error.replace(/: E[A-Z0-9]+$/, ''), a.errno);
    return a;
  }

  close(): void {
    this.#kill();
    process.off('exit', this.#kill);
  }
}
