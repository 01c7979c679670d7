// The default certificate from a Secret (--default-certificate NAMESPACE/NAME, the form of ingress-nginx's
// --default-ssl-certificate): its tls.crt and tls.key, followed in the cluster view, so that a renewed certificate
// (cert-manager renewing the Secret) is served from the next handshake. Until the Secret is read, and while it is not
// in the cluster or holds a pair that cannot be served, the certificate served stays as it is — the self-signed one
// made at start, or the Secret's last good pair —, said once per reason (ingress-nginx serves its fake certificate
// then, and logs it).
import { createHash } from 'node:crypto';
import { secretValue } from '../../cluster/model/secret.ts';
import type { Store } from '../../cluster/store.ts';
import type { Logger } from '../../runtime/logger.ts';
import type { DefaultCertificateSink } from './default-files.ts';
import { isKeyPair, validityProblem } from './keypair.ts';

/** Options of DefaultCertificateSecret. */
export interface DefaultCertificateSecretOptions {
  store: Store;
  /** `namespace/name` of the Secret. */
  secret: string;
  sink: DefaultCertificateSink;
  log: Logger;
  /** Told true while the Secret is missing or holds a pair that cannot be served, false once its pair is served. */
  onProblem?: (problem: boolean) => void;
}

/** A `NAMESPACE/NAME` --default-certificate: a Secret, as opposed to the `CERT.pem,KEY.pem` files. */
export const isSecretRef = (flag: string): boolean => !flag.includes(',');

/** Serves the Secret's pair as the default certificate, now and at each change of the Secret, until close. */
export class DefaultCertificateSecret {
  readonly #o: DefaultCertificateSecretOptions;
  /** Hash of the content served, or looked at and found unusable. */
  #seen = '';
  /** The reason reported last; undefined while the Secret's pair is served. */
  #reported: string | undefined;
  #unsubscribe: Array<() => void> = [];

  constructor(options: DefaultCertificateSecretOptions) {
    this.#o = options;
  }

  /** Looks at the Secret now and at every change of it, of its first read, and of the view's first sync. */
  start(): void {
    const { store, secret } = this.#o;
    this.#unsubscribe.push(
      store.subscribe((changes) => changes.some((c) => c.kind === 'Secret' && c.key === secret) && this.check()),
      store.onLoaded((kind, key) => kind === 'Secret' && key === secret && this.check()),
      store.onStatus((s) => s.synced && this.check()),
    );
    this.check();
  }

  /** Stops following the Secret. */
  close(): void {
    for (const u of this.#unsubscribe) u();
    this.#unsubscribe = [];
  }

  /** Serves the Secret's pair when it is new and usable; reports a Secret missing or unusable, once per reason. */
  check(): void {
    const { store, secret: ref, log } = this.#o;
    const secret = store.get('Secret', ref);
    if (secret === undefined) {
      // Not read yet: by reference, still loading (or not wanted yet); otherwise before the first full view.
      const wanted = store.wanted('Secret');
      const pending = wanted !== undefined ? !wanted.has(ref) || store.loading('Secret').includes(ref) : !store.status.synced;
      if (pending) return;
      // The same content coming back is served again (and the problem is over).
      this.#seen = '';
      return this.#problem(`Secret ${ref} is not in the cluster`);
    }
    const cert = secretValue(secret, 'tls.crt')?.toString('utf8') ?? '';
    const key = secretValue(secret, 'tls.key')?.toString('utf8') ?? '';
    const content = createHash('sha256').update(cert).update('\0').update(key).digest('hex');
    if (content === this.#seen) return;
    this.#seen = content;
    if (cert === '' || key === '') return this.#problem(`Secret ${ref} has no ${cert === '' ? 'tls.crt' : 'tls.key'}`);
    const pair = this.#o.sink.setDefault({ cert, key }, { cert: 'tls.crt', key: 'tls.key' });
    if (!isKeyPair(pair)) return this.#problem(`Secret ${ref}: ${pair.reason}`);
    const fields = { secret: ref, subject: pair.subject, notAfter: pair.notAfter.toISOString() };
    const invalid = validityProblem(pair, new Date());
    if (invalid) log.warn({ ...fields, reason: invalid }, `default TLS certificate from Secret ${ref}; it is not valid now, served anyway`);
    else log.info(fields, `default TLS certificate from Secret ${ref}`);
    if (this.#reported !== undefined) this.#o.onProblem?.(false);
    this.#reported = undefined;
  }

  #problem(reason: string): void {
    if (this.#reported === reason) return;
    this.#reported = reason;
    this.#o.log.warn({ reason }, `--default-certificate: ${reason}; keeping the default certificate served now`);
    this.#o.onProblem?.(true);
  }
}
