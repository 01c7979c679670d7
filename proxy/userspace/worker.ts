// A worker thread of the userspace proxy (`threads > 1`): holds its own copy of the shared TCP listeners, bound to
// the same ports with SO_REUSEPORT, so the kernel spreads new connections over the threads. It is told the whole
// desired list after every sync and answers with the listeners it could not open.
import { parentPort, workerData } from 'node:worker_threads';
import type { ListenerSpec } from './listeners.ts';
import { TcpListener } from './tcp.ts';
import type { WorkerReply, WorkerRequest, WorkerSettings } from './workers.ts';

const settings = workerData as WorkerSettings;
const port = parentPort!;
const listeners = new Map<string, TcpListener>();

async function apply(specs: ListenerSpec[]): Promise<Array<{ key: string; error: string }>> {
  const desired = new Map(specs.map((s) => [s.key, s]));
  for (const [key, l] of listeners) {
    const want = desired.get(key);
    if (!want || want.port !== l.spec.port) {
      await l.close();
      listeners.delete(key);
    }
  }
  const failures: Array<{ key: string; error: string }> = [];
  await Promise.all(
    specs.map(async (spec) => {
      const have = listeners.get(spec.key);
      if (have) return have.update(spec);
      const l = new TcpListener(spec, {
        host: settings.host,
        reusePort: true,
        connectTimeoutMs: settings.connectTimeoutMs,
        nativeRelay: settings.nativeRelay,
        onError: (err) => port.postMessage({ kind: 'error', key: spec.key, error: err.message } satisfies WorkerReply),
      });
      try {
        await l.listen();
        listeners.set(spec.key, l);
      } catch (e) {
        failures.push({ key: spec.key, error: (e as NodeJS.ErrnoException).code ?? (e as Error).message });
      }
    }),
  );
  return failures;
}

// Requests are handled one after another, in the order sent.
let queue = Promise.resolve();
port.on('message', (req: WorkerRequest) => {
  queue = queue.then(async () => {
    if (req.kind === 'close') {
      await Promise.all([...listeners.values()].map((l) => l.destroy()));
      listeners.clear();
      port.postMessage({ kind: 'done', id: req.id, failures: [] } satisfies WorkerReply);
      return;
    }
    const failures = await apply(req.specs);
    port.postMessage({ kind: 'done', id: req.id, failures } satisfies WorkerReply);
  });
});
