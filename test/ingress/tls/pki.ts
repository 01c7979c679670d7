// Test certificates, Secrets, a route table stand-in and a TLS client for the certificate tests.
import { connect, type DetailedPeerCertificate } from 'node:tls';
import { generate } from 'selfsigned';
import { secretSchema, type Secret } from '../../../cluster/model/secret.ts';
import type { ClientCertPolicy, ObjectRef, TlsChoice } from '../../../ingress/routes/types.ts';

/** A PEM certificate chain and key. */
export interface Pems {
  cert: string;
  key: string;
}

/** A self-signed (or `ca`-signed) EC certificate for `cn` with DNS SANs `names`. */
export async function makeCert(cn: string, names: string[] = [cn], opts: { notBefore?: Date; notAfter?: Date; ca?: Pems; isCa?: boolean } = {}): Promise<Pems> {
  const pems = await generate([{ name: 'commonName', value: cn }], {
    keyType: 'ec',
    algorithm: 'sha256',
    ...(opts.notBefore ? { notBeforeDate: opts.notBefore } : {}),
    ...(opts.notAfter ? { notAfterDate: opts.notAfter } : {}),
    ...(opts.ca ? { ca: opts.ca } : {}),
    extensions: [
      { name: 'basicConstraints', cA: opts.isCa ?? false },
      ...(opts.isCa ? [{ name: 'keyUsage' as const, keyCertSign: true, digitalSignature: true }] : []),
      // No names: no subjectAltName at all, the certificate names its host in the CN alone (as before RFC 2818's rule).
      ...(names.length > 0 ? [{ name: 'subjectAltName' as const, altNames: names.map((value) => ({ type: 2 as const, value })) }] : []),
    ],
  });
  return { cert: pems.cert, key: pems.private };
}

/** A Secret as the API server hands it out, built through the real schema. */
export function tlsSecret(ref: string, data: Record<string, string>, type = 'kubernetes.io/tls'): Secret {
  const [namespace, name] = ref.split('/');
  return secretSchema.parse({ metadata: { namespace, name }, type, stringData: data });
}

/** The TLS data of a kubernetes.io/tls Secret. */
export function pemData(p: Pems): Record<string, string> {
  return { 'tls.crt': p.cert, 'tls.key': p.key };
}

/** A stand-in route table: TLS hosts to Secrets (exact, then `*.parent`), plus the Secrets auth policies name. */
export class FakeTable {
  readonly secrets: ReadonlySet<string>;
  #hosts: Map<string, TlsChoice>;

  /** `hosts`: host → `namespace/name` of its Secret, or null for "TLS with the default certificate". */
  constructor(hosts: Record<string, string | null>, authSecrets: string[] = []) {
    this.#hosts = new Map(Object.entries(hosts).map(([h, s]) => [h, s ? { secret: toRef(s) } : {}]));
    this.secrets = new Set([...Object.values(hosts).filter((s): s is string => !!s), ...authSecrets]);
  }

  readonly clientCas: ReadonlySet<string> = new Set();

  /** No host of this stand-in checks client certificates. */
  clientCert(_host: string): ClientCertPolicy | undefined {
    return undefined;
  }

  /** Exact host, then the wildcard of its parent domain. */
  tls(host: string): TlsChoice | undefined {
    return this.#hosts.get(host) ?? this.#hosts.get(`*.${host.slice(host.indexOf('.') + 1)}`);
  }
}

function toRef(key: string): ObjectRef {
  const [namespace = '', name = ''] = key.split('/');
  return { namespace, name };
}

/** A Secret lookup over a list of Secrets. */
export function lookup(...secrets: Secret[]): (ref: ObjectRef) => Secret | undefined {
  return (ref) => secrets.find((s) => s.metadata.namespace === ref.namespace && s.metadata.name === ref.name);
}

/** What a client saw in one handshake. */
export interface Handshake {
  cn: string;
  san: string | undefined;
  alpn: string | false;
  peer: DetailedPeerCertificate;
}

/** Connects to 127.0.0.1:port with SNI `servername` (none when '') and reports the server's certificate. */
export function handshake(port: number, servername: string, alpn?: string[]): Promise<Handshake> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false, ...(alpn ? { ALPNProtocols: alpn } : {}) }, () => {
      const peer = socket.getPeerCertificate(true);
      resolve({ cn: String(peer.subject.CN), san: peer.subjectaltname, alpn: socket.alpnProtocol ?? false, peer });
      socket.end();
    });
    socket.on('error', reject);
  });
}
