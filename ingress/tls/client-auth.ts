// Client certificates (ingress-nginx auth-tls-*): what the handshake of a guarded host records on its socket, and
// what a request on that socket is then allowed. OpenSSL verifies the chain in the handshake against the CA bundle
// of the host's Secret (the SNI context carries it as `ca`); nothing here re-implements that verification. Here the
// verdict is read per request, against the check of the host the request names, which may not be the one the
// handshake was made for (HTTP/2 connection reuse, or a Host header that differs from the SNI name).
import { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { ClientCertPolicy } from '../routes/types.ts';
import { matchesUserRegex } from '../routes/user-regex.ts';
import { certificateBlocks } from './keypair.ts';

/** Set on a TLS socket whose handshake asked for a client certificate. */
export const clientAuthMark = Symbol('netplane.clientAuth');

/** What the handshake recorded: the CA Secret (`namespace/name`) it verified against, and that CA's certificates. */
export interface ClientAuthMark {
  ca: string;
  /** The CA bundle's certificates; undefined when the Secret had no usable `ca.crt` (no certificate was asked for). */
  anchors?: readonly X509Certificate[];
  /** The client's certificate and its number of intermediate CAs, read at the connection's first request. */
  peer?: { cert: X509Certificate; intermediates: number } | null;
}

/** Reads and checks a PEM CA bundle (a Secret's ca.crt); a reason when it holds no certificate or a malformed one. */
export function parseCaBundle(pem: string): X509Certificate[] | { reason: string } {
  const blocks = certificateBlocks(pem);
  if (blocks.length === 0) return { reason: 'ca.crt holds no PEM certificate' };
  const out: X509Certificate[] = [];
  for (const [i, block] of blocks.entries()) {
    try {
      out.push(new X509Certificate(block));
    } catch (e) {
      return { reason: `certificate ${i + 1} of ca.crt cannot be read: ${(e as Error).message}` };
    }
  }
  return out;
}

/**
 * Asks the client of this handshake for a certificate (without failing the handshake when there is none, so that
 * the refusal is an HTTP answer) and records the CA. Relies on the socket's handle offering `setVerifyMode`, as
 * Node's TLS sockets have for years; false when it does not (then nothing is asked, and guarded requests fail).
 */
export function askForClientCertificate(socket: TLSSocket, mark: ClientAuthMark): boolean {
  const s = socket as TLSSocket & { _handle?: { setVerifyMode?: (request: boolean, reject: boolean) => void }; _requestCert?: boolean; _rejectUnauthorized?: boolean };
  (s as unknown as Record<symbol, ClientAuthMark>)[clientAuthMark] = mark;
  if (mark.anchors === undefined || typeof s._handle?.setVerifyMode !== 'function') return false;
  s._handle.setVerifyMode(true, false);
  // Node then reads the verification result into `authorized` / `authorizationError`, and keeps the connection.
  s._requestCert = true;
  s._rejectUnauthorized = false;
  return true;
}

/**
 * Records the mark on a connection that resumed a session, with the verification result OpenSSL kept in the
 * session (read as Node reads it after a handshake that asked for a certificate). Without that reading the mark
 * has no CA certificates, and guarded requests get 503 rather than pass unchecked.
 */
export function markResumed(socket: TLSSocket, mark: ClientAuthMark): void {
  const s = socket as TLSSocket & { _handle?: { verifyError?: () => (Error & { code?: string }) | null } };
  const verifyError = s._handle?.verifyError;
  const usable = typeof verifyError === 'function' ? mark : { ca: mark.ca };
  if (typeof verifyError === 'function') {
    const err = verifyError.call(s._handle);
    s.authorized = !err;
    // Node stores the code string here, whatever the type declarations say.
    (s as unknown as { authorizationError?: string }).authorizationError = err ? (err.code ?? err.message) : undefined;
  }
  (s as unknown as Record<symbol, ClientAuthMark>)[clientAuthMark] = usable;
}

/** A request's standing under a client-certificate check. */
export type ClientCertVerdict =
  | { allow: true; headers: Record<string, string> }
  | { allow: false; status: 400 | 403 | 421 | 503; reason: string };

/**
 * Judges a request for a host guarded by `policy`, made on `socket` (undefined: plain HTTP). The headers that go
 * upstream are ingress-nginx's: ssl-client-verify (SUCCESS, FAILED:<reason>, NONE), the subject and issuer DNs
 * (RFC 2253, as nginx's $ssl_client_s_dn), and the URL-encoded certificate when `passCertificate`. With `matchCn`,
 * a request whose subject DN does not match it gets 403, as ingress-nginx's server-level
 * `if ($ssl_client_s_dn !~ <pattern>) { return 403; }`: after nginx's own 400s for a missing or refused certificate,
 * and also without a certificate where none is required (verify optional, or plain HTTP), where the DN is ''.
 */
export function judgeClientCertificate(policy: ClientCertPolicy, socket: TLSSocket | undefined): ClientCertVerdict {
  const none = { 'ssl-client-verify': 'NONE' };
  const unmatched = (dn: string): ClientCertVerdict | undefined =>
    policy.matchCn !== undefined && !matchesUserRegex(policy.matchCn, dn)
      ? { allow: false, status: 403, reason: dn === '' ? 'no client certificate, and auth-tls-match-cn does not match an empty subject' : `client certificate subject ${JSON.stringify(dn)} does not match auth-tls-match-cn` }
      : undefined;
  if (socket === undefined) {
    // nginx checks certificates on TLS connections only; the DN check runs on plain HTTP too, with an empty DN.
    return unmatched('') ?? (policy.verify === 'on' ? { allow: false, status: 400, reason: 'a client certificate is required, and plain HTTP has none' } : { allow: true, headers: none });
  }
  const ca = `${policy.secret.namespace}/${policy.secret.name}`;
  const mark = (socket as unknown as Record<symbol, ClientAuthMark | undefined>)[clientAuthMark];
  // The connection was made for another name (HTTP/2 reuse, or SNI and Host differ): 421 asks for a new one.
  if (mark?.ca !== ca) return { allow: false, status: 421, reason: 'the TLS connection was not made for this host, which checks client certificates' };
  if (mark.anchors === undefined) return { allow: false, status: 503, reason: `CA Secret ${ca} has no usable ca.crt` };
  // Read once per connection.
  if (mark.peer === undefined) mark.peer = readPeer(socket, mark.anchors);
  const peer = mark.peer;
  if (peer === null) {
    return policy.verify === 'on' ? { allow: false, status: 400, reason: 'no required client certificate was sent' } : (unmatched('') ?? { allow: true, headers: none });
  }
  const { cert } = peer;
  let failure = socket.authorized ? undefined : String(socket.authorizationError ?? 'not verified');
  if (failure === undefined && peer.intermediates > policy.depth) failure = `CHAIN_TOO_LONG: ${peer.intermediates} intermediate CAs, at most ${policy.depth} allowed`;
  if (failure !== undefined && policy.verify !== 'optional_no_ca') return { allow: false, status: 400, reason: `client certificate refused: ${failure}` };
  const subject = distinguishedName(cert.subject);
  const refused = unmatched(subject);
  if (refused !== undefined) return refused;
  const headers: Record<string, string> = {
    'ssl-client-verify': failure === undefined ? 'SUCCESS' : `FAILED:${headerSafe(failure)}`,
    'ssl-client-subject-dn': subject,
    'ssl-client-issuer-dn': distinguishedName(cert.issuer),
  };
  if (policy.passCertificate) headers['ssl-client-cert'] = encodeURIComponent(cert.toString());
  return { allow: true, headers };
}

/**
 * The client's certificate, and how many intermediate CAs stand between it and the root of the CA bundle it chains
 * to (OpenSSL verified that it does when the socket is authorized). The path is rebuilt through the bundle, each
 * link one that `checkIssued` and the issuer's signature confirm. Node 24 does not show a server the chain its client
 * sent, so intermediates that only the client sent count as one. Null when the client sent no certificate.
 */
function readPeer(socket: TLSSocket, anchors: readonly X509Certificate[]): { cert: X509Certificate; intermediates: number } | null {
  const cert = socket.getPeerX509Certificate();
  if (cert === undefined) return null;
  let current = cert;
  for (let depth = 0; depth <= 20; depth++) {
    const issuer = anchors.find((c) => current.checkIssued(c) && current.verify(c.publicKey));
    if (issuer === undefined) return { cert, intermediates: depth + 1 };
    if (issuer.checkIssued(issuer)) return { cert, intermediates: depth };
    current = issuer;
  }
  return { cert, intermediates: Number.POSITIVE_INFINITY };
}

/**
 * A name as nginx's $ssl_client_s_dn writes it (OpenSSL's X509_NAME_print_ex with XN_FLAG_RFC2253), from the
 * one-RDN-per-line text Node gives (the same OpenSSL printer with its multi-line flags): the RDNs in reverse order,
 * comma-separated, the attributes of a multi-valued RDN reversed too and joined by "+" (Node joins them by " + ";
 * a "+" inside a value is escaped as "\+" by both), RFC 2253 escapes (`\,` `\+` `\"` `\\` `\<` `\>` `\;`, a
 * leading "#" or space, a trailing space) as Node writes them already, and each byte above 0x7e of the UTF-8 text as
 * `\XX`. Checked against nginx 1.22.1 with openssl-made certificates. One difference is left: an attribute whose
 * type OpenSSL does not know is printed by nginx as `#` and the hex of its DER value, here as its text.
 */
export function distinguishedName(lines: string): string {
  const rdns = lines.split('\n').filter(Boolean).reverse();
  return headerSafe(rdns.map((rdn) => rdn.split(' + ').reverse().join('+')).join(','));
}

/** Bytes outside printable ASCII as `\XX` (UTF-8), as RFC 2253 escapes them: a header value never breaks. */
function headerSafe(text: string): string {
  return text.replace(/[^\x20-\x7e]/gu, (ch) => [...Buffer.from(ch)].map((b) => `\\${b.toString(16).toUpperCase().padStart(2, '0')}`).join(''));
}
