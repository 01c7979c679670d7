// limit-rate and limit-rate-after through `netplane ingress`, over real HTTP/1.1 and HTTP/2 (curl): a response body
// comes no faster than nginx's limit_rate allows (the first part at once, then the rate: (size - after) / rate), whole
// and in order; an Ingress without the annotations is not slowed; a client leaving a paced download is logged as
// such and frees the gateway. Only a lower bound on time is asserted: a slow machine makes nothing fail.
import { execFile } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { promisify } from 'node:util';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../helpers/wait.ts';
import { EchoBackend, GatewayProcess, ingressClassYaml, ingressYaml, serviceYaml } from './harness.ts';

const ngx = 'nginx.ingress.kubernetes.io/';
const run = promisify(execFile);

/** 256 KiB that are not all alike, so that a reordered or cut body shows. */
const body = Buffer.alloc(256 * 1024);
for (let i = 0; i < body.length; i++) body[i] = (i * 7 + (i >> 10)) & 0xff;
const digest = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('limit-rate and limit-rate-after', () => {
  const web = new EchoBackend('web');
  const gw = new GatewayProcess();
  /** The access-log lines of `path` at `host` so far (they reach the gateway's output a moment after the response). */
  const accessLines = (path: string, host: string) =>
    gw.output
      .split('\n')
      .filter((l) => l.startsWith('{') && l.includes('"access":true'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((r) => r.path === path && r.host === host);

  beforeAll(async () => {
    web.handler = (req, res) => {
      if (req.url !== '/big' && req.url !== '/big2' && req.url !== '/small') return false;
      const b = req.url === '/small' ? body.subarray(0, 20 * 1024) : body;
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(b.length) });
      res.end(b);
      return true;
    };
    await web.start();
    const ing = (name: string, annotations: Record<string, string>) => ingressYaml({ name, host: `${name}.test`, paths: [['Prefix', '/', 'web']], annotations });
    gw.write(
      'all.yaml',
      [ingressClassYaml, serviceYaml('web', [web]), ing('slow', { [`${ngx}limit-rate`]: '64', [`${ngx}limit-rate-after`]: '64' }), ing('fast', {}), ing('zero', { [`${ngx}limit-rate`]: '0', [`${ngx}limit-rate-after`]: '100' }), ing('tiny', { [`${ngx}limit-rate`]: '4' })].join('---\n'),
    );
    await gw.start([], { host: 'fast.test' });
  }, 30_000);

  afterAll(async () => {
    await gw.stop();
    await web.stop();
  });

  /** curl's download of `path` at `host`: the body's digest and the seconds it took. */
  const curl = async (host: string, path: string, ...extra: string[]) => {
    const t0 = performance.now();
    const { stdout } = await run('curl', ['-sS', '--fail', ...extra, '-H', `Host: ${host}`, `http://127.0.0.1:${gw.http}${path}`], { encoding: 'buffer', maxBuffer: 4 << 20 });
    return { digest: digest(stdout), seconds: (performance.now() - t0) / 1000 };
  };

  it('paces a 256 KiB body at 64 KiB/s after 64 KiB: whole, and no sooner than nginx would (3 s)', async () => {
    const got = await curl('slow.test', '/big');
    expect(got.digest).toBe(digest(body));
    // 64 KiB at once, then 64 KiB/s: (256 - 64) / 64 = 3 s, as nginx 1.22 takes for the same body.
    expect(got.seconds).toBeGreaterThan(2.8);
    await waitFor('the access-log line', () => accessLines('/big', 'slow.test').length === 1, 5000, 20);
    expect(accessLines('/big', 'slow.test')[0]).toMatchObject({ status: 200 });
    expect(accessLines('/big', 'slow.test')[0]?.error).toBeUndefined();
  });

  it('paces HTTP/2 (over TLS, the default certificate) the same way', async () => {
    const t0 = performance.now();
    const { stdout } = await run('curl', ['-sS', '--fail', '-k', '--http2', '--resolve', `slow.test:${gw.https}:127.0.0.1`, '-w', '%{http_version}', '-o', '-', `https://slow.test:${gw.https}/big2`], { encoding: 'buffer', maxBuffer: 4 << 20 });
    const got = { digest: digest(stdout.subarray(0, body.length)), seconds: (performance.now() - t0) / 1000 };
    expect(stdout.subarray(body.length).toString()).toBe('2');
    expect(got.digest).toBe(digest(body));
    expect(got.seconds).toBeGreaterThan(2.8);
  });

  it('does not slow an Ingress without it, nor one with limit-rate 0', async () => {
    for (const host of ['fast.test', 'zero.test']) expect((await curl(host, '/big')).digest).toBe(digest(body));
  });

  // 20 KiB at 4 KiB/s: the backend's whole answer is in before the client has a fifth of it, so the response's end
  // waits for the pacer when the client leaves.
  it('logs a client that leaves a paced download as gone, also once the backend has answered whole, and keeps serving', async () => {
    const before = accessLines('/small', 'tiny.test').length;
    await new Promise<void>((resolve) => {
      const req = httpRequest({ host: '127.0.0.1', port: gw.http, path: '/small', headers: { host: 'tiny.test' }, agent: false }, (res) => {
        res.once('data', () => setTimeout(() => req.destroy(), 200));
      });
      req.on('error', () => {});
      req.on('close', () => resolve());
      req.end();
    });
    await waitFor('the access-log line', () => accessLines('/small', 'tiny.test').length === before + 1, 3000, 20);
    expect(accessLines('/small', 'tiny.test').at(-1)).toMatchObject({ status: 200, error: 'CLIENT_ABORTED' });
    expect((await curl('fast.test', '/big')).digest).toBe(digest(body));
  });
});
