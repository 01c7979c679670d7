// Parsing manifest files off the main thread. The YAML parser takes about a second per MiB here (10,000 Services
// with their EndpointSlices are some 8 MiB): on the main thread that long, a component answers nothing, neither DNS
// nor /healthz. Small files are parsed in place; larger ones in a worker thread, started when first needed and
// stopped when idle, so that its memory (the parsed YAML is some 50 times the text) goes back.
import { Worker, type ResourceLimits } from 'node:worker_threads';
import type { Kind } from '../model/index.ts';
import { parseManifestText, type ParsedFile } from './parse.ts';

/** Main thread → parser thread: one file to parse, as read (UTF-8). */
export interface ParseRequest {
  id: number;
  file: string;
  bytes: Uint8Array;
  kinds: Kind[];
}

/** Parser thread → main thread: the file's outcome, or why the thread could not give one. */
export type ParseReply = { id: number; parsed: ParsedFile } | { id: number; error: string };

/** The parser thread stopped, or failed, before it answered for a file. */
export class ParserThreadError extends Error {
  override readonly name = 'ParserThreadError';
  readonly code = 'NETPLANE_MANIFEST_PARSER_THREAD';
}

/** Options of a ManifestParser. */
export interface ManifestParserOptions {
  /** Files shorter than this many bytes are parsed on the calling thread (about 30 ms here). Default 32 KiB. */
  inlineBytes?: number;
  /**
   * The thread is stopped after this long without a file to parse. Default 5 s: a thread that has parsed 8 MiB holds
   * about 90 MiB until it stops, and starting one again costs tens of milliseconds.
   */
  idleMs?: number;
  /**
   * The thread's V8 limits (Node's defaults when absent): a file that needs more heap ends the thread, not the
   * process. How deep YAML may nest does not depend on the stack (parse.ts maxYamlDepth).
   */
  resourceLimits?: ResourceLimits;
}

interface Pending {
  resolve: (parsed: ParsedFile) => void;
  reject: (err: Error) => void;
}

/** Parses manifest files as parseManifestText does, large ones on a worker thread. */
export class ManifestParser {
  readonly #inlineBytes: number;
  readonly #idleMs: number;
  readonly #resourceLimits: ResourceLimits;
  #worker?: Worker;
  #pending = new Map<number, Pending>();
  #seq = 0;
  #idle?: NodeJS.Timeout;
  #closed = false;

  constructor(options: ManifestParserOptions = {}) {
    this.#inlineBytes = options.inlineBytes ?? 32 * 1024;
    this.#idleMs = options.idleMs ?? 5_000;
    this.#resourceLimits = { ...options.resourceLimits };
  }

  /** Whether a file of this many bytes is parsed in place (at once) rather than on the thread. */
  inline(bytes: number): boolean {
    return bytes < this.#inlineBytes;
  }

  /** Whether a parser thread is running now. */
  get threadRunning(): boolean {
    return this.#worker !== undefined;
  }

  /**
   * The objects of a file's bytes, decoded as UTF-8 (see parseManifestText); decoding is left to the thread too. Rejects with ParserThreadError when the parser thread exits or
   * fails before answering (then the next file gets a new thread), or after close.
   */
  parse(file: string, bytes: Uint8Array, kinds: ReadonlySet<Kind>): Promise<ParsedFile> {
    if (this.#closed) return Promise.reject(new ParserThreadError('the manifest parser is closed'));
    if (bytes.length < this.#inlineBytes) return Promise.resolve(parseManifestText(file, decode(bytes), kinds));
    clearTimeout(this.#idle);
    const worker = this.#worker ?? this.#start();
    worker.ref();
    const id = ++this.#seq;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      // Copied, not transferred: a small Buffer shares its memory with others.
      worker.postMessage({ id, file, bytes, kinds: [...kinds] } satisfies ParseRequest);
    });
  }

  /** Stops the thread; a parse still waiting for it rejects. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#idle);
    const worker = this.#worker;
    this.#forget(new ParserThreadError('the manifest parser was closed before it answered'));
    await worker?.terminate();
  }

  #start(): Worker {
    const worker = new Worker(new URL('./parser-worker.ts', import.meta.url), { name: 'netplane-manifests', resourceLimits: this.#resourceLimits });
    this.#worker = worker;
    worker.on('message', (reply: ParseReply) => {
      const p = this.#pending.get(reply.id);
      this.#pending.delete(reply.id);
      if ('parsed' in reply) p?.resolve(reply.parsed);
      else p?.reject(new ParserThreadError(`the manifest parser thread failed: ${reply.error}`));
      if (this.#pending.size === 0 && this.#worker === worker) this.#rest(worker);
    });
    // A reply that cannot be read (it never happens with plain data) must not leave a parse waiting forever.
    worker.on('messageerror', (err) => {
      if (this.#worker === worker) this.#forget(new ParserThreadError(`the manifest parser thread's reply could not be read: ${err.message}`, { cause: err }));
      void worker.terminate();
    });
    worker.on('error', (err) => {
      if (this.#worker === worker) this.#forget(new ParserThreadError(`the manifest parser thread failed: ${err.message}`, { cause: err }));
    });
    worker.on('exit', (code) => {
      if (this.#worker === worker) this.#forget(new ParserThreadError(`the manifest parser thread exited (code ${code})`));
    });
    return worker;
  }

  /** No file waits: the thread no longer keeps the process alive, and stops if it stays idle. */
  #rest(worker: Worker): void {
    worker.unref();
    this.#idle = setTimeout(() => {
      this.#forget(new ParserThreadError('the manifest parser thread stopped when idle'));
      void worker.terminate();
    }, this.#idleMs);
    this.#idle.unref();
  }

  /** Drops the current thread, rejecting what waits for it. */
  #forget(err: Error): void {
    this.#worker = undefined;
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) p.reject(err);
  }
}

/** A file's bytes as text, as `readFile(path, 'utf8')` gives it (bad sequences become U+FFFD). */
export function decode(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
}
