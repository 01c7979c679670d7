// Upgrade pass-through (WebSocket and any other `Upgrade:` over HTTP/1.1 but h2c): a raw TCP (or TLS) connection to
// the endpoint, the request head written as the client sent it (hop-by-hop headers dropped except Upgrade, without
// its h2c tokens, with `Connection: Upgrade`), then, after a 101, bytes relayed both ways. A non-101 answer is
// relayed and the connection closed; nothing the client sent after its request head reaches the upstream then.
import type { IncomingMessage } from 'node:http';
import { connect as netConnect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import type { Logger } from '../../runtime/logger.ts';
import { affinitySetCookie, readCookie } from './affinity.ts';
import { rewriteSetCookieHead } from './cookie-rewrite.ts';
import type { Backend } from './backend.ts';
import { UpstreamError, classifyError, passesToNext, statusText, type UpstreamErrorCode } from './errors.ts';
import { type ForwardResult, type ForwardTarget, forwardResult, hasBody, maxAttempts } from './forward.ts';
import { isH2cToken, isHiddenResponseHeader, isSafeHeaderValue, upgradeTokens, upstreamRequestHeaders } from './headers.ts';
import { overTls, type UpstreamEndpoint } from './pool.ts';

const headerEnd = Buffer.from('\r\n\r\n');
/** Largest upstream response head accepted, as nginx's default proxy_buffer_size order of magnitude. */
const maxHead = 64 * 1024;
const tokenName = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** The request head to write upstream, or an UpstreamError when a header or the path cannot be written safely. */
export function upgradeRequestHead(req: IncomingMessage, target: ForwardTarget): string | UpstreamError {
  if (!/^\S+$/.test(target.path)) return new UpstreamError('INVALID_REQUEST', `path ${JSON.stringify(target.path)} cannot be sent upstream`);
  const headers = upstreamRequestHeaders(req.rawHeaders, target.headers, true);
  let head = `${req.method ?? 'GET'} ${target.path} HTTP/1.1\r\n`;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] as string;
    let value = headers[i + 1] as string;
    // An h2c token goes nowhere (isH2cToken); the others of the header stay (`h2c, websocket`: websocket).
    if (name.length === 7 && name.toLowerCase() === 'upgrade') {
      value = upgradeTokens(value).filter((t) => !isH2cToken(t)).join(', ');
      if (value === '') continue;
    }
    if (!tokenName.test(name) || !isSafeHeaderValue(value)) return new UpstreamError('INVALID_REQUEST', `header ${JSON.stringify(name)} cannot be sent upstream`);
    head += `${name}: ${value}\r\n`;
  }
  return `${head}Connection: Upgrade\r\n\r\n`;
}

/**
 * A raw response head (status line and header lines, each ending in CRLF) as the client gets it: without the headers
 * nginx's proxy module hides by default (the backend's Date, Server, X-Pad, X-Accel-*: isHiddenResponseHeader), with
 * the gateway's own `Date` (an HTTP-date, `date`) after the status line, as nginx writes a 101 or any other answer.
 */
export function clientHead(head: Buffer, date: string): Buffer {
  const lines = head.toString('latin1').split('\r\n');
  const kept: string[] = [lines[0]!, `Date: ${date}`];
  let dropping = false;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    // A line starting with a space or tab continues the previous header (obs-fold): it goes where that header goes.
    if (line !== '' && (line.charCodeAt(0) === 32 || line.charCodeAt(0) === 9)) {
      if (!dropping) kept.push(line);
      continue;
    }
    dropping = line !== '' && isHiddenResponseHeader(line.slice(0, line.indexOf(':')).trim().toLowerCase());
    if (!dropping) kept.push(line);
  }
  return Buffer.from(kept.join('\r\n'), 'latin1');
}

/**
 * A raw response head (status line and header lines, each ending in CRLF) with the headers of `extra`
 * (custom-headers: names and values checked as visible ASCII, routes/configmap-headers.ts) in place of any lines of
 * the same names, as nginx's more_set_headers sets them on every response, 101 included.
 */
export function withHeadersInHead(head: Buffer, extra: Readonly<Record<string, string>>): Buffer {
  const names = new Set(Object.keys(extra).map((n) => n.toLowerCase()));
  const lines = head.toString('latin1').split('\r\n');
  const kept = lines.filter((l, i) => i === 0 || l === '' || !names.has(l.slice(0, l.indexOf(':')).trim().toLowerCase()));
  const added = Object.entries(extra).map(([n, v]) => `${n}: ${v}\r\n`).join('');
  return Buffer.from(kept.join('\r\n') + added, 'latin1');
}

/** The raw HTTP/1.1 error response for an upgrade that failed. */
export function rawErrorResponse(status: number): string {
  const body = `${statusText(status)}\n`;
  return `HTTP/1.1 ${statusText(status)}\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`;
}

type Phase = 'connecting' | 'head' | 'relay' | 'done';

/** Relays one Upgrade request; resolves when both connections are closed (or at once on an error status). */
export class UpgradeRelay {
  readonly #backend: Backend | undefined;
  readonly #req: IncomingMessage;
  readonly #client: Duplex;
  readonly #head: Buffer;
  readonly #target: ForwardTarget;
  readonly #log: Logger;
  readonly #done: (result: ForwardResult) => void;
  #requestHead = '';
  #retriable = false;
  #member: UpstreamEndpoint | null = null;
  #cookieMember: UpstreamEndpoint | undefined;
  #tried: UpstreamEndpoint[] = [];
  #attempts = 0;
  #upstream: Socket | null = null;
  #phase: Phase = 'connecting';
  #received: Buffer[] = [];
  #receivedBytes = 0;
  #timer: NodeJS.Timeout | null = null;
  #status = 0;
  #open = 0;
  #finished = false;
  #t0 = 0;
  // The endpoint whose in-flight count this relay holds, released once.
  #counted: UpstreamEndpoint | null = null;

  constructor(backend: Backend | undefined, req: IncomingMessage, client: Duplex, head: Buffer, target: ForwardTarget, log: Logger, done: (result: ForwardResult) => void) {
    this.#backend = backend;
    this.#req = req;
    this.#client = client;
    this.#head = head;
    this.#target = target;
    this.#log = log;
    this.#done = done;
  }

  /** Picks an endpoint and connects. */
  start(): void {
    const client = this.#client;
    client.on('error', () => this.destroy());
    client.once('close', () => this.#onClientClose());
    const backend = this.#backend;
    if (backend === undefined || backend.members.length === 0) return this.#fail(503, 'NO_ENDPOINTS');
    const head = upgradeRequestHead(this.#req, this.#target);
    if (typeof head !== 'string') return this.#fail(400, head.code);
    // The relay sends no request body: bytes after the head go upstream only once it has switched protocols (a
    // chunked body would reach it unframed, read as the next request). A WebSocket handshake has none.
    if (hasBody(this.#req)) return this.#fail(400, 'INVALID_REQUEST');
    this.#requestHead = head;
    this.#retriable = this.#req.method === 'GET';
    const policy = this.#target.policy;
    const now = performance.now();
    let first: UpstreamEndpoint | undefined;
    if (policy.affinity !== undefined) {
      first = this.#cookieMember = backend.byCookie(readCookie(this.#req.headers.cookie, policy.affinity.cookieName), now);
    }
    first ??= backend.pick(policy, null, now, this.#target.hashKey);
    if (first === undefined) return this.#fail(503, 'NO_ENDPOINTS');
    this.#t0 = performance.now();
    this.#attempt(first);
  }

  /** Ends both connections now (shutdown). */
  destroy(): void {
    this.#upstream?.destroy();
    this.#client.destroy();
  }

  #attempt(m: UpstreamEndpoint): void {
    this.#member = m;
    this.#counted = m;
    m.inFlight++;
    this.#attempts++;
    this.#phase = 'connecting';
    this.#received = [];
    this.#receivedBytes = 0;
    const policy = this.#target.policy;
    const https = overTls(m.protocol);
    // As for forwarded requests: certificates not verified, no SNI (ingress-nginx defaults); see pool.ts.
    const up = https
      ? tlsConnect({ host: m.ip, port: m.port, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] })
      : netConnect({ host: m.ip, port: m.port });
    this.#upstream = up;
    this.#arm(policy.connectTimeoutMs, 'CONNECT_TIMEOUT');
    up.once(https ? 'secureConnect' : 'connect', () => {
      if (this.#upstream !== up) return;
      up.setNoDelay(true);
      this.#phase = 'head';
      this.#arm(policy.readTimeoutMs, 'READ_TIMEOUT');
      up.write(this.#requestHead);
    });
    up.on('data', (chunk: Buffer) => {
      if (this.#upstream === up && this.#phase === 'head') this.#onHeadData(chunk);
    });
    up.on('error', (err) => {
      if (this.#upstream === up && (this.#phase === 'connecting' || this.#phase === 'head')) this.#onAttemptError(err);
    });
    up.once('close', () => {
      if (this.#upstream !== up) return;
      if (this.#phase === 'connecting' || this.#phase === 'head') {
        this.#onAttemptError(new UpstreamError(this.#receivedBytes > 0 ? 'BAD_RESPONSE' : 'CONNECTION_RESET', 'upstream closed the connection before answering'));
      } else if (this.#phase === 'relay') {
        this.#closed();
      }
    });
  }

  #arm(ms: number, code: UpstreamErrorCode): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    const up = this.#upstream as Socket;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      up.destroy(new UpstreamError(code, `upstream ${code === 'CONNECT_TIMEOUT' ? 'connect' : 'read'} timed out after ${ms} ms`));
    }, ms);
  }

  #onHeadData(chunk: Buffer): void {
    this.#received.push(chunk);
    this.#receivedBytes += chunk.length;
    const all = this.#received.length === 1 ? chunk : Buffer.concat(this.#received);
    this.#received = [all];
    const end = all.indexOf(headerEnd);
    if (end === -1) {
      if (all.length > maxHead) return void (this.#upstream as Socket).destroy(new UpstreamError('BAD_RESPONSE', 'upstream response head too large'));
      // nginx's proxy_read_timeout runs between two successive reads: part of the head restarts it.
      this.#arm(this.#target.policy.readTimeoutMs, 'READ_TIMEOUT');
      return;
    }
    const match = /^HTTP\/1\.[01] (\d{3})/.exec(all.toString('latin1', 0, 16));
    if (match === null) {
      (this.#upstream as Socket).destroy(new UpstreamError('BAD_RESPONSE', 'upstream answer is not HTTP/1.x'));
      return;
    }
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    const m = this.#member as UpstreamEndpoint;
    (this.#backend as Backend).succeeded(m, performance.now());
    this.#status = Number(match[1]);
    this.#phase = 'relay';
    let head = clientHead(all.subarray(0, end + 2), new Date().toUTCString());
    const rewrite = this.#target.policy.cookieRewrite;
    if (rewrite !== undefined) head = rewriteSetCookieHead(head, rewrite);
    const affinity = this.#target.policy.affinity;
    const cookie = affinity !== undefined && m !== this.#cookieMember ? affinitySetCookie(affinity, m.cookie, this.#target.cookieScope) : undefined;
    if (cookie !== undefined) head = Buffer.concat([head, Buffer.from(`set-cookie: ${cookie}\r\n`, 'latin1')]);
    const extra = this.#target.responseHeaders;
    if (extra !== undefined) head = withHeadersInHead(head, extra);
    this.#relay(head, all.subarray(end + 2));
  }

  #relay(head: Buffer, rest: Buffer): void {
    const up = this.#upstream as Socket;
    const client = this.#client;
    const idle = this.#target.policy.readTimeoutMs;
    this.#open = 2;
    up.removeAllListeners('data');
    client.write(head);
    client.write(rest);
    // nginx applies proxy_read_timeout to upgraded connections too: idle ones are closed.
    up.setTimeout(idle, () => this.destroy());
    if (this.#status === 101) {
      // What the client sent after its request head goes only now, as nginx sends it after a 101: before, it would
      // reach the upstream as another request on the same connection (one the steps never saw) whenever the upstream
      // answered without switching.
      if (this.#head.length > 0) up.write(this.#head);
      up.pipe(client);
      client.pipe(up);
    } else {
      // Not upgraded: relay the answer (its body up to Content-Length, else until the upstream closes), then close.
      const length = /\r\ncontent-length:[ \t]*(\d+)/i.exec(head.toString('latin1'));
      let left = length === null ? Infinity : Number(length[1]) - (rest.length - 2);
      const stop = (): void => {
        up.destroy();
        client.end();
        client.once('finish', () => client.destroy());
      };
      if (left <= 0) return stop();
      up.on('data', (chunk: Buffer) => {
        left -= chunk.length;
        if (!client.write(chunk)) {
          up.pause();
          client.once('drain', () => up.resume());
        }
        if (left <= 0) stop();
      });
      up.once('end', () => client.end());
    }
  }

  #onAttemptError(err: Error): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    const m = this.#member as UpstreamEndpoint;
    (this.#upstream as Socket).destroy();
    this.#upstream = null;
    this.#release();
    if (this.#phase === 'done') return;
    const failure = classifyError(err);
    const backend = this.#backend as Backend;
    const now = performance.now();
    const log = { backend: this.#target.backend, endpoint: m.address, code: failure.code, attempt: this.#attempts, err: err.message };
    if (failure.connect) backend.failed(m, now);
    // As forward.ts: what proxy-next-upstream sends on, within proxy-next-upstream-timeout (a GET: idempotent).
    const policy = this.#target.policy;
    const inTime = (policy.nextUpstreamTimeoutMs ?? 0) === 0 || now - this.#t0 < (policy.nextUpstreamTimeoutMs ?? 0);
    if (passesToNext(policy.nextUpstream, failure.next, false) && inTime && this.#retriable && this.#receivedBytes === 0 && this.#attempts < (policy.upstreamTries ?? maxAttempts)) {
      this.#tried.push(m);
      const next = backend.pick(this.#target.policy, this.#tried, now, this.#target.hashKey);
      if (next !== undefined) {
        this.#log.debug(log, 'upstream upgrade attempt failed, trying another endpoint');
        return this.#attempt(next);
      }
    }
    this.#log.warn(log, 'upstream upgrade failed');
    this.#fail(failure.status, failure.code);
  }

  #onClientClose(): void {
    if (this.#phase === 'relay') return this.#closed();
    if (this.#phase === 'done') return;
    // Gone before the upstream answered.
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#upstream?.destroy();
    this.#upstream = null;
    this.#release();
    this.#phase = 'done';
    this.#finish(499, 'CLIENT_ABORTED');
  }

  // One side of a relayed connection closed: close the other; finish when both are.
  #closed(): void {
    this.#open--;
    if (this.#open === 1) {
      this.#upstream?.end();
      this.#client.end();
      // The other side gets as long as an idle connection to close too.
      this.#timer = setTimeout(() => this.destroy(), this.#target.policy.readTimeoutMs);
      return;
    }
    if (this.#open === 0) {
      if (this.#timer !== null) clearTimeout(this.#timer);
      this.#timer = null;
      this.#release();
      this.#phase = 'done';
      this.#finish(this.#status);
    }
  }

  #release(): void {
    if (this.#counted !== null) this.#counted.inFlight--;
    this.#counted = null;
  }

  #fail(status: number, code: UpstreamErrorCode): void {
    this.#phase = 'done';
    const client = this.#client;
    if (status !== 499 && client.writable) {
      client.end(rawErrorResponse(status));
      client.once('finish', () => client.destroy());
    } else {
      client.destroy();
    }
    this.#finish(status, code);
  }

  #finish(status: number, error?: UpstreamErrorCode): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#done(forwardResult(status, this.#attempts, this.#member, this.#t0, error));
  }
}
