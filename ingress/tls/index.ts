// The gateway's TLS: server certificates by SNI, the default certificate, and the HSTS header.
export { Certificates, type CertificateProblem, type TlsTable } from './certificates.ts';
export { defaultCommonName, generateDefaultCertificate } from './default-certificate.ts';
export { BadCertificateError, BadHstsError } from './errors.ts';
export { DefaultCertificateFiles } from './default-files.ts';
export { parseCertificateFlag } from './flag.ts';
export { hstsHeader } from './hsts.ts';
