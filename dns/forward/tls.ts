// DNS over TLS to one upstream (RFC 7858): DNS over a stream (stream.ts) inside TLS, on a few kept-open connections.
// Nothing is written to a connection before its certificate has verified: against the configured name, else the
// upstream's IP address (as Go's TLS, and so CoreDNS without `tls_servername`, checks an address).
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect, createSecureContext, getCACertificates, type SecureContext, type TLSSocket } from 'node:tls';
import type { Logger } from '../../runtime/logger.ts';
import { describeUpstream, type UpstreamAddress } from './address.ts';
import { UpstreamError, UpstreamUnreachableError } from './exchange.ts';
import { StreamPool, type StreamTransport } from './stream.ts';

/** The upstream's certificate did not verify (untrusted, expired, or for another name); never accepted anyway. */
export class UpstreamTlsError extends UpstreamError {
  override readonly name = 'UpstreamTlsError';
  override readonly code = 'NETPLANE_DNS_UPSTREAM_TLS';
}

/** A CA file that cannot be used; the message says what is wrong with it, for the flag and file to be put before. */
export class TlsConfigError extends Error {
  override readonly name = 'TlsConfigError';
  readonly code = 'NETPLANE_DNS_TLS_CONFIG';
}

// Connections per upstream at most (a handshake each); another is opened only while every open one has `spreadAt`
// queries pending.
const maxConnections = 4;
const spreadAt = 64;

/**
 * The PEM certificates of a CA file (--upstream-tls-ca). Throws TlsConfigError when it cannot be read, holds no
 * certificate, or one does not parse.
 */
export function readCaFile(path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new TlsConfigError(`cannot be read (${(e as Error).message})`, { cause: e });
  }
  const pems = text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  if (pems.length === 0) throw new TlsConfigError('holds no PEM certificate (-----BEGIN CERTIFICATE-----): it must hold the CA certificates that sign the upstream certificates');
  pems.forEach((pem, i) => {
    try {
      new X509Certificate(pem);
    } catch (e) {
      throw new TlsConfigError(`certificate ${i + 1} does not parse (${(e as Error).message})`, { cause: e });
    }
  });
  return pems;
}

/**
 * What TLS upstreams are verified against: the system's CA store (Node's bundled Mozilla roots in an image without
 * one, such as node:slim) and `extra`. Built once per forwarder: parsing the store per connection would be slow.
 */
export function trustContext(extra: readonly string[]): SecureContext {
  const system = getCACertificates('system');
  return createSecureContext({ ca: [...(system.length > 0 ? system : getCACertificates('bundled')), ...extra] });
}

/** Options of one upstream's connections. */
export interface DotPoolOptions {
  context: SecureContext;
  /** Unused connections are closed after this long, ms. */
  expireMs: number;
  log: Logger;
  /** A query went on an open connection (true) or opened one (false): coredns_proxy_conn_cache_{hits,misses}_total. */
  onDial?: (reused: boolean) => void;
}

/** The DNS-over-TLS connections to one upstream. */
export class DotPool extends StreamPool {
  constructor(to: UpstreamAddress, options: DotPoolOptions) {
    super(to, tlsTransport(to, options.context, options.log), { expireMs: options.expireMs, maxConnections, spreadAt, ...(options.onDial ? { onDial: options.onDial } : {}) });
  }
}

/**
 * TLS connections to `to`, each resuming the last session a verified connection was handed (a shorter handshake);
 * a certificate that does not verify is logged with the reason, once until one verifies again.
 */
function tlsTransport(to: UpstreamAddress, context: SecureContext, log: Logger): StreamTransport {
  const label = describeUpstream(to);
  const servername = to.tls?.servername;
  let session: Buffer | undefined;
  let unverified = false;
  return {
    proto: 'TLS',
    readyEvent: 'secureConnect',
    dial() {
      const socket = connect({
        host: to.host,
        port: to.port,
        // Without a name Node sends no SNI and checks the certificate's IP addresses against the host, as Go does.
        ...(servername !== undefined ? { servername } : {}),
        secureContext: context,
        ...(session ? { session } : {}),
      });
      // A session resumed later skips Node's name check: only one from a connection that verified may be kept (under
      // TLS 1.2 the ticket can come before the check).
      let verified = false;
      let early: Buffer | undefined;
      socket.on('session', (s: Buffer) => (verified ? (session = s) : (early = s)));
      socket.once('secureConnect', () => {
        verified = true;
        if (early) session = early;
      });
      return socket;
    },
    ready() {
      if (!unverified) return;
      unverified = false;
      log.info({ upstream: label }, `DNS upstream ${label}: its TLS certificate verifies again`);
    },
    failure(e, socket) {
      // Node sets authorizationError when the certificate did not verify, and then never connects.
      if (!(socket as TLSSocket & { authorizationError?: string | null }).authorizationError) {
        return new UpstreamUnreachableError(`DNS upstream ${to.text} over TLS: ${e.message}`, { cause: e });
      }
      // Node's hint about --use-system-ca does not apply: the system store is used.
      const reason = e.message.replace(/; if the root CA is installed locally.*$/s, '');
      if (!unverified) {
        unverified = true;
        log.warn(
          { upstream: label, servername: servername ?? null, reason },
          `DNS upstream ${label}: its TLS certificate does not verify for ${servername ?? `the address ${to.host}`} (${reason}); queries to it fail until it does`,
        );
      }
      return new UpstreamTlsError(`DNS upstream ${to.text}: TLS certificate does not verify (${reason})`, { cause: e });
    },
  };
}
