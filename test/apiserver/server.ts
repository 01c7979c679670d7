// A Kubernetes API server for tests: list, get, watch and merge-patch over plain HTTP (or HTTPS) for the kinds netplane
// reads, create and replace (with resourceVersion conflicts) for those it writes whole, such as Leases, with one
// etcd-like resourceVersion, compaction (410 Expired), bookmarks, bearer tokens, and outages and malformed answers
// the test controls.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { discovery, isPlainObject, listItem, parseTarget, resourceByKind, resources, status, type KubeObject, type Resource, type Target } from './resources.ts';
import { parseFieldSelector, parseLabelSelector, SelectorError } from './selectors.ts';
import { InvalidObjectError, ObjectStore } from './store.ts';
import { WatchStream } from './watch.ts';

/** The bearer token accepted at first and carried by kubeconfigPath(); a request with another one gets 401. */
export const TEST_TOKEN = 'netplane-test-token';

/** One request the server received. */
export interface RequestRecord {
  method: string;
  path: string;
  query: Record<string, string>;
}

/** Options of TestApiServer.start. */
export interface TestApiServerOptions {
  /** Send a BOOKMARK this often on every watch that asked for bookmarks (the real server: about once a minute). */
  bookmarkIntervalMs?: number;
  /** Answer 401 to a request without a bearer token too (by default one is served as an anonymous user). */
  requireToken?: boolean;
  /** Serve HTTPS with this certificate chain and key instead of plain HTTP. */
  tls?: { cert: string; key: string };
}

const MERGE_PATCH_TYPES = ['application/merge-patch+json', 'application/strategic-merge-patch+json'];

/** An in-process Kubernetes API server on 127.0.0.1 that the real @kubernetes/client-node can list and watch. */
export class TestApiServer {
  /** Base URL, `http://127.0.0.1:PORT` (`https` with the tls option); the port stays the same across goDown()/comeUp(). */
  readonly url: string;
  /** The one bearer token accepted; set it to rotate the token (open watches are not ended). */
  token = TEST_TOKEN;
  /** Every request received, in order, for assertions such as "it listed again". */
  readonly requests: RequestRecord[] = [];
  #server: Server;
  #port: number;
  #store: ObjectStore;
  #watches = new Set<WatchStream>();
  #bookmarkTimer?: NodeJS.Timeout;
  #tmpDir?: string;
  /** While hung: the requests waiting for an answer. */
  #held?: Array<() => void>;
  /** Resource plurals the test user may not read or write (RBAC without a rule for them): every request gets 403. */
  #forbidden = new Set<string>();
  /** `plural[/status]:verb` the test user may not use (RBAC with a rule for other verbs): those requests get 403. */
  #deniedVerbs = new Set<string>();
  /** Per resource plural: items sent as they are, ahead of the stored objects, in every list of it. */
  #rawItems = new Map<string, unknown[]>();
  #requireToken: boolean;
  #ca?: string;

  private constructor(server: Server, port: number, opts: TestApiServerOptions) {
    this.#server = server;
    this.#port = port;
    this.url = `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
    this.#requireToken = opts.requireToken ?? false;
    this.#ca = opts.tls?.cert;
    this.#store = new ObjectStore((change) => {
      if (!this.#held) for (const w of this.#watches) w.change(change);
    });
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const serve = () => void this.#handle(req, res);
      // A client that gave up while the server was hung gets nothing when it answers again.
      if (this.#held) this.#held.push(() => req.socket.destroyed || serve());
      else serve();
    });
    if (opts.bookmarkIntervalMs) {
      this.#bookmarkTimer = setInterval(() => this.bookmark(), opts.bookmarkIntervalMs);
      this.#bookmarkTimer.unref();
    }
  }

  /** Starts a server on a free port of 127.0.0.1. */
  static async start(opts: TestApiServerOptions = {}): Promise<TestApiServer> {
    // An HTTPS server is an HTTP server on TLS sockets: the same request events, close and closeAllConnections.
    const server = opts.tls ? (createTlsServer({ cert: opts.tls.cert, key: opts.tls.key }) as unknown as Server) : createServer();
    await listen(server, 0);
    return new TestApiServer(server, (server.address() as AddressInfo).port, opts);
  }

  /** Writes a kubeconfig for this server (token user, current context set) to a temp file removed by close(). */
  async kubeconfigPath(): Promise<string> {
    this.#tmpDir ??= await mkdtemp(join(tmpdir(), 'netplane-apiserver-'));
    const file = join(this.#tmpDir, 'kubeconfig.yaml');
    // The client library refuses a plain-http server unless insecure-skip-tls-verify is set; with tls, the
    // certificate is its own CA.
    const trust = this.#ca ? { 'certificate-authority-data': Buffer.from(this.#ca).toString('base64') } : { 'insecure-skip-tls-verify': true };
    const config = {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'test', cluster: { server: this.url, ...trust } }],
      users: [{ name: 'test', user: { token: this.token } }],
      contexts: [{ name: 'test', context: { cluster: 'test', user: 'test', namespace: 'default' } }],
      'current-context': 'test',
    };
    await writeFile(file, JSON.stringify(config, null, 2)); // JSON is YAML
    return file;
  }

  /** Creates or updates an object, emitting ADDED/MODIFIED (nothing if unchanged); throws InvalidObjectError if unusable. */
  apply(obj: object): object {
    const input = obj as Record<string, unknown>;
    const resource = served(String(input.apiVersion), String(input.kind));
    return structuredClone(this.#store.apply(resource, input));
  }

  /** Deletes an object (namespace defaults to "default"), emitting DELETED; false if absent, InvalidObjectError if unserved. */
  remove(apiVersion: string, kind: string, name: string, namespace?: string): boolean {
    const resource = served(apiVersion, kind);
    return this.#store.remove(resource, resource.namespaced ? (namespace ?? 'default') : undefined, name);
  }

  /** The current global resourceVersion. */
  get resourceVersion(): string {
    return String(this.#store.resourceVersion);
  }

  /** Forgets all history up to now: a watch from an older resourceVersion gets a 410 Expired ERROR event. */
  compact(): void {
    this.#store.compact();
  }

  /** Sends a BOOKMARK at the current resourceVersion on every open watch that asked for bookmarks. */
  bookmark(): void {
    if (this.#held) return;
    for (const w of this.#watches) w.bookmark(this.#store.resourceVersion);
  }

  /**
   * Stops answering, as a frozen API server or load balancer does: connections are still accepted, requests get no
   * answer, open watches send nothing (no events, no bookmarks).
   */
  hang(): void {
    this.#held ??= [];
  }

  /**
   * Answers again: held requests are served, and the watches that went silent are ended, so that clients watch again
   * from their last revision and get what changed meanwhile.
   */
  resume(): void {
    const held = this.#held;
    if (!held) return;
    this.#held = undefined;
    this.dropWatches();
    for (const serve of held) serve();
  }

  /**
   * Answers 403 Forbidden to every request for a resource (its plural: `pods`), as a real API server does for a
   * ServiceAccount without an RBAC rule for it; open watches of it end. `allow` gives it back.
   */
  forbid(plural: string): void {
    if (!resources.some((r) => r.plural === plural)) throw new InvalidObjectError(`${plural} is not a served resource`);
    this.#forbidden.add(plural);
    for (const w of this.#watches) if (w.spec.resource.plural === plural) w.end();
  }

  /**
   * Answers 403 Forbidden to one verb on a resource or its status subresource (`deny('ingresses/status', 'patch')`),
   * as RBAC does for a role that grants other verbs on it; `allow` gives every verb back.
   */
  deny(resource: string, verb: 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete'): void {
    this.#deniedVerbs.add(`${resource}:${verb}`);
  }

  /** Serves a resource forbidden with `forbid` again. */
  allow(plural: string): void {
    this.#forbidden.delete(plural);
    for (const d of this.#deniedVerbs) if (d.startsWith(`${plural}:`) || d.startsWith(`${plural}/status:`)) this.#deniedVerbs.delete(d);
  }

  /**
   * Sends `items` as they are (null, a string, an object without metadata) ahead of the stored objects in every list
   * of a resource (its plural), as a broken API server or proxy might; an empty array stops it.
   */
  rawListItems(plural: string, items: unknown[]): void {
    if (!resources.some((r) => r.plural === plural)) throw new InvalidObjectError(`${plural} is not a served resource`);
    if (items.length === 0) this.#rawItems.delete(plural);
    else this.#rawItems.set(plural, items);
  }

  /** Writes `event` as it is, as one JSON line, on every open watch of a resource (its plural): `{type, object: null}`. */
  rawWatchEvent(plural: string, event: unknown): void {
    for (const w of this.#watches) if (w.spec.resource.plural === plural) w.raw(event);
  }

  /** Ends every open watch response cleanly; clients normally re-watch from their last resourceVersion. */
  dropWatches(): void {
    for (const w of this.#watches) w.end();
  }

  /** Closes the listener and destroys every connection, so new connections are refused (an outage); state is kept. */
  async goDown(): Promise<void> {
    if (!this.#server.listening) return;
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeAllConnections();
    await closed;
  }

  /** Listens again on the same port with the same state; rejects if the port was taken meanwhile. */
  async comeUp(): Promise<void> {
    if (!this.#server.listening) await listen(this.#server, this.#port);
  }

  /** The number of watch responses currently open. */
  openWatches(): number {
    return this.#watches.size;
  }

  /** Stops the server for good and removes the kubeconfig file. */
  async close(): Promise<void> {
    clearInterval(this.#bookmarkTimer);
    await this.goDown();
    if (this.#tmpDir) await rm(this.#tmpDir, { recursive: true, force: true });
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.url);
    const query = Object.fromEntries(url.searchParams);
    const method = req.method ?? 'GET';
    this.requests.push({ method, path: url.pathname, query });
    try {
      const auth = req.headers.authorization;
      // No header is let through as an anonymous user unless requireToken, so plain fetch() works in tests.
      if ((auth !== undefined || this.#requireToken) && auth !== `Bearer ${this.token}`) return send(res, 401, status(401, 'Unauthorized', 'Unauthorized'));
      if (method === 'GET' && url.pathname === '/version') return send(res, 200, VERSION);
      const doc = method === 'GET' ? discovery(url.pathname, `127.0.0.1:${this.#port}`) : undefined;
      if (doc) return send(res, 200, doc);
      const target = parseTarget(url.pathname);
      if (!target) return send(res, 404, status(404, 'NotFound', 'the server could not find the requested resource', {}));
      if (this.#forbidden.has(target.resource.plural) || this.#deniedVerbs.has(`${target.resource.plural}${target.subresource ? `/${target.subresource}` : ''}:${verbOf(method, query, target)}`)) {
        return send(res, 403, forbidden(method, query, target));
      }
      if (method === 'GET' && (query.watch === 'true' || query.watch === '1')) return this.#watch(res, target, query);
      if (method === 'GET') return target.name === undefined ? this.#list(res, target, query) : this.#get(res, target);
      if (method === 'PATCH' && target.name !== undefined) return await this.#patch(req, res, target);
      if (method === 'POST' && target.name === undefined && (target.namespace !== undefined || !target.resource.namespaced)) return await this.#create(req, res, target);
      if (method === 'PUT' && target.name !== undefined) return await this.#replace(req, res, target);
      send(res, 405, status(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource`, {}));
    } catch (e) {
      if (e instanceof SelectorError) return send(res, 400, status(400, 'BadRequest', e.message));
      send(res, 500, status(500, 'InternalError', `test apiserver: ${String(e)}`));
    }
  }

  #list(res: ServerResponse, { resource, namespace }: Target, query: Record<string, string>): void {
    const labels = parseLabelSelector(query.labelSelector);
    const fields = parseFieldSelector(query.fieldSelector, resource);
    const items = this.#store.list(resource, namespace).filter((o) => labels(o) && fields(o));
    send(res, 200, {
      kind: `${resource.kind}List`,
      apiVersion: resource.apiVersion,
      metadata: { resourceVersion: this.resourceVersion },
      items: [...(this.#rawItems.get(resource.plural) ?? []), ...items.map(listItem)],
    });
  }

  #get(res: ServerResponse, { resource, namespace, name }: Target): void {
    const obj = this.#store.get(resource, namespace, name!);
    if (obj) return send(res, 200, obj);
    send(res, 404, notFound(resource.plural, name!));
  }

  #watch(res: ServerResponse, target: Target, query: Record<string, string>): void {
    const labels = parseLabelSelector(query.labelSelector);
    const fields = parseFieldSelector(query.fieldSelector, target.resource);
    const from = query.resourceVersion ?? '';
    const rv = Number(from);
    if (from !== '' && !/^\d+$/.test(from)) {
      return send(res, 400, status(400, 'BadRequest', `resourceVersion: Invalid value: ${JSON.stringify(from)}: must be a non-negative integer`));
    }
    const timeoutSeconds = Number(query.timeoutSeconds);
    const stream = new WatchStream(
      res,
      {
        ...target,
        labels,
        fields,
        bookmarks: query.allowWatchBookmarks === 'true',
        after: from === '' || rv === 0 ? this.#store.resourceVersion : rv,
        ...(timeoutSeconds > 0 ? { timeoutMs: timeoutSeconds * 1000 } : {}),
      },
      (w) => this.#watches.delete(w),
    );
    if (from === '' || rv === 0) {
      stream.snapshot(this.#store.list(target.resource, target.namespace));
    } else {
      const changes = this.#store.changesSince(rv);
      if (!changes) return stream.expire(rv, this.#store.floor);
      for (const c of changes) stream.change(c);
    }
    // Registered in the same tick as the replay, so no change falls between history and live events.
    this.#watches.add(stream);
  }

  async #patch(req: IncomingMessage, res: ServerResponse, { resource, namespace, name, subresource }: Target): Promise<void> {
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    const body = await readBody(req);
    if (!MERGE_PATCH_TYPES.includes(type)) {
      const accepted = 'application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json';
      const message = `the body of the request was in an unknown format - accepted media types include: ${accepted}`;
      return send(res, 415, status(415, 'UnsupportedMediaType', message));
    }
    let patch: unknown;
    try {
      patch = JSON.parse(body);
    } catch (e) {
      return send(res, 400, status(400, 'BadRequest', `error decoding patch: ${(e as Error).message}`));
    }
    const strategic = type === 'application/strategic-merge-patch+json';
    const obj = this.#store.patch(resource, namespace, name!, patch, { strategic, ...(subresource ? { subresource } : {}) });
    if (obj) return send(res, 200, obj);
    send(res, 404, notFound(resource.plural, name!));
  }

  /** POST on a collection: 201 with the stored object, 409 AlreadyExists when the name is taken. */
  async #create(req: IncomingMessage, res: ServerResponse, { resource, namespace }: Target): Promise<void> {
    const obj = await readObject(req, res, resource, namespace);
    if (!obj) return;
    const name = String(obj.metadata.name ?? '');
    if (this.#store.get(resource, namespace, name)) {
      return send(res, 409, status(409, 'AlreadyExists', `${resource.plural}${groupSuffix(resource)} "${name}" already exists`, { name, group: resource.group, kind: resource.plural }));
    }
    send(res, 201, this.#store.apply(resource, obj));
  }

  /**
   * PUT on an object: 200 with the stored object; 404 when it does not exist; 409 Conflict when the body carries a
   * resourceVersion other than the stored one (optimistic concurrency, which leader election relies on). On its
   * status subresource only the status is taken from the body, the rest stays as stored (the real server's status
   * strategies).
   */
  async #replace(req: IncomingMessage, res: ServerResponse, { resource, namespace, name, subresource }: Target): Promise<void> {
    const obj = await readObject(req, res, resource, namespace);
    if (!obj) return;
    if (obj.metadata.name !== name) return send(res, 400, status(400, 'BadRequest', `the name of the object (${String(obj.metadata.name)}) does not match the name on the URL (${name})`));
    const prev = this.#store.get(resource, namespace, name!);
    if (!prev) return send(res, 404, notFound(resource.plural, name!));
    const rv = obj.metadata.resourceVersion;
    if (rv !== undefined && rv !== '' && rv !== prev.metadata.resourceVersion) {
      const message = `Operation cannot be fulfilled on ${resource.plural}${groupSuffix(resource)} "${name}": the object has been modified; please apply your changes to the latest version and try again`;
      return send(res, 409, status(409, 'Conflict', message, { name, group: resource.group, kind: resource.plural }));
    }
    if (subresource === 'status') {
      const next: KubeObject = { ...prev, metadata: { ...prev.metadata } };
      if (obj.status === undefined) delete next.status;
      else next.status = obj.status;
      return send(res, 200, this.#store.apply(resource, next));
    }
    // The real server keeps the status of kinds with a status subresource when the object itself is replaced.
    if (STATUS_KINDS.has(resource.kind)) {
      if (prev.status === undefined) delete obj.status;
      else obj.status = prev.status;
    }
    send(res, 200, this.#store.apply(resource, obj));
  }
}

/** Kinds whose status only their status subresource changes. */
const STATUS_KINDS = new Set(['Service', 'Node', 'Ingress']);

const groupSuffix = (r: Resource) => (r.group ? `.${r.group}` : '');

/**
 * The JSON body of a create or replace as an object of `resource` in `namespace`, or undefined after answering 400:
 * not JSON, another kind, another namespace, no name, or a Lease time the real server cannot parse.
 */
async function readObject(req: IncomingMessage, res: ServerResponse, resource: Resource, namespace: string | undefined): Promise<KubeObject | undefined> {
  let obj: unknown;
  try {
    obj = JSON.parse(await readBody(req));
  } catch (e) {
    send(res, 400, status(400, 'BadRequest', `error decoding body: ${(e as Error).message}`));
    return undefined;
  }
  const bad = (message: string) => (send(res, 400, status(400, 'BadRequest', message)), undefined);
  if (!isPlainObject(obj) || !isPlainObject(obj.metadata)) return bad('the body must be an object with metadata');
  if ((obj.kind ?? resource.kind) !== resource.kind || (obj.apiVersion ?? resource.apiVersion) !== resource.apiVersion) {
    return bad(`the body is ${String(obj.apiVersion)} ${String(obj.kind)}, not ${resource.apiVersion} ${resource.kind}`);
  }
  if (typeof obj.metadata.name !== 'string' || obj.metadata.name === '') return bad('metadata.name: Required value: name is required');
  if (resource.namespaced) {
    if (obj.metadata.namespace !== undefined && obj.metadata.namespace !== namespace) return bad('the namespace of the provided object does not match the namespace sent on the request');
    obj.metadata.namespace = namespace;
  }
  const problem = resource.kind === 'Lease' ? leaseTimeProblem(obj.spec) : undefined;
  if (problem) return bad(`Lease in version "v1" cannot be handled as a Lease: ${problem}`);
  return { ...obj, kind: resource.kind, apiVersion: resource.apiVersion } as KubeObject;
}

/** The real server parses a Lease's times as MicroTime (RFC 3339 with exactly six fraction digits); what it refuses. */
function leaseTimeProblem(spec: unknown): string | undefined {
  if (!isPlainObject(spec)) return undefined;
  for (const field of ['acquireTime', 'renewTime']) {
    const v = spec[field];
    if (v !== undefined && v !== null && !(typeof v === 'string' && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|[+-]\d\d:\d\d)$/.test(v))) {
      return `parsing time ${JSON.stringify(v)} as "2006-01-02T15:04:05.000000Z07:00": cannot parse as RFC3339Micro`;
    }
  }
  return undefined;
}

function served(apiVersion: string, kind: string): Resource {
  const resource = resourceByKind(apiVersion, kind);
  if (resource) return resource;
  const all = resources.map((r) => `${r.apiVersion} ${r.kind}`).join(', ');
  throw new InvalidObjectError(`apiVersion ${apiVersion} kind ${kind} is not served; served are: ${all}`);
}

const VERSION = { major: '1', minor: '33', gitVersion: 'v1.33.0-netplane-test', platform: 'linux/amd64' };

/** The RBAC verb of a request. */
function verbOf(method: string, query: Record<string, string>, { name }: Target): string {
  const watch = query.watch === 'true' || query.watch === '1';
  const verbs: Record<string, string> = { GET: watch ? 'watch' : name === undefined ? 'list' : 'get', POST: 'create', PUT: 'update', PATCH: 'patch', DELETE: 'delete' };
  return verbs[method] ?? method.toLowerCase();
}

/** The real server's 403 Status for an RBAC denial: names the user, verb, resource, API group and scope. */
function forbidden(method: string, query: Record<string, string>, target: Target): Record<string, unknown> {
  const { resource, namespace, name } = target;
  const scope = namespace !== undefined ? `in the namespace "${namespace}"` : 'at the cluster scope';
  const plural = `${resource.plural}${target.subresource ? `/${target.subresource}` : ''}`;
  const message = `${resource.plural}${name !== undefined ? ` "${name}"` : ''} is forbidden: User "system:serviceaccount:kube-system:netplane" cannot ${verbOf(method, query, target)} resource "${plural}" in API group "${resource.group}" ${scope}`;
  return status(403, 'Forbidden', message, { ...(name !== undefined ? { name } : {}), ...(resource.group ? { group: resource.group } : {}), kind: resource.plural });
}

function notFound(plural: string, name: string): Record<string, unknown> {
  return status(404, 'NotFound', `${plural} "${name}" not found`, { name, kind: plural });
}

function send(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function listen(server: Server, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
}
