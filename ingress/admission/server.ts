// ingress-nginx's validating admission webhook (--validating-webhook), served over HTTPS: the API server POSTs an
// AdmissionReview for each Ingress write (the path is the ValidatingWebhookConfiguration's; any is taken, as in
// ingress-nginx) and gets the verdict of check.ts back. The certificate and key files are followed as
// --default-certificate's are (tls/default-files.ts): a renewed pair is served from the next handshake.
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Histogram, type Registry } from 'prom-client';
import type { HostPort } from '../../runtime/flags.ts';
import type { Logger } from '../../runtime/logger.ts';
import { DefaultCertificateFiles } from '../tls/default-files.ts';
import { loadKeyPair, isKeyPair } from '../tls/keypair.ts';
import type { Verdict } from './check.ts';
import { BadReviewError, readReview, reviewResponse, subjectOf } from './review.ts';
import type { Ingress } from '../../cluster/model/ingress.ts';

/** Largest AdmissionReview read: an object and its old version, each up to the API server's 3 MiB. */
const maxBody = 8 << 20;

/** Options of AdmissionServer. */
export interface AdmissionServerOptions {
  listen: HostPort;
  certPath: string;
  keyPath: string;
  log: Logger;
  registry: Registry;
  /** The verdict on an Ingress write. */
  check(ingress: Ingress): Verdict;
  /** Told each Ingress judged and whether it was allowed (ingress-nginx's check counters). */
  judged?(namespace: string, name: string, allowed: boolean): void;
  /** Time between looks at the certificate files without a change event (default 10 s). */
  intervalMs?: number;
}

/** The webhook's HTTPS server. */
export class AdmissionServer {
  readonly #o: AdmissionServerOptions;
  readonly #files: DefaultCertificateFiles;
  readonly #server: Server;
  readonly #reviews: Counter<'result'>;
  readonly #duration: Histogram;

  /** Reads the certificate files (throws BadCertificateError naming the file at fault when they hold no usable pair). */
  constructor(options: AdmissionServerOptions) {
    this.#o = options;
    this.#files = new DefaultCertificateFiles({
      certPath: options.certPath,
      keyPath: options.keyPath,
      log: options.log,
      role: { what: 'admission webhook certificate', flag: '--validating-webhook-certificate and --validating-webhook-key' },
      ...(options.intervalMs !== undefined ? { intervalMs: options.intervalMs } : {}),
    });
    const pems = this.#files.load();
    // The API server keeps its connections; a request is small and answered at once.
    this.#server = createServer({ ...pems, requestTimeout: 30_000, headersTimeout: 10_000, keepAliveTimeout: 60_000 }, (req, res) => this.#serve(req, res));
    this.#server.on('tlsClientError', (err) => options.log.debug({ err: err.message }, 'admission webhook: TLS handshake failed'));
    const registers = [options.registry];
    this.#reviews = new Counter({
      name: 'netplane_ingress_admission_reviews_total',
      help: 'AdmissionReviews answered by the validating webhook, by result (allowed, denied, bad_request: not an AdmissionReview, or the check failed).',
      labelNames: ['result'],
      registers,
    });
    this.#duration = new Histogram({
      name: 'netplane_ingress_admission_review_duration_seconds',
      help: 'Time to judge an Ingress write (the route table compiled with it).',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers,
    });
  }

  /** Listens; resolves with the port. */
  async listen(): Promise<number> {
    const { host, port } = this.#o.listen;
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, host, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    this.#files.follow({
      setDefault: (p, names) => {
        const pair = loadKeyPair(p.cert, p.key, names);
        if (isKeyPair(pair)) this.#server.setSecureContext({ cert: pair.cert, key: pair.key });
        return pair;
      },
    });
    return (this.#server.address() as AddressInfo).port;
  }

  /** Stops listening and following the files. */
  async close(): Promise<void> {
    this.#files.close();
    this.#server.closeAllConnections();
    await new Promise((r) => this.#server.close(r));
  }

  #serve(req: IncomingMessage, res: ServerResponse): void {
    if (req.method !== 'POST') {
      res.writeHead(405, { allow: 'POST', 'content-type': 'text/plain' }).end('POST an AdmissionReview\n');
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBody) {
        this.#bad(res, 413, `the AdmissionReview is larger than ${maxBody} bytes`);
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (size > maxBody) return;
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        return this.#bad(res, 400, 'the body is not JSON');
      }
      try {
        this.#answer(res, body);
      } catch (e) {
        if (e instanceof BadReviewError) return this.#bad(res, 400, e.message);
        // A fault of netplane's own: the API server applies the webhook's failurePolicy.
        this.#o.log.error({ err: (e as Error).stack }, 'admission webhook: the check failed');
        this.#bad(res, 500, 'the check failed inside netplane; see its log');
      }
    });
  }

  #answer(res: ServerResponse, body: unknown): void {
    const started = performance.now();
    const request = readReview(body);
    const subject = subjectOf(request);
    let verdict: Verdict;
    if ('ingress' in subject) {
      verdict = this.#o.check(subject.ingress);
      this.#o.judged?.(subject.ingress.metadata.namespace, subject.ingress.metadata.name, verdict.allowed);
    }
    else if ('refuse' in subject) verdict = { allowed: false, message: subject.refuse, warnings: [] };
    else verdict = { allowed: true, warnings: subject.pass === '' ? [] : [subject.pass] };
    const seconds = (performance.now() - started) / 1000;
    this.#duration.observe(seconds);
    this.#reviews.inc({ result: verdict.allowed ? 'allowed' : 'denied' });
    const object = (request.object ?? {}) as { metadata?: { namespace?: string; name?: string } };
    const name = `${object.metadata?.namespace ?? request.namespace ?? ''}/${object.metadata?.name ?? request.name ?? ''}`;
    const fields = { uid: request.uid, operation: request.operation, ingress: name, ms: Math.round(seconds * 1000) };
    if (verdict.allowed) this.#o.log.debug({ ...fields, warnings: verdict.warnings }, 'admission webhook: allowed');
    else this.#o.log.info({ ...fields, reason: verdict.message }, 'admission webhook: denied');
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(reviewResponse(request, verdict)));
  }

  #bad(res: ServerResponse, status: number, message: string): void {
    this.#reviews.inc({ result: 'bad_request' });
    if (!res.headersSent) res.writeHead(status, { 'content-type': 'text/plain', connection: 'close' }).end(`${message}\n`);
  }
}
