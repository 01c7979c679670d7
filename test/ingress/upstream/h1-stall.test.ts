// The HTTP/1.1 upstream client after an event-loop stall longer than its read timeout. Node runs timers before it
// polls for I/O in each turn of its loop; nginx handles ready read events before it expires timers. An answer that
// reached the socket in time, while the loop was stalled, must be read, not failed as a READ_TIMEOUT by a timer that
// happened to run first. The backend runs in a worker thread, whose own loop answers while the test's is stalled.
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkEndings, codeOf, expectOk, poolTo, send } from './h1-harness.ts';

checkEndings();

const port = 64620;

// Answers every request at once, except `/silent`, which it never answers.
const backend = `
const net = require('node:net');
const { parentPort } = require('node:worker_threads');
const server = net.createServer((conn) => {
  let got = '';
  conn.on('data', (d) => {
    got += d.toString('latin1');
    let end;
    while ((end = got.indexOf('\\r\\n\\r\\n')) >= 0) {
      const head = got.slice(0, end);
      got = got.slice(end + 4);
      if (!head.startsWith('GET /silent ')) conn.write('HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok');
    }
  });
  conn.on('error', () => {});
});
server.listen(${port}, '127.0.0.1', () => parentPort.postMessage('listening'));
parentPort.on('message', () => server.close(() => process.exit(0)));
`;

/** Blocks this thread's event loop for `ms`, from the check phase (the ticker's timers run next, before the poll). */
function stallSoon(ms: number): Promise<void> {
  return new Promise((resolve) =>
    setImmediate(() => {
      const until = performance.now() + ms;
      while (performance.now() < until);
      resolve();
    }),
  );
}

describe('h1 client: a read deadline that passed while the event loop stalled', () => {
  let worker: Worker;

  beforeAll(async () => {
    worker = new Worker(backend, { eval: true });
    await new Promise<void>((resolve, reject) => worker.once('message', () => resolve()).once('error', reject));
  });

  afterAll(async () => {
    worker.postMessage('stop');
    await new Promise((r) => worker.once('exit', r));
  });

  it.each([
    // [path, what the request ends with]
    ['/answered', 'none'],
    ['/silent', 'READ_TIMEOUT'],
  ])('%s: %s', async (path, code) => {
    const pool = poolTo(port);
    // A kept-alive connection, so that the request is written at once, before the stall.
    expectOk(await send(pool, { path: '/warm' }));
    const request = send(pool, { path, headersTimeout: 200, bodyTimeout: 200 });
    await stallSoon(500);
    const o = await request;
    expect(codeOf(o)).toBe(code);
    if (code === 'none') expectOk(o);
  });
});
