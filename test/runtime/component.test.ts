// A component whose run() fails at start stops the whole process (admin server included) instead of serving
// /readyz 200 with nothing behind it: exit 1, or 2 for a command line it found wrong.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

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
