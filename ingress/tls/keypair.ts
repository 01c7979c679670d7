// Checks a PEM certificate chain and private key the way a TLS server will use them, and builds the SecureContext.
// Reasons name the parts as the caller calls them (`tls.crt`/`tls.key` of a Secret, or file paths) and never hold
// key material: only our own words and OpenSSL error codes.
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { createSecureContext, type SecureContext } from 'node:tls';

/** A usable certificate and key: the context to serve, and the leaf's subject and validity. */
export interface KeyPair {
  /** The certificate blocks of the chain, leaf first, without any other PEM block. */
  cert: string;
  key: string;
  context: SecureContext;
  subject: string;
  notBefore: Date;
  notAfter: Date;
  /** The leaf certificate: the names it is good for (X509Certificate.checkHost). */
  leaf: X509Certificate;
}

/** Why a certificate and key cannot be served: one clause naming the part, e.g. "tls.key does not match ...". */
export interface KeyPairProblem {
  reason: string;
}

/** What to call the two parts in reasons. */
export interface PartNames {
  cert: string;
  key: string;
}

const certificateBlock = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/** The PEM CERTIFICATE blocks of `pem`, in order; other blocks (keys, parameters) and text between them are dropped. */
export function certificateBlocks(pem: string): string[] {
  return pem.match(certificateBlock) ?? [];
}

/** An OpenSSL or Node error code, else its message: both name the failure without echoing input. */
function why(e: unknown): string {
  const err = e as { code?: unknown; message?: unknown };
  return typeof err.code === 'string' ? err.code : String(err.message);
}

/**
 * Checks `certPem` (a chain, leaf first) against `keyPem` and builds a SecureContext; never throws. The leaf's
 * validity dates are reported, not enforced: an expired certificate is still a key pair.
 */
export function loadKeyPair(certPem: string, keyPem: string, names: PartNames): KeyPair | KeyPairProblem {
  const blocks = certificateBlocks(certPem);
  if (blocks.length === 0) return { reason: `${names.cert} holds no PEM certificate (-----BEGIN CERTIFICATE-----)` };
  const chain: X509Certificate[] = [];
  for (const [i, block] of blocks.entries()) {
    try {
      chain.push(new X509Certificate(block));
    } catch (e) {
      return { reason: `${names.cert} certificate ${i + 1} of ${blocks.length} cannot be parsed (${why(e)})` };
    }
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (e) {
    return { reason: `${names.key} is not an unencrypted PEM private key (${why(e)})` };
  }
  const leaf = chain[0]!;
  if (!leaf.checkPrivateKey(key)) {
    return { reason: `${names.key} does not match the first certificate of ${names.cert} (the server's own certificate must come first)` };
  }
  const cert = blocks.join('\n') + '\n';
  let context: SecureContext;
  try {
    context = createSecureContext({ cert, key: keyPem });
  } catch (e) {
    return { reason: `${names.cert} and ${names.key} are refused by OpenSSL (${why(e)})` };
  }
  return { cert, key: keyPem, context, subject: leaf.subject.replaceAll('\n', ', '), notBefore: leaf.validFromDate, notAfter: leaf.validToDate, leaf };
}

/** Whether `loadKeyPair` succeeded. */
export function isKeyPair(r: KeyPair | KeyPairProblem): r is KeyPair {
  return 'context' in r;
}

/** Why a usable key pair's leaf is not valid at `now` (expired, or not yet valid); undefined when it is. */
export function validityProblem(pair: Pick<KeyPair, 'notBefore' | 'notAfter'>, now: Date): string | undefined {
  if (now > pair.notAfter) return `certificate expired at ${pair.notAfter.toISOString()}`;
  if (now < pair.notBefore) return `certificate is not valid before ${pair.notBefore.toISOString()}`;
  return undefined;
}
