// The set-up the custom-http-errors e2e tests share: a gateway on fixed ports, a backend `web` whose answers the test
// sets, and an error backend `errors` that echoes the request it is asked (an Echo, as JSON) with the status it picks.
import type { IncomingMessage } from 'node:http';
import { afterAll } from 'vitest';
import { EchoBackend, type Echo } from '../e2e/harness.ts';
import { FixedPortGateway } from './fixed-ports.ts';

/** The gateway, its backends and how to start the backends. */
export interface CustomErrorsFixture {
  readonly web: EchoBackend;
  readonly errors: EchoBackend;
  readonly gw: FixedPortGateway;
  /** Starts `web` on port `first + 3` and `errors` on `first + 4` of 127.0.0.1. */
  listen(): Promise<void>;
}

/**
 * Makes the gateway on ports `first` … `first + 2` and the two backends, `errors` answering with `status(req)` and the
 * request echoed; stops all three after the describe block's tests.
 */
export function customErrorsFixture(first: number, status: (req: IncomingMessage) => number): CustomErrorsFixture {
  const web = new EchoBackend('web');
  const errors = new EchoBackend('errors');
  const gw = new FixedPortGateway(first);
  errors.handler = (req, res) => {
    const echo: Echo = { backend: 'errors', method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: '' };
    res.writeHead(status(req), { 'content-type': 'application/json' }).end(JSON.stringify(echo));
    return true;
  };
  afterAll(async () => {
    await gw.stop();
    await web.stop();
    await errors.stop();
  });
  return {
    web,
    errors,
    gw,
    async listen() {
      await new Promise<void>((r) => web.server.listen(first + 3, '127.0.0.1', r));
      await new Promise<void>((r) => errors.server.listen(first + 4, '127.0.0.1', r));
      [web.port, errors.port] = [first + 3, first + 4];
    },
  };
}
