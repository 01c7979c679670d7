// Certificates made by the openssl command line, not by the code under test: CAs, and client certificates with any
// subject `openssl req -subj` can write (multi-valued RDNs, escapes, UTF-8), as files for curl and nginx.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A certificate and key on disk, and the certificate's PEM. */
export interface PkiFiles {
  crt: string;
  key: string;
  pem: string;
}

/** A directory of openssl-made certificates; remove() deletes it. */
export class OpensslPki {
  readonly dir = mkdtempSync(join(tmpdir(), 'netplane-openssl-pki-'));

  /** A self-signed CA named `name` (subject CN=<cn>). */
  ca(name: string, cn: string): PkiFiles {
    const [crt, key] = [join(this.dir, `${name}.crt`), join(this.dir, `${name}.key`)];
    openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', crt, '-subj', `/CN=${cn}`, '-days', '2']);
    return { crt, key, pem: readFileSync(crt, 'utf8') };
  }

  /** A client certificate `name` with subject `subj` (openssl -subj form, UTF-8), signed by `ca`. */
  client(name: string, subj: string, ca: PkiFiles): PkiFiles {
    const [crt, key, csr] = [join(this.dir, `${name}.crt`), join(this.dir, `${name}.key`), join(this.dir, `${name}.csr`)];
    openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', csr, '-utf8', '-multivalue-rdn', '-subj', subj]);
    openssl(['x509', '-req', '-in', csr, '-CA', ca.crt, '-CAkey', ca.key, '-CAcreateserial', '-out', crt, '-days', '2']);
    return { crt, key, pem: readFileSync(crt, 'utf8') };
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}
