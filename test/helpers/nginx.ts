// Real nginx (Debian's nginx-light, in .ci/packages) beside the gateway, for tests that compare with it: one process
// without a master, in the foreground, its files in the test's own directory, stopped with SIGTERM.
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { waitFor } from './wait.ts';

/** A running nginx. */
export interface TestNginx {
  stop(): void;
}

/**
 * Writes `dir`/nginx.conf with `servers` (server blocks) in its http block, starts nginx on it and waits until
 * `ready` says it answers. Throws when nginx is not installed or does not get ready (it is stopped then).
 */
export async function startNginx(dir: string, servers: string, ready: () => Promise<boolean>): Promise<TestNginx> {
  writeFileSync(
    join(dir, 'nginx.conf'),
    `daemon off; master_process off; worker_processes 1; pid ${dir}/nginx.pid; error_log ${dir}/error.log;
events {}
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fastcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
${servers}}
`,
  );
  const bin = spawnSync('sh', ['-c', 'command -v nginx'], { encoding: 'utf8' }).stdout.trim();
  if (bin === '') throw new Error('nginx is not installed (Debian package nginx-light, in .ci/packages)');
  const child = spawn(bin, ['-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: 'ignore' });
  try {
    await waitFor('nginx to listen', ready, 10_000, 50);
  } catch (e) {
    child.kill('SIGTERM');
    throw e;
  }
  return { stop: () => void child.kill('SIGTERM') };
}
