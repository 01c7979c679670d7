// A component whose run() fails at start stops the whole process (admin server included) instead of serving
// /readyz 200 with nothing behind it: exit 1, or 2 for a command line it found wrong.
import { spawn } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { freePort } from '../helpers/ports.ts';

const script = fileURLToPath(new URL('./failing-component.ts', import.meta.url));
const examples = fileURLToPath(new URL('../../examples/quickstart', import.meta.url));

describe('runComponent when run() fails', () => {
  it.each([
    ['error', 1, /"msg":"netplane failing could not start: the socket could not be made"/],
    ['usage', 2, /^netplane failing: this combination of flags cannot work$/m],
  ] as const)('%s: exits %d and says why', async (how, code, said) => {
    const child = spawn(process.execPath, [script, how, '--manifests', examples], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const exited = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        resolve(null);
      }, 10_000);
      child.once('exit', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    expect(exited, out).toBe(code);
    expect(out).toMatch(said);
  }, 15_000);
});

const listening = fileURLToPath(new URL('./listening-component.ts', import.meta.url));

/** Runs the listening fixture to its end: exit code, stdout, stderr. */
function runListening(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [listening, '--manifests', examples, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('runComponent with listen flags', () => {
  it.each([
    [['--admin', '127.0.0.1:PORT', '--health', '127.0.0.1:PORT'], 'netplane listening: --admin and --health both listen on 127.0.0.1:PORT; give each its own address\n'],
    [['--admin', '127.0.0.1:PORT', '--listen', '127.0.0.1:PORT'], 'netplane listening: --admin and --listen both listen on 127.0.0.1:PORT; give each its own address\n'],
    [['--listen', '127.0.0.1:PORT', '--listen', '127.0.0.1:PORT'], 'netplane listening: --listen gives 127.0.0.1:PORT twice; give each address once\n'],
  ])('refuses %j as clashing flags: one sentence on stderr, exit 2, nothing bound or logged', async (args, message) => {
    const port = await freePort();
    const r = await runListening(args.map((a) => a.replace('PORT', String(port))));
    expect(r).toEqual({ code: 2, stdout: '', stderr: message.replace('PORT', String(port)) });
  }, 15_000);

  it.each([['info'], ['silent']])('ends with one stderr sentence and exit 1 when a listen port is taken by another process (--log-level %s)', async (level) => {
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as AddressInfo).port;
    try {
      const r = await runListening(['--listen', `127.0.0.1:${port}`, '--log-level', level]);
      expect([r.code, r.stderr]).toEqual([1, `netplane listening: cannot listen on 127.0.0.1:${port}: address in use (EADDRINUSE)\n`]);
      if (level === 'silent') expect(r.stdout).toBe('');
    } finally {
      taken.close();
    }
  }, 15_000);
});
