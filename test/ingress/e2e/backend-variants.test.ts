// Two Ingresses that reach one Service port differently (backend-protocol, proxy-ssl-*) each get what they say,
// through `netplane ingress` over real HTTP and TLS, whichever comes first by name: an Ingress that verifies its
// HTTPS backend is never sent unverified because another one to the same port does not verify. Ingresses that reach
// a port alike share one upstream (one connection at the backend), and a change of one Ingress's settings leaves
// the others' connections as they are and fails no request in flight.
import { createServer, type Server } from 'node:https';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../helpers/wait.ts';
import { makeCert, type Pems } from '../tls/pki.ts';
import { b64, EchoBackend, GatewayProcess, ingressClassYaml, ingressYaml, serviceYaml, listenLoopback } from './harness.ts';

const ngx = 'nginx.ingress.kubernetes.io/';
const https = { [`${ngx}backend-protocol`]: 'HTTPS' };
const verify = (more: Record<string, string> = {}) => ({ ...https, [`${ngx}proxy-ssl-verify`]: 'on', [`${ngx}proxy-ssl-secret`]: 'backend-ca', ...more });
const caSecret = (p: Pems) => `---\napiVersion: v1\nkind: Secret\nmetadata: { name: backend-ca, namespace: default }\ntype: Opaque\ndata: { ca.crt: ${b64(p.cert)} }\n`;
const ing = (name: string, service: string, annotations: Record<string, string>) => ingressYaml({ name, host: `${name}.test`, paths: [['Prefix', '/', service]], annotations });

/** An HTTPS backend that answers `{ sni, conn }` (the SNI the gateway sent, "-" for none; the connection's number), `/slow` after 1.5 s. */
class TlsBackend {
  readonly server: Server;
  /** The SNI of each TLS connection, in order (its index is the connection's number). */
  readonly connections: string[] = [];
  readonly #ids = new WeakMap<Socket, number>();
  port = 0;

  constructor(p: Pems) {
    this.server = createServer({ cert: p.cert, key: p.key }, (req, res) => {
      const socket = req.socket as TLSSocket;
      const answer = () => res.end(JSON.stringify({ sni: socket.servername || '-', conn: this.#ids.get(socket) }));
      if (req.url === '/slow') setTimeout(answer, 1500);
      else answer();
    });
    this.server.on('secureConnection', (s: TLSSocket) => {
      this.#ids.set(s, this.connections.length);
      this.connections.push(s.servername || '-');
    });
  }

  async start(): Promise<this> {
    this.port = await listenLoopback(this.server);
    return this;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }
}

describe('netplane ingress: each Ingress reaches a shared Service port as it says', () => {
  const gw = new GatewayProcess();
  let ca: Pems;
  let unverifiable: TlsBackend;
  let shared: TlsBackend;
  let live: TlsBackend;
  const plain = new EchoBackend('plain');
  // An EchoBackend-shaped port for serviceYaml.
  const at = (b: { port: number }) => b as EchoBackend;

  beforeAll(async () => {
    ca = await makeCert('Backend CA', ['backend-ca.test'], { isCa: true });
    const rogueCa = await makeCert('Rogue CA', ['rogue-ca.test'], { isCa: true });
    // Names every Service below: only the CA decides whether a certificate verifies.
    const names = ['tls1.default.svc', 'tls2.default.svc', 'shared.default.svc', 'live.default.svc', 'api.internal'];
    unverifiable = await new TlsBackend(await makeCert('rogue', names, { ca: rogueCa })).start();
    shared = await new TlsBackend(await makeCert('shared', names, { ca })).start();
    live = await new TlsBackend(await makeCert('live', names, { ca })).start();
    await plain.start();
    gw.write(
      'all.yaml',
      [
        ingressClassYaml,
        serviceYaml('tls1', [at(unverifiable)]),
        serviceYaml('tls2', [at(unverifiable)]),
        serviceYaml('web1', [plain]),
        serviceYaml('web2', [plain]),
        serviceYaml('shared', [at(shared)]),
        serviceYaml('live', [at(live)]),
        caSecret(ca),
        // The same two ways to one port, in both orders of names.
        ing('a-plain', 'tls1', https),
        ing('b-verify', 'tls1', verify()),
        ing('c-verify', 'tls2', verify()),
        ing('d-plain', 'tls2', https),
        ing('e-http', 'web1', {}),
        ing('f-https', 'web1', https),
        ing('g-grpc', 'web1', { [`${ngx}backend-protocol`]: 'GRPC' }),
        ing('h-https', 'web2', https),
        ing('i-http', 'web2', {}),
        ing('s1', 'shared', https),
        ing('s2', 'shared', https),
        ing('s3', 'shared', verify({ [`${ngx}proxy-ssl-name`]: 'api.internal', [`${ngx}proxy-ssl-server-name`]: 'on' })),
      ].join('---\n'),
    );
    gw.write('live.yaml', [ing('l-a', 'live', https), ing('l-b', 'live', verify({ [`${ngx}proxy-ssl-server-name`]: 'on' }))].join(''));
    await gw.start([], { host: 'a-plain.test' });
  }, 30_000);
  afterAll(async () => {
    await gw.stop();
    await Promise.all([unverifiable, shared, live].map((b) => b?.stop()));
    await plain.stop();
  });

  // Two Ingresses to one Service port, by name order: [what, the first's host and status, the second's host and status]
  const cases: [string, string, number, string, number][] = [
    ['HTTPS unverified, then verified against a CA that did not sign the certificate', 'a-plain.test', 200, 'b-verify.test', 502],
    ['HTTPS verified against that CA, then unverified', 'c-verify.test', 502, 'd-plain.test', 200],
    ['HTTP, then HTTPS, to a plain HTTP backend', 'e-http.test', 200, 'f-https.test', 502],
    ['HTTPS, then HTTP, to a plain HTTP backend', 'h-https.test', 502, 'i-http.test', 200],
  ];
  it.each(cases)('%s: %s answers %i, %s answers %i', async (_what, first, firstStatus, second, secondStatus) => {
    expect([(await gw.get(first, '/')).status, (await gw.get(second, '/')).status]).toEqual([firstStatus, secondStatus]);
  });

  it('logs and counts the failed verification under its own upstream', async () => {
    expect((await gw.get('b-verify.test', '/')).status).toBe(502);
    await waitFor('the failure logged', () => gw.output.includes('upstream request failed'), 5000, 20);
    const failed = gw.output.split('\n').filter((l) => l.includes('"msg":"upstream request failed"')).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(failed).toContainEqual(expect.objectContaining({ backend: 'default/tls1:80 HTTPS verify=default/backend-ca name=tls1.default.svc', code: 'TLS_FAILED' }));
    // The unverified route to the same port never failed.
    expect(failed.filter((l) => l.backend === 'default/tls1:80 HTTPS')).toEqual([]);
    const metrics = await gw.metrics();
    expect(metrics).toMatch(/nginx_ingress_controller_requests\{[^}]*ingress="b-verify"[^}]*service="tls1"[^}]*status="502"[^}]*\} [1-9]/);
    expect(metrics).not.toMatch(/nginx_ingress_controller_requests\{[^}]*ingress="a-plain"[^}]*status="502"/);
  });

  it('speaks gRPC (h2c) for a GRPC Ingress to a port another Ingress speaks HTTP/1.1 to', async () => {
    const r = await gw.get('g-grpc.test', '/');
    // The HTTP/1.1 backend cannot answer HTTP/2: a gRPC client's UNAVAILABLE, not the echo the HTTP route gets.
    expect([r.status, r.headers['grpc-status'], r.headers['content-type']]).toEqual([200, '14', 'application/grpc']);
    expect(JSON.parse((await gw.get('e-http.test', '/')).text)).toMatchObject({ backend: 'plain' });
  });

  it('shares one upstream between Ingresses that reach the port alike: one connection each way at the backend', async () => {
    const seen: Record<string, string> = {};
    for (let i = 0; i < 3; i++) {
      for (const host of ['s1.test', 's2.test', 's3.test']) {
        const r = await gw.get(host, '/');
        expect(r.status).toBe(200);
        seen[host] = (JSON.parse(r.text) as { sni: string }).sni;
      }
    }
    expect(seen).toEqual({ 's1.test': '-', 's2.test': '-', 's3.test': 'api.internal' });
    expect([...shared.connections].sort()).toEqual(['-', 'api.internal']);
  });

  it("applies a change of one Ingress's settings to its routes alone, failing no request in flight", async () => {
    const get = async (host: string, path = '/') => {
      const r = await gw.get(host, path);
      return { status: r.status, ...(JSON.parse(r.text) as { sni: string; conn: number }) };
    };
    expect(await get('l-b.test')).toMatchObject({ status: 200, sni: 'live.default.svc' });
    const before = await get('l-a.test');
    expect(before).toMatchObject({ status: 200, sni: '-' });
    // A request in flight on l-b's own upstream, which the change removes.
    const inFlight = get('l-b.test', '/slow');
    await new Promise((r) => setTimeout(r, 200));
    let running = true;
    let changed = false;
    const answers: Array<{ status: number; conn: number; changed: boolean }> = [];
    const load = (async () => {
      while (running) answers.push({ ...(await get('l-a.test')), changed });
    })();
    // l-b stops verifying: it joins l-a's upstream, and its own is removed.
    gw.write('live.yaml', [ing('l-a', 'live', https), ing('l-b', 'live', https)].join(''));
    await waitFor("l-b's new settings", async () => (await get('l-b.test')).sni === '-', 10_000, 50);
    changed = true;
    expect(await inFlight).toMatchObject({ status: 200, sni: 'live.default.svc' });
    await waitFor('requests of l-a after the change', () => answers.filter((a) => a.changed).length >= 5, 5000, 20);
    running = false;
    await load;
    expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    // l-a's upstream was not rebuilt: the connection it had before the change still carries its requests.
    expect(answers.some((a) => a.changed && a.conn === before.conn)).toBe(true);
    expect(live.connections[before.conn]).toBe('-');
  }, 20_000);
});
