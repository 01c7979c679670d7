// `netplane ingress` as a child process on ports a test names (the e2e harness picks free ones itself), for tests
// that must keep to a given range of ports.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { waitFor } from '../../helpers/wait.ts';
import { GatewayProcess } from '../e2e/harness.ts';

const bin = fileURLToPath(new URL('../../../bin/netplane.ts', import.meta.url));

/** A GatewayProcess whose HTTP, HTTPS and admin ports are `first`, `first + 1` and `first + 2`. */
export class FixedPortGateway extends GatewayProcess {
  readonly #first: number;

  constructor(first: number) {
    super();
    this.#first = first;
  }

  /** Starts the gateway and waits until it is ready and `probe.host` is routed; rejects with its output if it exits. */
  override async start(extraArgs: string[] = [], probe?: { host: string; path?: string }): Promise<void> {
    [this.http, this.https, this.admin] = [this.#first, this.#first + 1, this.#first + 2];
    const args = [bin, 'ingress', ...this.sourceArgs, '--http', `127.0.0.1:${this.http}`, '--https', `127.0.0.1:${this.https}`, '--admin', `127.0.0.1:${this.admin}`, '--node-name', 'test', ...extraArgs];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    child.stdout.on('data', (d) => (this.output += d));
    child.stderr.on('data', (d) => (this.output += d));
    this.exited = new Promise((r) => child.on('exit', (code) => r(code)));
    const died = this.exited.then((code) => Promise.reject(new Error(`the gateway exited (${code}) before it was ready:\n${this.output}`)));
    await Promise.race([waitFor('the gateway to be ready', async () => (await fetch(`http://127.0.0.1:${this.admin}/readyz`)).status === 200, 15_000, 50), died]);
    if (probe) await waitFor(`a route for ${probe.host}`, async () => (await this.get(probe.host, probe.path ?? '/')).status !== 404, 10_000, 50);
  }
}
