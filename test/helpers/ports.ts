// A TCP port that was free a moment ago on 127.0.0.1, for tests that must name a port before listening.
import { createServer, type AddressInfo } from 'node:net';

/** Asks the system for a free port on 127.0.0.1 and releases it. */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}
