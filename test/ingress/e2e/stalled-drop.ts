// HTTP/2 clients that stop reading and then vanish while the gateway's write to them is pending, run in a worker
// thread: 130 TLS sessions, their relays and their decryption on the test's own event loop delayed the test's
// backends there by seconds on a loaded 2-core machine, past a route's proxy-read-timeout (the gateway then rightly
// answered 504, and the client waited for a body that never came).
import { connect as h2Connect } from 'node:http2';
import { connect as tcpConnect, createServer as createTcpServer, type AddressInfo } from 'node:net';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

/** What a worker is asked: `count` stalled drops of `path` on the gateway's HTTPS port, for `authority`. */
interface Job {
  kind: 'stalled-drop';
  port: number;
  authority: string;
  path: string;
  count: number;
}

/**
 * An HTTP/2 request through a TCP relay that stops reading from the gateway once the body flows (a client reading
 * slowly, as curl --limit-rate) and then resets both connections (the client exits): the gateway's socket write is
 * pending when the peer goes, which Node's HTTP/2 session does not notice (it stops reading while writing). Rejects,
 * saying what came instead, when the answer is not a 200 whose body flows past 256 KiB.
 */
export async function h2StalledDrop(port: number, authority: string, path: string): Promise<void> {
  let dropped!: () => void;
  let failed!: (e: Error) => void;
  const gone = new Promise<void>((resolve, reject) => ((dropped = resolve), (failed = reject)));
  let stalled = false;
  const relay = createTcpServer((client) => {
    const gwSide = tcpConnect(port, '127.0.0.1');
    client.pipe(gwSide);
    let bytes = 0;
    gwSide.on('data', (d: Buffer) => {
      bytes += d.length;
      client.write(d);
      if (bytes > 256 * 1024 && !stalled) {
        stalled = true;
        gwSide.pause();
        setTimeout(() => (gwSide.resetAndDestroy(), client.destroy(), dropped()), 300);
      }
    });
    gwSide.on('error', () => {});
    client.on('error', () => {});
  });
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
  const session = h2Connect(`https://127.0.0.1:${(relay.address() as AddressInfo).port}`, { servername: authority, rejectUnauthorized: false, settings: { initialWindowSize: 2 ** 31 - 1 } });
  session.on('error', (e) => stalled || failed(new Error(`the session failed before the body flowed: ${e.message}`)));
  session.on('connect', () => session.setLocalWindowSize(2 ** 31 - 1));
  const req = session.request({ ':authority': authority, ':path': path });
  req.on('response', (h) => h[':status'] === 200 || failed(new Error(`got ${h[':status']} instead of a body that flows`)));
  req.on('error', (e) => stalled || failed(new Error(`the request failed before the body flowed: ${e.message}`)));
  req.on('close', () => stalled || failed(new Error('the response ended before 256 KiB came')));
  req.resume();
  req.end();
  try {
    await gone;
  } finally {
    session.destroy();
    relay.close();
  }
}

/** Runs `count` h2StalledDrop at once in a worker thread; rejects with the first failure. */
export function stalledDropsInWorker(port: number, authority: string, path: string, count: number): Promise<void> {
  const job: Job = { kind: 'stalled-drop', port, authority, path, count };
  const worker = new Worker(new URL(import.meta.url), { workerData: job });
  return new Promise<void>((resolve, reject) => {
    worker.once('message', (m: { error?: string }) => (m.error === undefined ? resolve() : reject(new Error(m.error))));
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`the client worker exited (${code}) without a result`)));
    // After a failure the other clients may still wait: they go with the worker.
  }).finally(() => void worker.terminate());
}

if (!isMainThread && (workerData as Job | undefined)?.kind === 'stalled-drop') {
  const job = workerData as Job;
  Promise.all(Array.from({ length: job.count }, () => h2StalledDrop(job.port, job.authority, job.path))).then(
    () => parentPort!.postMessage({}),
    (e: Error) => parentPort!.postMessage({ error: e.message }),
  );
}
