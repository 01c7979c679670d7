// mirror-target, mirror-host and mirror-request-body through `netplane ingress`, with a real mirror server that
// records what it gets: requests are copied (method, path and query, headers, body bytes) and the client's answer is
// the backend's alone; a mirror that hangs, reads nothing or refuses connections never delays or fails the client;
// beyond --mirror-max-in-flight copies per route the rest are dropped and counted.
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createTcpServer, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { Client, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../helpers/ports.ts';
import { waitFor } from '../../helpers/wait.ts';
import { EchoBackend, GatewayProcess, echoOf, ingressClassYaml, ingressYaml, listenLoopback, serviceYaml } from './harness.ts';

const ngx = 'nginx.ingress.kubernetes.io/';

/** What the mirror got. */
interface Copy {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

describe('mirror-target', () => {
  const web = new EchoBackend('web');
  const gw = new GatewayProcess();
  const copies: Copy[] = [];
  // Records every request whole, then answers 500 (the client must not see it).
  const mirror: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      copies.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(500, { 'content-type': 'text/plain' }).end('the mirror failed\n');
    });
  });
  // Accepts connections and never reads from them nor answers.
  const hung: Socket[] = [];
  const hanging = createTcpServer((s) => {
    hung.push(s);
    s.pause();
  });
  let mirrorPort = 0;
  let hangPort = 0;
  let closedPort = 0;
  const copiesTo = (prefix: string) => copies.filter((c) => c.url.startsWith(prefix));
  const counted = async (ingress: string, outcome: string): Promise<number> => {
    const m = new RegExp(`netplane_ingress_mirror_requests_total\\{namespace="default",ingress="${ingress}",outcome="${outcome}"\\} (\\d+)`).exec(await gw.metrics());
    return m === null ? 0 : Number(m[1]);
  };

  beforeAll(async () => {
    // /big: the upload counted, not echoed.
    web.handler = (req, res) => {
      if (req.url !== '/big') return false;
      let bytes = 0;
      req.on('data', (d: Buffer) => (bytes += d.length));
      req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ bytes })));
      return true;
    };
    await web.start();
    mirrorPort = await listenLoopback(mirror);
    hangPort = await listenLoopback(hanging);
    closedPort = await freePort();
    const ing = (name: string, annotations: Record<string, string>) => ingressYaml({ name, host: `${name}.test`, paths: [['Prefix', '/', 'web']], annotations });
    const to = (target: string, more: Record<string, string> = {}) => ({ [`${ngx}mirror-target`]: target, ...more });
    gw.write(
      'all.yaml',
      [
        ingressClassYaml,
        serviceYaml('web', [web]),
        ing('copy', to(`http://127.0.0.1:${mirrorPort}/copy$request_uri`, { [`${ngx}rewrite-target`]: '/rewritten' })),
        ing('nobody', to(`http://127.0.0.1:${mirrorPort}/nobody$request_uri`, { [`${ngx}mirror-request-body`]: 'off' })),
        ing('hosted', to(`http://127.0.0.1:${mirrorPort}/hosted$request_uri`, { [`${ngx}mirror-host`]: 'shadow.example.com' })),
        ing('query', to(`http://127.0.0.1:${mirrorPort}/query$is_args$args`)),
        ing('hang', to(`http://127.0.0.1:${hangPort}$request_uri`)),
        ing('hangpost', to(`http://127.0.0.1:${hangPort}$request_uri`, { [`${ngx}proxy-body-size`]: '0' })),
        ing('refused', to(`http://127.0.0.1:${closedPort}$request_uri`)),
        ing('plain', {}),
      ].join('---\n'),
    );
    await gw.start(['--mirror-max-in-flight', '3'], { host: 'plain.test' });
  }, 30_000);

  afterAll(async () => {
    await gw.stop();
    await web.stop();
    mirror.closeAllConnections();
    await new Promise((r) => mirror.close(r));
    for (const s of hung) s.destroy();
    await new Promise((r) => hanging.close(r));
  });

  it('copies a GET: method, the path and query the client asked for (not rewritten), its headers, Host of the target', async () => {
    const r = await gw.get('copy.test', '/shop/items?id=7&sort=asc', { headers: { 'x-test': 'one', cookie: 'a=b' } });
    expect(r.status).toBe(200);
    expect(echoOf(r).url).toBe('/rewritten?id=7&sort=asc');
    const [c] = await waitFor('the copy', () => (copiesTo('/copy').length === 1 ? copiesTo('/copy') : null)) as Copy[];
    expect([c!.method, c!.url, c!.body.length]).toEqual(['GET', '/copy/shop/items?id=7&sort=asc', 0]);
    expect(c!.headers).toMatchObject({ host: '127.0.0.1', 'x-test': 'one', cookie: 'a=b' });
    // The gateway's X-Forwarded-* and X-Request-Id are the backend's, not the mirror's (ingress-nginx's mirror location
    // sets only Host).
    expect(echoOf(r).headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(c!.headers['x-forwarded-for']).toBeUndefined();
    expect(c!.headers['content-length']).toBeUndefined();
  });

  it('copies a POST and a streamed PUT with their bodies, byte for byte', async () => {
    const body = randomBytes(300_000);
    const sized = await request(`http://127.0.0.1:${gw.http}/upload?n=1`, { method: 'POST', headers: { host: 'copy.test', 'content-type': 'application/octet-stream' }, body });
    expect(sized.statusCode).toBe(200);
    expect(echoOf({ status: 200, headers: {}, text: await sized.body.text() }).method).toBe('POST');
    const chunked = await request(`http://127.0.0.1:${gw.http}/upload?n=2`, { method: 'PUT', headers: { host: 'copy.test' }, body: Readable.from(['part one, ', 'part two']) });
    await chunked.body.dump();
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    const [a, b] = await waitFor('both copies', () => {
      const a = copiesTo('/copy/upload?n=1')[0];
      const b = copiesTo('/copy/upload?n=2')[0];
      return a && b ? [a, b] : null;
    }) as Copy[];
    expect([a!.method, a!.headers['content-length'], a!.headers['content-type'], sha(a!.body)]).toEqual(['POST', '300000', 'application/octet-stream', sha(body)]);
    expect([b!.method, b!.body.toString()]).toEqual(['PUT', 'part one, part two']);
  });

  it('mirror-request-body off: the copy has the method but no body and no length of one; the backend gets the body', async () => {
    const r = await gw.get('nobody.test', '/form', { method: 'POST', body: 'secret=1', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(echoOf(r).body).toBe('secret=1');
    const [c] = await waitFor('the copy', () => (copiesTo('/nobody').length === 1 ? copiesTo('/nobody') : null)) as Copy[];
    expect([c!.method, c!.url, c!.body.length]).toEqual(['POST', '/nobody/form', 0]);
    expect(c!.headers['content-length'] ?? '0').toBe('0');
    expect(c!.headers['content-type']).toBe('application/x-www-form-urlencoded');
  });

  it('mirror-host sets the Host of the copy', async () => {
    expect((await gw.get('hosted.test', '/h')).status).toBe(200);
    const [c] = await waitFor('the copy', () => (copiesTo('/hosted').length === 1 ? copiesTo('/hosted') : null)) as Copy[];
    expect(c!.headers.host).toBe('shadow.example.com');
  });

  it('fills in $is_args$args', async () => {
    await gw.get('query.test', '/p?x=1');
    await gw.get('query.test', '/p');
    const got = await waitFor('both copies', () => (copiesTo('/query').length === 2 ? copiesTo('/query') : null)) as Copy[];
    expect(got.map((c) => c.url).sort()).toEqual(['/query', '/query?x=1']);
  });

  it('counts copies answered as sent, whatever the mirror answered, and the client gets only the backend', async () => {
    await waitFor('sent counted', async () => (await counted('hosted', 'sent')) === 1);
    const r = await gw.get('hosted.test', '/again');
    expect([r.status, echoOf(r).backend]).toEqual([200, 'web']);
  });

  it('a mirror that never answers delays nothing: requests on one keep-alive connection go on; beyond 3 copies they are dropped and counted', async () => {
    const client = new Client(`http://127.0.0.1:${gw.http}`, { pipelining: 1 });
    try {
      for (let i = 0; i < 5; i++) {
        const r = await client.request({ path: `/k/${i}`, method: 'GET', headers: { host: 'hang.test' } });
        expect(r.statusCode).toBe(200);
        expect(JSON.parse(await r.body.text()).url).toBe(`/k/${i}`);
      }
    } finally {
      await client.close();
    }
    await waitFor('three copies connected', () => hung.length === 3);
    await waitFor('two dropped', async () => (await counted('hang', 'dropped')) === 2);
    expect(await counted('hang', 'sent')).toBe(0);
    // The other routes are not held to the hanging route's cap.
    expect((await gw.get('plain.test', '/')).status).toBe(200);
  });

  it('a mirror that reads nothing does not hold an upload back: the backend gets the whole body', async () => {
    // More than the kernel's socket buffers on both ends of the mirror's connection hold.
    const body = randomBytes(48 * 1024 * 1024);
    const r = await request(`http://127.0.0.1:${gw.http}/big`, { method: 'POST', headers: { host: 'hangpost.test' }, body });
    expect(r.statusCode).toBe(200);
    expect(JSON.parse(await r.body.text())).toEqual({ bytes: body.length });
    await waitFor('the copy given up', async () => (await counted('hangpost', 'failed')) === 1);
  });

  it('a mirror that refuses connections fails nothing: the client gets the backend, the copy counts as failed', async () => {
    const r = await gw.get('refused.test', '/x', { method: 'POST', body: 'data' });
    expect([r.status, echoOf(r).body]).toEqual([200, 'data']);
    await waitFor('failed counted', async () => (await counted('refused', 'failed')) === 1);
  });

  it('copies nothing for a route without mirror-target', async () => {
    const before = copies.length;
    await gw.get('plain.test', '/plain');
    await new Promise((r) => setTimeout(r, 200));
    expect(copies.length).toBe(before);
    expect(await gw.metrics()).not.toContain('netplane_ingress_mirror_requests_total{namespace="default",ingress="plain"');
  });
});
