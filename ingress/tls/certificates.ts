// The gateway's server certificates: one SecureContext per TLS Secret the routes reference, picked at the handshake
// by SNI through the route table, and a default certificate for every other name. Contexts are built when a Secret's
// content changes (keyed by a hash of tls.crt and tls.key), never per handshake, so a renewed certificate is served
// from the next handshake on and unchanged Secrets cost nothing on update. A host guarded by client certificates
// (auth-tls-secret) gets a context that also carries its CA bundle, and its handshake asks for a certificate.
import { createHash, type X509Certificate } from 'node:crypto';
import { createSecureContext, type SecureContext, type TLSSocket } from 'node:tls';
import { secretValue, type Secret } from '../../cluster/model/secret.ts';
import type { Logger } from '../../runtime/logger.ts';
import type { ObjectRef, RouteTable, TlsChoice } from '../routes/types.ts';
import { generateDefaultCertificate } from './default-certificate.ts';
import { BadCertificateError } from './errors.ts';
import { isKeyPair, loadKeyPair, validityProblem, type KeyPair, type KeyPairProblem, type PartNames } from './keypair.ts';
import { askForClientCertificate, clientAuthMark, markResumed, parseCaBundle } from './client-auth.ts';

/** The part of a route table the certificates read. */
export type TlsTable = Pick<RouteTable, 'tls' | 'secrets' | 'clientCert' | 'clientCas'>;

/** A CA bundle (a Secret's ca.crt) as last looked at, and the last good one. */
interface CaState {
  seen: string;
  served?: { pem: string; hash: string; anchors: readonly X509Certificate[] };
  problem?: string;
}

/** A Secret whose certificate is not served as it is now, and why (no key material). */
export interface CertificateProblem {
  /** `namespace/name`. */
  secret: string;
  reason: string;
}

/** What we know of one TLS Secret: the content last looked at, the key pair served, and what is wrong with the content. */
interface SecretState {
  /** Hash of the content last looked at. */
  seen: string;
  /** The last good key pair, and the hash of its content. */
  served?: KeyPair & { hash: string };
  /** Why the content last looked at is not served; undefined when it is. */
  problem?: string;
}

type TlsData = { cert: string; key: string } | { problem: string };

const noRoutes: TlsTable = { tls: () => undefined, secrets: new Set(), clientCert: () => undefined, clientCas: new Set() };
const secretParts = { cert: 'tls.crt', key: 'tls.key' };

/**
 * The TLS data of a Secret: type kubernetes.io/tls, or Opaque with tls.crt and tls.key as ingress-nginx accepts.
 * Undefined for a Secret that is not meant for TLS (an Opaque auth Secret, or any other type).
 */
function tlsData(secret: Secret): TlsData | undefined {
  const cert = secretValue(secret, 'tls.crt');
  const key = secretValue(secret, 'tls.key');
  const isTlsType = secret.type === 'kubernetes.io/tls';
  if (!isTlsType && secret.type !== 'Opaque') return undefined;
  if (cert?.length && key?.length) return { cert: cert.toString('utf8'), key: key.toString('utf8') };
  if (!isTlsType && !cert && !key) return undefined;
  const missing = [cert?.length ? '' : 'tls.crt', key?.length ? '' : 'tls.key'].filter(Boolean).join(' and ');
  return { problem: `${missing} missing or empty` };
}

/** A `namespace/name` key as an ObjectRef; undefined when it has no '/'. */
function parseRef(key: string): ObjectRef | undefined {
  const slash = key.indexOf('/');
  return slash <= 0 ? undefined : { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

/** The gateway's certificates: one SecureContext per kubernetes.io/tls Secret, chosen by SNI, and a default. */
export class Certificates {
  /** For tls.createServer / http2.createSecureServer: picks the context by SNI; an unknown name gets the default. */
  readonly sniCallback: (this: TLSSocket, servername: string, cb: (err: Error | null, ctx?: SecureContext) => void) => void;
  #log: Logger;
  #default: KeyPair;
  #table: TlsTable = noRoutes;
  #states = new Map<string, SecretState>();
  /** Referenced Secrets that hold no TLS data, and why: a problem once a TLS host is seen to name them. */
  #notTls = new Map<string, string>();
  /** Secrets a TLS host named at a handshake; the table's `secrets` also holds auth Secrets, so this tells them apart. */
  #tlsRefs = new Set<string>();
  /** Whether a served key pair's certificate names a host (checkHost), by host; the warning for `false` is logged once. */
  #named = new WeakMap<KeyPair, Map<string, boolean>>();
  /** CA bundles of referenced Secrets that have a ca.crt. */
  #cas = new Map<string, CaState>();
  /** Contexts of guarded hosts: by key pair, then by CA bundle hash; dropped when anything changes. */
  #guarded = new WeakMap<KeyPair, Map<string, SecureContext>>();
  /**
   * Called when a CA bundle changes or goes: the listener forgets its TLS session tickets, so that no session
   * verified against the old bundle is resumed.
   */
  onClientCaChange?: () => void;
  /**
   * Called when the default certificate is replaced (setDefault): the listener takes `defaultOptions` as its own
   * context (server.setSecureContext), which answers handshakes without SNI; those with SNI read it here.
   */
  onDefaultChange?: () => void;

  /**
   * With the default certificate given (PEM), else a self-signed one generated now (EC P-256, one year). Throws
   * BadCertificateError when the given default certificate and key do not form a usable key pair.
   */
  static async create(options: { log: Logger; defaultCertificate?: { cert: string; key: string } }): Promise<Certificates> {
    const given = options.defaultCertificate;
    const pems = given ?? (await generateDefaultCertificate());
    const pair = loadKeyPair(pems.cert, pems.key, { cert: 'the default certificate', key: 'the default certificate key' });
    if (!isKeyPair(pair)) throw new BadCertificateError(`Cannot serve the default certificate: ${pair.reason}.`);
    const invalid = validityProblem(pair, new Date());
    if (invalid) options.log.warn({ subject: pair.subject, reason: invalid }, 'default TLS certificate is not valid now; serving it anyway');
    options.log.info({ subject: pair.subject, notAfter: pair.notAfter.toISOString(), generated: !given }, 'default TLS certificate');
    return new Certificates(options.log, pair);
  }

  /** Use Certificates.create. */
  constructor(log: Logger, defaultPair: KeyPair) {
    this.#log = log;
    this.#default = defaultPair;
    const self = this;
    this.sniCallback = function (this: TLSSocket, servername, cb) {
      // Node calls the SNI callback on the TLS socket of the handshake (lib/_tls_wrap.js loadSNI).
      cb(null, self.#contextFor(servername, typeof this === 'object' && this !== null && 'encrypted' in this ? this : undefined));
    };
  }

  /** The default certificate (chain) and key, PEM, for the server's own options (the current ones). */
  get defaultOptions(): { cert: string; key: string } {
    return { cert: this.#default.cert, key: this.#default.key };
  }

  /**
   * Serves `pems` as the default certificate from the next handshake on, when they form a usable key pair (an
   * expired one is served, as a Secret's is; the caller reports it); otherwise keeps the current one. Returns the
   * key pair now served, or why `pems` are not; reasons call the parts as `names` says.
   */
  setDefault(pems: { cert: string; key: string }, names: PartNames): KeyPair | KeyPairProblem {
    const pair = loadKeyPair(pems.cert, pems.key, names);
    if (!isKeyPair(pair)) return pair;
    this.#default = pair;
    this.onDefaultChange?.();
    return pair;
  }

  /**
   * Re-reads the Secrets the routes reference; call after routes or Secrets change. A bad new version of a Secret
   * keeps its last good certificate; a deleted or unreferenced Secret is dropped (its hosts get the default).
   */
  update(table: TlsTable, secrets: (ref: ObjectRef) => Secret | undefined): void {
    const live = new Set<string>();
    const notTls = new Map<string, string>();
    for (const key of table.secrets) {
      const ref = parseRef(key);
      if (!ref) continue;
      const secret = secrets(ref);
      const data = secret && tlsData(secret);
      if (!data) {
        notTls.set(key, secret ? `Secret of type ${secret.type} has no tls.crt and tls.key` : 'Secret not found');
        continue;
      }
      live.add(key);
      this.#load(key, data);
    }
    // Only the Secrets that guard a host: TLS Secrets often carry a ca.crt too (cert-manager's do), meant for no one here.
    const cas = new Set<string>();
    for (const key of table.clientCas) {
      const ref = parseRef(key);
      const secret = ref && secrets(ref);
      const pem = secret ? secretValue(secret, 'ca.crt') : undefined;
      if (!pem) continue;
      cas.add(key);
      this.#loadCa(key, pem.toString('utf8'));
    }
    for (const key of this.#cas.keys()) {
      if (!cas.has(key)) {
        this.#cas.delete(key);
        this.#guarded = new WeakMap();
        this.onClientCaChange?.();
      }
    }
    for (const key of this.#states.keys()) {
      if (!live.has(key)) {
        this.#states.delete(key);
        this.#guarded = new WeakMap();
        this.#log.info({ secret: key }, 'TLS Secret no longer served');
      }
    }
    for (const key of this.#tlsRefs) if (!table.secrets.has(key)) this.#tlsRefs.delete(key);
    this.#notTls = notTls;
    this.#table = table;
  }

  /** Secrets (namespace/name) whose certificate is not usable now, with the reason; sorted by Secret. */
  problems(): CertificateProblem[] {
    const now = new Date();
    const out: CertificateProblem[] = [];
    for (const [secret, state] of this.#states) {
      if (state.problem) {
        const fallback = state.served ? 'serving its last good certificate' : 'its hosts get the default certificate';
        out.push({ secret, reason: `${state.problem}; ${fallback}` });
      }
      const invalid = state.served && validityProblem(state.served, now);
      if (invalid) out.push({ secret, reason: `${invalid}; served anyway` });
    }
    for (const [secret, ca] of this.#cas) {
      if (ca.problem) out.push({ secret, reason: `${ca.problem}; ${ca.served ? 'checking client certificates against its last good ca.crt' : 'hosts it guards answer 503'}` });
    }
    for (const secret of this.#tlsRefs) {
      const reason = this.#notTls.get(secret);
      if (reason) out.push({ secret, reason: `${reason}; its hosts get the default certificate` });
    }
    return out.sort((a, b) => (a.secret < b.secret ? -1 : a.secret > b.secret ? 1 : 0));
  }

  /** Looks at one Secret's ca.crt; a bad new version keeps the last good bundle. */
  #loadCa(key: string, pem: string): void {
    const hash = createHash('sha256').update(pem).digest('hex');
    const state = this.#cas.get(key);
    if (state?.seen === hash) return;
    const anchors = parseCaBundle(pem);
    if (Array.isArray(anchors)) {
      this.#cas.set(key, { seen: hash, served: { pem, hash, anchors } });
      this.#log.info({ secret: key, certificates: anchors.length }, 'checking client certificates against CA bundle');
    } else {
      this.#cas.set(key, { seen: hash, served: state?.served, problem: anchors.reason });
      this.#log.warn({ secret: key, reason: anchors.reason }, `CA bundle not usable; ${state?.served ? 'keeping the last good one' : 'the hosts it guards answer 503'}`);
    }
    this.#guarded = new WeakMap();
    if (state !== undefined) this.onClientCaChange?.();
  }

  /**
   * For a connection that resumed a TLS session (no SNI callback ran): when its name is a guarded host, records the
   * host's CA and the verification result the session kept from its first handshake. Sessions verified against
   * a bundle since changed are not resumed at all (onClientCaChange).
   */
  resumed(socket: TLSSocket): void {
    if (!socket.isSessionReused() || clientAuthMark in socket) return;
    const name = typeof socket.servername === 'string' ? socket.servername.toLowerCase().replace(/\.$/, '') : '';
    const guard = name === '' ? undefined : this.#table.clientCert(name);
    if (!guard) return;
    const ca = `${guard.secret.namespace}/${guard.secret.name}`;
    const bundle = this.#cas.get(ca)?.served;
    markResumed(socket, { ca, ...(bundle ? { anchors: bundle.anchors } : {}) });
  }

  /** Looks at one TLS Secret's content; builds a context only when the content is new. */
  #load(key: string, data: TlsData): void {
    const hash = 'problem' in data ? `bad:${data.problem}` : createHash('sha256').update(data.cert).update('\0').update(data.key).digest('hex');
    const state = this.#states.get(key);
    if (state?.seen === hash) return;
    if (state?.served?.hash === hash) {
      // Back to the content already served (a bad version was reverted): nothing to build.
      this.#states.set(key, { seen: hash, served: state.served });
      this.#log.info({ secret: key }, 'TLS Secret is good again');
      return;
    }
    const pair = 'problem' in data ? { reason: data.problem } : loadKeyPair(data.cert, data.key, secretParts);
    if (isKeyPair(pair)) {
      this.#states.set(key, { seen: hash, served: { ...pair, hash } });
      this.#guarded = new WeakMap();
      const fields = { secret: key, subject: pair.subject, notAfter: pair.notAfter.toISOString() };
      const invalid = validityProblem(pair, new Date());
      if (invalid) this.#log.warn({ ...fields, reason: invalid }, 'TLS certificate is not valid now; serving it anyway');
      else this.#log.info(fields, 'serving TLS certificate');
      return;
    }
    this.#states.set(key, { seen: hash, served: state?.served, problem: pair.reason });
    const outcome = state?.served ? 'keeping its last good certificate' : 'its hosts get the default certificate';
    this.#log.warn({ secret: key, reason: pair.reason }, `TLS Secret not usable; ${outcome}`);
  }

  /**
   * The context for an SNI name: the route table's Secret for the host when it has a good one, else the default;
   * for a host guarded by client certificates, that certificate with the host's CA bundle, and the handshake on
   * `socket` asks the client for its certificate.
   */
  #contextFor(servername: string, socket: TLSSocket | undefined): SecureContext {
    // DNS names are case-insensitive (RFC 4343) and may arrive fully qualified with a trailing dot.
    const host = servername.toLowerCase().replace(/\.$/, '');
    const pair = this.#pairFor(host);
    const guard = socket && this.#table.clientCert(host);
    if (!guard) return pair.context;
    const ca = `${guard.secret.namespace}/${guard.secret.name}`;
    const bundle = this.#cas.get(ca)?.served;
    if (!askForClientCertificate(socket, { ca, ...(bundle ? { anchors: bundle.anchors } : {}) }) || !bundle) return pair.context;
    // Looked up by identity: no hashing in the handshake.
    let byCa = this.#guarded.get(pair);
    if (!byCa) this.#guarded.set(pair, (byCa = new Map()));
    let context = byCa.get(bundle.hash);
    if (!context) byCa.set(bundle.hash, (context = createSecureContext({ cert: pair.cert, key: pair.key, ca: bundle.pem })));
    return context;
  }

  /**
   * When the certificate of a TLS host's Secret runs out, for the host as the table lists it (`*.parent` for a
   * wildcard); undefined when the host is served the default certificate instead (no usable Secret, or one that
   * does not name it). Logs nothing: read at scrape time.
   */
  expiry(host: string, choice: TlsChoice): Date | undefined {
    const ref = choice.secret;
    if (!ref) return undefined;
    const pair = this.#states.get(`${ref.namespace}/${ref.name}`)?.served;
    if (!pair) return undefined;
    // A wildcard host is checked with a name under it, as a handshake for one would be.
    const named = host.startsWith('*.') ? pair.leaf.checkHost(`x${host.slice(1)}`) !== undefined : (this.#named.get(pair)?.get(host) ?? pair.leaf.checkHost(host) !== undefined);
    return named ? pair.notAfter : undefined;
  }

  /** Whether `pair`'s certificate names `host`; the first `false` for a pair and host is logged. */
  #names(pair: KeyPair, host: string, secret: string, ingress: string | undefined): boolean {
    let byHost = this.#named.get(pair);
    if (!byHost) this.#named.set(pair, (byHost = new Map()));
    let named = byHost.get(host);
    if (named === undefined) {
      // checkHost follows RFC 6125: the SANs when the certificate has DNS ones (a wildcard covers one label), else the CN.
      named = pair.leaf.checkHost(host) !== undefined;
      byHost.set(host, named);
      if (!named) {
        this.#log.warn({ ingress, host, secret, subject: pair.subject }, `TLS certificate of Secret ${secret} (Ingress ${ingress ?? 'unknown'}) does not contain a Common Name or Subject Alternative Name for host ${host}; serving the default certificate`);
      }
    }
    return named;
  }

  /**
   * The key pair served for a host: its Secret's when good and its certificate names the host (a wildcard SAN
   * counts), else the default — as ingress-nginx, which logs that the certificate "does not contain a Common Name or
   * Subject Alternative Name" for the server and serves the default certificate.
   */
  #pairFor(host: string): KeyPair {
    const choice = this.#table.tls(host);
    const ref = choice?.secret;
    if (!ref) return this.#default;
    const key = `${ref.namespace}/${ref.name}`;
    const served = this.#states.get(key)?.served;
    if (served) return this.#names(served, host, key, choice.ingress) ? served : this.#default;
    if (!this.#tlsRefs.has(key)) {
      this.#tlsRefs.add(key);
      const reason = this.#notTls.get(key) ?? this.#states.get(key)?.problem ?? 'not referenced by the routes';
      this.#log.warn({ secret: key, host, reason }, 'no usable certificate for a TLS host; serving the default certificate');
    }
    return this.#default;
  }
}
