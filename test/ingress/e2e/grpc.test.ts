// gRPC through `netplane ingress` as users run it: a real gRPC client (@grpc/grpc-js) over TLS and HTTP/2 to the
// gateway's HTTPS listener, Ingresses with backend-protocol GRPC (ingress-nginx spelling) and GRPCS (netplane.io
// spelling) in front of real gRPC servers, beside plain HTTP Ingresses — one of them on the same host.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect as h2Connect, createServer as createH2Server, type Http2Session, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../helpers/wait.ts';
import { makeCert, type Pems } from '../tls/pki.ts';
import { call, echoClient, failure, startEchoServer, type EchoServer } from '../upstream/grpc-service.ts';
import { b64, EchoBackend, GatewayProcess, ingressClassYaml, ingressYaml, serviceYaml, tlsSecretYaml } from './harness.ts';

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ngx = 'nginx.ingress.kubernetes.io/';
const np = 'netplane.io/';
const hosts = ['grpc.test', 'grpcs.test', 'verified.test', 'wrongca.test', 'empty.test', 'mixed.test', 'small.test', 'smalls.test', 'late.test'];

describe('netplane ingress with gRPC backends', () => {
  const gw = new GatewayProcess();
  const web = new EchoBackend('web');
  let clear: EchoServer;
  let secure: EchoServer;
  let ca: Pems;
  const clients: grpc.Client[] = [];
  // A bare HTTP/2 backend in clear that takes nothing of a request body for its first 1.5 s, then reads it, and never
  // answers: the RST_STREAM code of each stream that closes is recorded.
  const late = createH2Server();
  const lateSessions = new Set<Http2Session>();
  const lateResets: number[] = [];
  let lateReading = 0;

  /** A gRPC client to the gateway's HTTPS listener for `host` (SNI and :authority). */
  function client(host: string): grpc.Client {
    const c = echoClient(`127.0.0.1:${gw.https}`, { ca: ca.cert, host });
    clients.push(c);
    return c;
  }

  /** The access-log records of the gateway for `host` and `path`. */
  function accessLines(host: string, path: string): Array<Record<string, unknown>> {
    return gw.output
      .split('\n')
      .filter((l) => l.startsWith('{') && l.includes('"access":true'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((r) => r.host === host && r.path === path);
  }

  /**
   * Watches the gateway's RSS from the test: `peak()` is its largest growth since the call. Past 300 MB of growth the
   * gateway is killed, so that a run that fails this way does not eat the machine.
   */
  function watchMemory(): { stop(): void; peak(): number } {
    const pid = gw.child!.pid!;
    const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
    const base = rss();
    let peak = base;
    const timer = setInterval(() => {
      try {
        peak = Math.max(peak, rss());
        if (peak > base + 300e6) gw.child!.kill('SIGKILL');
      } catch {
        clearInterval(timer);
      }
    }, 5);
    return { stop: () => clearInterval(timer), peak: () => peak - base };
  }

  beforeAll(async () => {
    ca = await makeCert('Gateway CA', ['ca.test'], { isCa: true });
    const backendCa = await makeCert('Backend CA', ['backend-ca.test'], { isCa: true });
    const backendCert = await makeCert('grpc backend', ['grpcs-backend.internal'], { ca: backendCa });
    late.on('session', (x) => (lateSessions.add(x), x.once('close', () => lateSessions.delete(x))));
    late.on('stream', (stream: ServerHttp2Stream) => {
      stream.on('error', () => {});
      stream.on('close', () => lateResets.push(stream.rstCode));
      stream.pause();
      setTimeout(() => (lateReading++, stream.resume()), 1500);
    });
    await new Promise<void>((r) => late.listen(0, '127.0.0.1', r));
    clear = await startEchoServer('clear');
    secure = await startEchoServer('secure', backendCert);
    await web.start();
    const caSecret = (name: string, p: Pems) => `---\napiVersion: v1\nkind: Secret\nmetadata: { name: ${name}, namespace: default }\ntype: Opaque\ndata: { ca.crt: ${b64(p.cert)} }\n`;
    const verify = (secret: string) => ({ [`${ngx}proxy-ssl-verify`]: 'on', [`${ngx}proxy-ssl-secret`]: secret, [`${ngx}proxy-ssl-name`]: 'grpcs-backend.internal' });
    const grpcIngress = (name: string, host: string, service: string, annotations: Record<string, string>, path = '/') =>
      ingressYaml({ name, host, paths: [['Prefix', path, service]], annotations, tlsSecret: 'grpc-tls' });
    gw.write(
      'all.yaml',
      [
        ingressClassYaml,
        serviceYaml('clear', [{ port: clear.port } as EchoBackend]),
        // A Service port is spoken to as the first Ingress naming it asks (per Service port, not per route): the
        // verified and the wrongly verified route each have their own Service for the one TLS backend.
        ...['secure', 'secure-verified', 'secure-wrongca'].map((name) => serviceYaml(name, [{ port: secure.port } as EchoBackend])),
        serviceYaml('nothing', []),
        serviceYaml('late', [{ port: (late.address() as AddressInfo).port } as EchoBackend]),
        serviceYaml('web', [web]),
        tlsSecretYaml('grpc-tls', await makeCert('grpc hosts', hosts, { ca })),
        caSecret('backend-ca', backendCa),
        caSecret('gateway-ca', ca),
        grpcIngress('grpc', 'grpc.test', 'clear', { [`${ngx}backend-protocol`]: 'GRPC' }),
        grpcIngress('grpcs', 'grpcs.test', 'secure', { [`${np}backend-protocol`]: 'grpcs' }),
        grpcIngress('verified', 'verified.test', 'secure-verified', { [`${ngx}backend-protocol`]: 'GRPCS', ...verify('backend-ca') }),
        grpcIngress('wrongca', 'wrongca.test', 'secure-wrongca', { [`${ngx}backend-protocol`]: 'GRPCS', ...verify('gateway-ca') }),
        grpcIngress('empty', 'empty.test', 'nothing', { [`${ngx}backend-protocol`]: 'GRPC' }),
        grpcIngress('late', 'late.test', 'late', { [`${ngx}backend-protocol`]: 'GRPC', [`${ngx}proxy-read-timeout`]: '1' }),
        grpcIngress('small', 'small.test', 'clear', { [`${ngx}backend-protocol`]: 'GRPC', [`${ngx}proxy-body-size`]: '100k' }),
        grpcIngress('smalls', 'smalls.test', 'secure', { [`${ngx}backend-protocol`]: 'GRPCS', [`${ngx}proxy-body-size`]: '100k' }),
        // One host, two Ingresses: gRPC for the service's methods, plain HTTP for the rest.
        grpcIngress('mixed-grpc', 'mixed.test', 'clear', { [`${ngx}backend-protocol`]: 'GRPC' }, '/netplane.test.Echo/'),
        ingressYaml({ name: 'mixed-web', host: 'mixed.test', paths: [['Prefix', '/', 'web']] }),
        ingressYaml({ name: 'web', host: 'web.test', paths: [['Prefix', '/', 'web']] }),
      ].join('---\n'),
    );
    await gw.start([], { host: 'web.test' });
  }, 30_000);

  afterAll(async () => {
    for (const c of clients) c.close();
    await gw.stop();
    for (const x of lateSessions) x.destroy();
    await Promise.all([clear?.stop(), secure?.stop(), web.stop(), new Promise((r) => late.close(r))]);
  });

  it.each([
    ['GRPC (h2c to the backend)', 'grpc.test', 'clear'],
    ['GRPCS (TLS to the backend, not verified)', 'grpcs.test', 'secure'],
    ['GRPCS with proxy-ssl-verify', 'verified.test', 'secure'],
  ])('%s: unary, server-, client- and bidi-streaming calls with metadata both ways', async (_what, host, name) => {
    const c = client(host);
    const unary = await call(c, 'Unary', ['hi'], { metadata: { 'x-client': 'from-client', 'x-blob-bin': Buffer.from([7]) } });
    expect(unary).toMatchObject({ code: grpc.status.OK, messages: [`${name}: hi`], trailers: { 'x-trailer': 'done' } });
    expect(unary.headers).toMatchObject({ 'x-server': name, 'x-server-saw': 'from-client', 'x-blob-bin': 'bin:07ff' });
    expect(await call(c, 'Count', ['3'])).toMatchObject({ code: grpc.status.OK, messages: ['1', '2', '3'] });
    expect(await call(c, 'Collect', ['p', 'q'])).toMatchObject({ code: grpc.status.OK, messages: ['p+q'] });
    expect(await call(c, 'Chat', ['1', '2', '3'], { turns: true })).toMatchObject({ code: grpc.status.OK, messages: ['re: 1', 're: 2', 're: 3'], trailers: { 'x-trailer': 'done' } });
  });

  it('relays a failure status with its message and metadata, and logs it', async () => {
    const failed = await call(client('grpc.test'), 'Fail', ['x']);
    expect(failed).toMatchObject({ code: failure.code, details: failure.details, trailers: { 'x-why': 'testing' } });
    await waitFor('the access log line', () => accessLines('grpc.test', '/netplane.test.Echo/Fail').length === 1);
    expect(accessLines('grpc.test', '/netplane.test.Echo/Fail')[0]).toMatchObject({ status: 200, http: '2.0', grpcStatus: failure.code, backend: 'default/clear:80 GRPC' });
  });

  it.each([
    ['a Service without endpoints', 'empty.test', 'NO_ENDPOINTS'],
    ['a GRPCS backend whose certificate another CA signed', 'wrongca.test', 'TLS_FAILED'],
  ])('%s: UNAVAILABLE from the gateway, logged with its reason', async (_what, host, error) => {
    const got = await call(client(host), 'Unary', ['x']);
    expect(got.code).toBe(grpc.status.UNAVAILABLE);
    expect(got.details).not.toMatch(/HTTP status/);
    await waitFor('the access log line', () => accessLines(host, '/netplane.test.Echo/Unary').length > 0);
    expect(accessLines(host, '/netplane.test.Echo/Unary')[0]).toMatchObject({ status: 200, grpcStatus: grpc.status.UNAVAILABLE, error });
  });

  it.each([
    ['GRPC', 'small.test', 'clear'],
    ['GRPCS', 'smalls.test', 'secure'],
  ] as const)('%s: uploads past proxy-body-size get RESOURCE_EXHAUSTED; the gateway stays at its size and the backend connection serves on', async (_protocol, host, name) => {
    // One such upload made the gateway write empty HTTP/2 frames to the backend in a loop, ~1 GB/s until it was
    // killed.
    await call(client(host), 'Unary', ['warm-up']);
    const growth = watchMemory();
    try {
      // grpc-js over HTTP/2: 30 messages of 10 kB, 300 kB in all.
      const big = Array.from({ length: 30 }, (_, i) => String(i).padEnd(10_000, 'x'));
      expect(await call(client(host), 'Collect', big)).toMatchObject({ code: grpc.status.RESOURCE_EXHAUSTED, details: 'the request is larger than proxy-body-size' });
      // curl over HTTP/1.1, chunked (gRPC-Web style: the status in the headers), and over HTTP/2 (where curl exits 92
      // for an upload the server did not take whole, with or without the RST_STREAM(NO_ERROR) that asks it to stop).
      for (const http of ['--http1.1', '--http2']) {
        const { stdout } = await run('sh', ['-c', `head -c 300000 /dev/zero | curl -sk ${http} --resolve ${host}:${gw.https}:127.0.0.1 -H 'content-type: application/grpc' -H 'te: trailers' ${http === '--http1.1' ? "-H 'Transfer-Encoding: chunked'" : ''} -X POST -T - -D - -o /dev/null https://${host}:${gw.https}/netplane.test.Echo/Collect; true`]);
        expect(stdout).toMatch(/^grpc-status: 8\r?$/m);
      }
      // A declared length past the limit is refused before anything runs: RESOURCE_EXHAUSTED too, never a 413 that a
      // gRPC client would read as UNKNOWN.
      for (const http of ['--http1.1', '--http2']) {
        const { stdout } = await run('sh', ['-c', `head -c 300000 /dev/zero | curl -sk ${http} --resolve ${host}:${gw.https}:127.0.0.1 -H 'content-type: application/grpc' -H 'te: trailers' --data-binary @- -D - -o /dev/null https://${host}:${gw.https}/netplane.test.Echo/Collect; true`]);
        expect(stdout).toMatch(/^HTTP\/[\d.]+ 200/);
        expect(stdout).toMatch(/^content-type: application\/grpc\r?$/m);
        expect(stdout).not.toMatch(/ 413/);
        if (http === '--http1.1') expect(stdout).toMatch(/^grpc-status: 8\r?$/m);
      }
      await sleep(300);
      expect(await call(client(host), 'Unary', ['after'])).toMatchObject({ code: grpc.status.OK, messages: [`${name}: after`] });
      expect(await call(client(host), 'Collect', ['p', 'q'])).toMatchObject({ code: grpc.status.OK, messages: ['p+q'] });
    } finally {
      growth.stop();
    }
    expect(gw.child!.exitCode).toBe(null);
    expect(growth.peak()).toBeLessThan(100e6);
    const lines = accessLines(host, '/netplane.test.Echo/Collect');
    expect(lines.filter((l) => l.error === 'BODY_TOO_LARGE').map((l) => [l.status, l.grpcStatus])).toEqual(Array(3).fill([200, grpc.status.RESOURCE_EXHAUSTED]));
    expect(lines.filter((l) => l.refused === 'body-size').map((l) => [l.status, l.grpcStatus])).toEqual(Array(2).fill([200, grpc.status.RESOURCE_EXHAUSTED]));
  });

  it('a backend silent past proxy-read-timeout while an upload fills its window: DEADLINE_EXCEEDED, the backend stream reset, and no growth once it reads again', async () => {
    // The same loop as for an oversized upload, after undici's own read timeout aborted the request.
    const growth = watchMemory();
    const session = h2Connect(`https://127.0.0.1:${gw.https}`, { ca: ca.cert, servername: 'late.test' });
    session.on('error', () => {});
    try {
      const stream = session.request({ ':method': 'POST', ':path': '/netplane.test.Echo/Collect', ':authority': 'late.test', 'content-type': 'application/grpc', te: 'trailers' });
      stream.on('error', () => {});
      stream.resume();
      const trailers = new Promise<Record<string, unknown>>((r) => stream.on('trailers', (t) => r(t)));
      stream.write(Buffer.alloc(300_000));
      expect((await trailers)['grpc-status']).toBe(String(grpc.status.DEADLINE_EXCEEDED));
      await waitFor('the backend stream to be reset', () => lateResets.length === 1, 3000);
      expect(lateResets).toEqual([0x8]);
      // The backend reads again after 1.5 s, which opens the window of the stream the gateway gave up.
      await waitFor('the backend to read', () => lateReading === 1, 3000);
      await sleep(200);
      expect(await call(client('grpc.test'), 'Unary', ['still'])).toMatchObject({ code: grpc.status.OK });
    } finally {
      growth.stop();
      session.destroy();
    }
    expect(gw.child!.exitCode).toBe(null);
    expect(growth.peak()).toBeLessThan(100e6);
  });

  it('plain HTTP Ingresses keep working beside them, also on the same host over the same HTTP/2 listener', async () => {
    const plain = await gw.get('web.test', '/page');
    expect(plain.status).toBe(200);
    expect(JSON.parse(plain.text)).toMatchObject({ backend: 'web', url: '/page' });
    // mixed.test: /netplane.test.Echo/ is gRPC to one Service, the rest HTTP/1.1 to another.
    expect(await call(client('mixed.test'), 'Unary', ['m'])).toMatchObject({ code: grpc.status.OK, messages: ['clear: m'] });
    const session = h2Connect(`https://127.0.0.1:${gw.https}`, { ca: ca.cert, servername: 'mixed.test' });
    try {
      const stream = session.request({ ':path': '/about', ':authority': 'mixed.test' });
      const [status, body] = await new Promise<[number, string]>((resolve, reject) => {
        let text = '';
        let code = 0;
        stream.on('response', (h) => (code = Number(h[':status'])));
        stream.on('data', (d: Buffer) => (text += d));
        stream.on('end', () => resolve([code, text]));
        stream.on('error', reject);
      });
      expect(status).toBe(200);
      expect(JSON.parse(body)).toMatchObject({ backend: 'web', url: '/about', method: 'GET' });
    } finally {
      session.destroy();
    }
    expect(await gw.metrics()).toMatch(/nginx_ingress_controller_requests\{[^}]*ingress="mixed-grpc"[^}]*status="200"[^}]*method="POST"[^}]*\} [1-9]/);
  });

  it('a gRPC client on the plain HTTP listener (h2c, which it does not speak) fails UNAVAILABLE', async () => {
    const c = echoClient(`127.0.0.1:${gw.http}`, undefined, 'grpc.test');
    clients.push(c);
    const before = clear.calls.length;
    const got = await call(c, 'Unary', ['x'], { deadlineMs: 5000 });
    expect(got.code).toBe(grpc.status.UNAVAILABLE);
    expect(clear.calls.length).toBe(before);
  });
});
