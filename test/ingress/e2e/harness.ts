// End-to-end harness for `netplane ingress`: echo backends on loopback, a manifests directory the test writes, and
// the gateway itself run as the user runs it (`node bin/netplane.ts ingress ...`) as a child process.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect as tcpConnect, type AddressInfo, type Server as NetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, type PeerCertificate } from 'node:tls';
import { request } from 'undici';
import { freePort } from '../../helpers/ports.ts';
import { waitFor } from '../../helpers/wait.ts';
import type { Pems } from '../tls/pki.ts';

const bin = fileURLToPath(new URL('../../../bin/netplane.ts', import.meta.url));

/** What an echo backend saw, sent back as JSON. */
export interface Echo {
  backend: string;
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** Listens on a free port of 127.0.0.1 and resolves with it (the test backends' start). */
export async function listenLoopback(server: NetServer): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

/** A backend on 127.0.0.1 that answers every request with an Echo; `handler` may take over. */
export class EchoBackend {
  readonly name: string;
  readonly server: Server;
  port = 0;
  handler?: (req: IncomingMessage, res: ServerResponse) => boolean;

  constructor(name: string) {
    this.name = name;
    this.server = createServer((req, res) => {
      if (this.handler?.(req, res)) return;
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        const echo: Echo = { backend: name, method: req.method ?? '', url: req.url ?? '', headers: req.headers, body };
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(echo));
      });
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

/** Manifests of a Service named `name` in `namespace` with port 80 (named http) and the given backends as endpoints. */
export function serviceYaml(name: string, backends: readonly EchoBackend[], namespace = 'default'): string {
  // One EndpointSlice per backend: each backend has its own port, and a slice's ports apply to all its endpoints.
  const slices = backends.map(
    (b, i) => `---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: ${name}-${i}, namespace: ${namespace}, labels: { kubernetes.io/service-name: ${name} } }
addressType: IPv4
ports: [{ name: http, port: ${b.port}, protocol: TCP }]
endpoints: [{ addresses: ["127.0.0.1"], conditions: { ready: true } }]
`,
  );
  return `apiVersion: v1
kind: Service
metadata: { name: ${name}, namespace: ${namespace} }
spec: { ports: [{ name: http, port: 80, targetPort: http, protocol: TCP }] }
${slices.join('')}`;
}

/** One path of an Ingress rule: path type, path, Service (port 80). */
export type PathRule = [pathType: 'Prefix' | 'Exact' | 'ImplementationSpecific', path: string, service: string];

/** An Ingress document (class `netplane`) with one rule for `host` (none: any host), its paths, annotations and TLS Secret. */
export function ingressYaml(o: { name: string; host?: string; paths: PathRule[]; annotations?: Record<string, string>; tlsSecret?: string }): string {
  const paths = o.paths.map(([type, path, svc]) => `          - { path: "${path}", pathType: ${type}, backend: { service: { name: ${svc}, port: { number: 80 } } } }`).join('\n');
  const ann = Object.entries(o.annotations ?? {}).map(([k, v]) => `    ${k}: ${JSON.stringify(v)}`).join('\n');
  return `---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: ${o.name}
  namespace: default
${ann ? `  annotations:\n${ann}\n` : ''}spec:
  ingressClassName: netplane
${o.tlsSecret ? `  tls: [{ hosts: ["${o.host}"], secretName: ${o.tlsSecret} }]\n` : ''}  rules:
    - ${o.host ? `host: "${o.host}"\n      ` : ''}http:
        paths:
${paths}
`;
}

/** The IngressClass `netplane`, marked default. */
export const ingressClassYaml = `apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: { name: netplane, annotations: { ingressclass.kubernetes.io/is-default-class: "true" } }
spec: { controller: netplane.io/ingress }
`;

export const b64 = (s: string) => Buffer.from(s).toString('base64');

/** The head of the answer (status line and header lines, without the blank line) to a WebSocket handshake for `host` at 127.0.0.1:`port`. */
export function upgradeHead(port: number, host: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tcpConnect(port, '127.0.0.1');
    let got = '';
    s.on('data', (d) => {
      got += d.toString('latin1');
      const end = got.indexOf('\r\n\r\n');
      if (end !== -1) {
        s.destroy();
        resolve(got.slice(0, end));
      }
    });
    s.on('error', reject);
    s.write(`GET /ws HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  });
}

/** A `kubernetes.io/tls` Secret in namespace default. */
export function tlsSecretYaml(name: string, p: Pems): string {
  return `---
apiVersion: v1
kind: Secret
metadata: { name: ${name}, namespace: default }
type: kubernetes.io/tls
data: { tls.crt: ${b64(p.cert)}, tls.key: ${b64(p.key)} }
`;
}

/** The certificate a TLS client gets for `servername` from the gateway. */
export function peerCert(port: number, servername: string): Promise<PeerCertificate> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false }, () => {
      resolve(s.getPeerCertificate());
      s.end();
    });
    s.on('error', reject);
  });
}

/** A response read whole. */
export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/** The Echo in a reply's body. */
export function echoOf(r: Reply): Echo {
  return JSON.parse(r.text) as Echo;
}

/** The gateway as a child process, with its manifests directory. */
export class GatewayProcess {
  readonly dir = mkdtempSync(join(tmpdir(), 'netplane-ingress-'));
  http = 0;
  https = 0;
  admin = 0;
  /** Where the gateway reads the cluster: its manifests directory unless a test points it elsewhere. */
  sourceArgs = ['--manifests', this.dir];
  /** The log level flag; a test giving it in another spelling (ingress-nginx's --v) empties it. */
  logArgs = ['--log-level', 'info'];
  /** Environment variables added to the gateway's (the downward API's POD_NAME, say). */
  env: Record<string, string> = {};
  child?: ChildProcess;
  output = '';
  exited?: Promise<number | null>;

  /** Writes (or replaces) one manifest file. */
  write(file: string, yaml: string): void {
    writeFileSync(join(this.dir, file), yaml);
  }

  /** Starts the gateway and waits until it is ready and routing (`probeHost` answers through it). */
  async start(extraArgs: string[] = [], probe?: { host: string; path?: string }): Promise<void> {
    [this.http, this.https, this.admin] = [await freePort(), await freePort(), await freePort()];
    const child = spawn(
      process.execPath,
      [bin, 'ingress', ...this.sourceArgs, '--http', `127.0.0.1:${this.http}`, '--https', `127.0.0.1:${this.https}`, '--admin', `127.0.0.1:${this.admin}`, '--node-name', 'test', ...this.logArgs, ...extraArgs],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...this.env } },
    );
    this.child = child;
    child.stdout!.on('data', (d) => (this.output += d));
    child.stderr!.on('data', (d) => (this.output += d));
    this.exited = new Promise((r) => child.on('exit', (code) => r(code)));
    // A gateway that exits, or never gets ready, fails the test at once with what it printed.
    const died = this.exited.then((code) => Promise.reject(new Error(`the gateway exited (${code}) before it was ready:\n${this.output}`)));
    const ready = waitFor('the gateway to be ready', async () => (await fetch(`http://127.0.0.1:${this.admin}/readyz`)).status === 200, 15_000, 50);
    await Promise.race([ready, died]).catch((e: Error) => {
      throw this.output && !e.message.includes(this.output) ? new Error(`${e.message}\ngateway output:\n${this.output}`) : e;
    });
    if (probe) await waitFor(`a route for ${probe.host}`, async () => (await this.get(probe.host, probe.path ?? '/')).status !== 404, 10_000, 50);
  }

  /** A plain-HTTP request through the gateway with the given Host (fetch() would not let a test set Host). */
  async get(host: string, path: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Reply> {
    const r = await request(`http://127.0.0.1:${this.http}${path}`, { method: (init.method ?? 'GET') as 'GET', headers: { host, ...init.headers }, body: init.body });
    return { status: r.statusCode, headers: r.headers, text: await r.body.text() };
  }

  /** The gateway's /metrics text. */
  async metrics(): Promise<string> {
    return (await fetch(`http://127.0.0.1:${this.admin}/metrics`)).text();
  }

  /** Stops the gateway (SIGTERM), removes the manifests; returns the exit code. */
  async stop(): Promise<number | null | undefined> {
    if (this.child && this.child.exitCode === null) this.child.kill('SIGTERM');
    const code = await this.exited;
    rmSync(this.dir, { recursive: true, force: true });
    return code;
  }
}
