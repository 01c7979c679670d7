// Errors of the gateway's TLS setup.

/** A certificate or key given to the gateway (a file, or the default certificate) that cannot be served. */
export class BadCertificateError extends Error {
  override readonly name = 'BadCertificateError';
  readonly code = 'ERR_BAD_CERTIFICATE';
}

/** HSTS settings outside what RFC 6797 allows. */
export class BadHstsError extends Error {
  override readonly name = 'BadHstsError';
  readonly code = 'ERR_BAD_HSTS';
}
