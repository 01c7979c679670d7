import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { greeting } from '../../examples/backend.ts';
import { supervisedEnv } from '../../runtime/supervisor.ts';
import { freePort } from '../helpers/ports.ts';
import { waitFor } from '../helpers/wait.ts';

const script = fileURLToPath(new URL('../../examples/backend.ts', import.meta.url));

describe('the example backend', () => {
  it('answers with one line naming itself and the request', () => {
    const rows: Array<[string, string, Record<string, string>, string]> = [
      ['GET', '/', { host: 'web.localhost' }, 'hello from web-1 (127.0.0.1:8081): GET / host web.localhost\n'],
      ['POST', '/api/x?y=1', {}, 'hello from web-1 (127.0.0.1:8081): POST /api/x?y=1 host -\n'],
    ];
    for (const [method, url, headers, want] of rows) expect(greeting('web-1', '127.0.0.1:8081', { method, url, headers })).toBe(want);
  });

  it('serves, logs each request, and stops on SIGTERM, or when its supervisor closes stdin', async () => {
    for (const how of ['SIGTERM', 'stdin'] as const) {
      const port = await freePort();
      const child = spawn(process.execPath, [script, '--name', 'web-9', '--listen', `127.0.0.1:${port}`], {
        stdio: ['pipe', 'pipe', 'pipe'],
        env: { ...process.env, [supervisedEnv]: '1' },
      });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
      try {
        await waitFor('listening', () => out.includes('listening'), 10_000);
        const body = await (await fetch(`http://127.0.0.1:${port}/x`)).text();
        expect(body).toBe(`hello from web-9 (127.0.0.1:${port}): GET /x host 127.0.0.1:${port}\n`);
        // The log line is written after the answer is sent: it may arrive just after the body.
        const logged = new RegExp(`^GET /x host 127.0.0.1:${port} from 127.0.0.1:\\d+$`, 'm');
        await waitFor('the request in the log', () => logged.test(out), 5000);
        if (how === 'SIGTERM') child.kill('SIGTERM');
        else child.stdin.end();
        expect(await exited).toBe(0);
      } finally {
        child.kill('SIGKILL');
      }
    }
  });

  it('exits 2 with one sentence for a wrong --listen', () => {
    const r = spawnSync(process.execPath, [script, '--listen', 'nowhere'], { encoding: 'utf8', timeout: 10_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toBe('examples/backend.ts: --listen "nowhere": must be ADDR:PORT with an IP address (or localhost), e.g. 127.0.0.1:9153 or [::1]:9153\n');
  });
});
