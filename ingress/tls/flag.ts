// The default certificate from two PEM files (the `--default-ssl-certificate` role of ingress-nginx, as files).
import { readFileSync } from 'node:fs';
import { BadCertificateError } from './errors.ts';
import { isKeyPair, loadKeyPair, type PartNames } from './keypair.ts';

/** Reads a PEM file as text; throws BadCertificateError naming the file. */
function readPem(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new BadCertificateError(`Cannot read the ${what} file ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}).`, { cause: e });
  }
}

/** What reasons call the two files: `certificate file PATH` and `private key file PATH`. */
export function filePartNames(certPath: string, keyPath: string): PartNames {
  return { cert: `certificate file ${certPath}`, key: `private key file ${keyPath}` };
}

/** The two files' text as they are, unchecked; throws BadCertificateError naming a file that cannot be read. */
export function readCertificateFiles(certPath: string, keyPath: string): { cert: string; key: string } {
  return { cert: readPem(certPath, 'certificate'), key: readPem(keyPath, 'private key') };
}

/**
 * Reads a certificate chain (leaf first) and its private key from two PEM files and checks they form a usable key
 * pair. Throws BadCertificateError (code ERR_BAD_CERTIFICATE) with one sentence naming the file at fault.
 */
export function parseCertificateFlag(certPath: string, keyPath: string): { cert: string; key: string } {
  const { cert, key } = readCertificateFiles(certPath, keyPath);
  const pair = loadKeyPair(cert, key, filePartNames(certPath, keyPath));
  if (!isKeyPair(pair)) throw new BadCertificateError(`The ${pair.reason}.`);
  return { cert: pair.cert, key: pair.key };
}
