// The certificate served when no Ingress names one for the requested host (ingress-nginx's "fake certificate").
import { generate } from 'selfsigned';

/** Subject common name of the generated default certificate. */
export const defaultCommonName = 'netplane default certificate';

/** A fresh self-signed EC P-256 certificate and key (PEM), CN `netplane default certificate`, valid one year from now. */
export async function generateDefaultCertificate(now = new Date()): Promise<{ cert: string; key: string }> {
  const notAfterDate = new Date(now.getTime() + 365 * 24 * 3600 * 1000);
  const pems = await generate([{ name: 'commonName', value: defaultCommonName }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: now,
    notAfterDate,
    // No subjectAltName: the certificate names no host, so no client mistakes it for a real one.
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
    ],
  });
  return { cert: pems.cert, key: pems.private };
}
