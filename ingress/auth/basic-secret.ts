// The users of a basic-auth Secret, in either of ingress-nginx's two layouts (auth-secret-type): `auth-file`, the
// default, an htpasswd file under the key `auth`; `auth-map`, one key per user whose value is that user's password
// hash. For an auth-map ingress-nginx writes `key:value` and a line break per key into the htpasswd file nginx reads
// (internal/ingress/annotations/auth, dumpSecretAuthMap); here each key is read as that one line, so a bad entry is
// skipped with its reason exactly as a bad htpasswd line is, and named by its key instead of a line number.
import { secretValue, type Secret } from '../../cluster/model/secret.ts';
import type { BasicAuthPolicy } from '../routes/types.ts';
import { parseHtpasswd, type HtpasswdEntry, type RefusedLine } from './htpasswd.ts';

/** How a basic-auth Secret lays out its users: an htpasswd file under `auth`, or one key per user. */
export type BasicSecretType = NonNullable<BasicAuthPolicy['secretType']> | 'auth-file';

/** The users read from a basic-auth Secret, or why it has none to read (a sentence fragment: "has no key ..."). */
export type BasicUsers = { entries: HtpasswdEntry[]; refused: RefusedLine[] } | { missing: string };

/** Reads the users of `secret` laid out as `type` says; never throws. */
export function basicUsers(secret: Secret, type: BasicSecretType): BasicUsers {
  if (type === 'auth-map') return authMapUsers(secret);
  const text = secretValue(secret, 'auth');
  if (text === undefined) return { missing: 'has no key "auth"' };
  return parseHtpasswd(text.toString('utf8'));
}

/**
 * An auth-map Secret's users: each key a user name, its value the hash (with nginx's `:comment` allowed after it).
 * Keys are taken in sorted order (ingress-nginx writes them in Go's random map order; user names are unique keys, so
 * the order changes nothing). A value's trailing line break is dropped, as it only ends the line ingress-nginx
 * writes; a line break inside a value is refused rather than read as another user's line.
 */
function authMapUsers(secret: Secret): BasicUsers {
  const keys = Object.keys(secret.data).sort();
  if (keys.length === 0) return { missing: 'has no key (auth-map: one key per user)' };
  const entries: HtpasswdEntry[] = [];
  const refused: RefusedLine[] = [];
  for (const [i, key] of keys.entries()) {
    const line = i + 1;
    const value = (secretValue(secret, key) ?? Buffer.alloc(0)).toString('utf8').replace(/[\r\n]+$/, '');
    if (/[\r\n]/.test(value)) {
      refused.push({ line, key, reason: 'the value holds a line break (auth-map: one password hash per key)' });
      continue;
    }
    // The API server allows only [-._a-zA-Z0-9] in a key; a ":" would end the user name early in the written line.
    if (key.includes(':')) {
      refused.push({ line, key, reason: 'the key holds ":", which cannot be in a user name' });
      continue;
    }
    const one = parseHtpasswd(`${key}:${value}`);
    for (const r of one.refused) refused.push({ line, key, reason: r.reason });
    for (const e of one.entries) entries.push({ ...e, line, key });
  }
  return { entries, refused };
}

/** Where a refused line or entry is: `line N`, or `key "user"` for an auth-map entry. */
export function describePlace(r: Pick<RefusedLine, 'line' | 'key'>): string {
  return r.key === undefined ? `line ${r.line}` : `key ${JSON.stringify(r.key)}`;
}
