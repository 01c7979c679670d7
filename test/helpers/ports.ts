// A port that was free a moment ago on 127.0.0.1, for tests that must name a port before a child process listens.
//
// Ports come from below the kernel's ephemeral range (32768–60999 by default), so nothing that binds port 0 or makes
// an outgoing connection can take one between this check and the child's bind. Each vitest worker (VITEST_POOL_ID)
// has its own block, and a worker walks its block from a random start without handing out a port twice (two test
// runs at once on one machine then rarely meet).
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';

const FIRST = 20_000;
const BLOCK = 1_500;
const pool = Number(process.env.VITEST_POOL_ID ?? process.pid) % 8;
let next = Math.floor(Math.random() * BLOCK);

async function tcpFree(port: number): Promise<boolean> {
  const s = createServer();
  const ok = await new Promise<boolean>((r) => {
    s.once('error', () => r(false));
    s.listen(port, '127.0.0.1', () => r(true));
  });
  if (ok) await new Promise((r) => s.close(r));
  return ok;
}

async function udpFree(port: number): Promise<boolean> {
  const s = createSocket('udp4');
  const ok = await new Promise<boolean>((r) => {
    s.once('error', () => r(false));
    s.bind(port, '127.0.0.1', () => r(true));
  });
  await new Promise<void>((r) => s.close(() => r()));
  return ok;
}

/** A port in this worker's block that is free on 127.0.0.1 for both TCP and UDP. */
export async function freePort(): Promise<number> {
  for (let tries = 0; tries < BLOCK; tries++) {
    const port = FIRST + pool * BLOCK + (next++ % BLOCK);
    if ((await tcpFree(port)) && (await udpFree(port))) return port;
  }
  throw new Error(`no free port in ${FIRST + pool * BLOCK}–${FIRST + (pool + 1) * BLOCK - 1}`);
}
