// htpasswd files as ingress-nginx reads them from a Secret's `auth` key (nginx auth_basic_user_file format:
// `user:hash[:comment]`, `#` comments): bcrypt and SHA-crypt, and Apache's MD5 (`$apr1$`), which is what `htpasswd`
// writes by default and what nearly every ingress-nginx basic-auth Secret holds. Other schemes are refused.
import { randomInt, timingSafeEqual } from 'node:crypto';
import { createRequire } from 'node:module';
import bcrypt from 'bcryptjs';
import { verify as shaCryptVerify } from 'unixcrypt';

// apache-md5 is CommonJS exporting the function itself, while its typings declare a default export.
const aprMd5 = createRequire(import.meta.url)('apache-md5') as (password: string, salt: string) => string;

/** The accepted hash schemes. */
export type HashScheme = 'bcrypt' | 'sha256-crypt' | 'sha512-crypt' | 'apr1-md5';

/** One usable htpasswd line. `cost` is the bcrypt cost or the SHA-crypt rounds. */
export interface HtpasswdEntry {
  user: string;
  hash: string;
  scheme: HashScheme;
  cost: number;
  /** 1-based line number in the file (for an auth-map Secret, in its sorted keys). */
  line: number;
  /** The Secret key of an auth-map entry. */
  key?: string;
}

/** A line that is skipped, and why; the reason never contains the hash. */
export interface RefusedLine {
  line: number;
  /** The Secret key of an auth-map entry. */
  key?: string;
  reason: string;
}

// Above these limits one verification costs over a second (bcryptjs) or blocks the event loop for over 100 ms
// (unixcrypt computes SHA-crypt synchronously), and any anonymous client can trigger one at will.
/** The highest bcrypt cost accepted. */
export const maxBcryptCost = 14;
/** The most SHA-crypt rounds accepted. */
export const maxShaCryptRounds = 50_000;

const defaultShaCryptRounds = 5000;
const minShaCryptRounds = 1000;
const cryptAlphabet = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

const bcryptPattern = /^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$/;
// Apache's MD5 (`htpasswd -m`, its default): `$apr1$`, a salt of up to 8 characters, a 22-character digest; always
// 1000 rounds, which nginx reads too.
const apr1Pattern = /^\$apr1\$[./A-Za-z0-9]{0,8}\$[./A-Za-z0-9]{22}$/;
const apr1Rounds = 1000;
// glibc crypt(3): `$5$[rounds=N$]salt$digest`, salt up to 16 characters, digest 43 (SHA-256) or 86 (SHA-512).
const shaCryptPattern = /^\$([56])\$(?:rounds=(\d{1,9})\$)?[./A-Za-z0-9]{0,16}\$([./A-Za-z0-9]+)$/;

/** Parses htpasswd text into usable entries and refused lines (blank and `#` lines are neither). */
export function parseHtpasswd(text: string): { entries: HtpasswdEntry[]; refused: RefusedLine[] } {
  const entries: HtpasswdEntry[] = [];
  const refused: RefusedLine[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = (lines[i] ?? '').replace(/\r$/, '');
    if (raw.trim() === '' || raw.trimStart().startsWith('#')) continue;
    const line = i + 1;
    const colon = raw.indexOf(':');
    if (colon <= 0) {
      refused.push({ line, reason: colon === 0 ? 'the user name is empty' : 'no `user:hash` separator' });
      continue;
    }
    const user = raw.slice(0, colon);
    const rest = raw.slice(colon + 1);
    // nginx allows a comment after a second colon; none of the accepted hashes contains one.
    const hash = rest.includes(':') ? rest.slice(0, rest.indexOf(':')) : rest;
    const kind = classifyHash(hash);
    if ('refused' in kind) refused.push({ line, reason: kind.refused });
    else entries.push({ user, hash, scheme: kind.scheme, cost: kind.cost, line });
  }
  return { entries, refused };
}

/** The scheme and cost of a hash, or why it is refused (naming the scheme, never the value). */
export function classifyHash(hash: string): { scheme: HashScheme; cost: number } | { refused: string } {
  const b = bcryptPattern.exec(hash);
  if (b) {
    const cost = Number(b[1]);
    if (cost < 4 || cost > maxBcryptCost) return { refused: `bcrypt cost ${cost} is outside 4..${maxBcryptCost}` };
    return { scheme: 'bcrypt', cost };
  }
  const s = shaCryptPattern.exec(hash);
  if (s) {
    const scheme = s[1] === '5' ? 'sha256-crypt' : 'sha512-crypt';
    const digestLength = scheme === 'sha256-crypt' ? 43 : 86;
    if ((s[3] ?? '').length !== digestLength) return { refused: `${scheme} digest is not ${digestLength} characters` };
    const rounds = s[2] === undefined ? defaultShaCryptRounds : Number(s[2]);
    if (rounds < minShaCryptRounds || rounds > maxShaCryptRounds) {
      return { refused: `${scheme} rounds ${rounds} is outside ${minShaCryptRounds}..${maxShaCryptRounds}` };
    }
    return { scheme, cost: rounds };
  }
  if (apr1Pattern.test(hash)) return { scheme: 'apr1-md5', cost: apr1Rounds };
  return { refused: `${describeRefused(hash)} is not accepted (only bcrypt $2a$/$2b$/$2y$, SHA-256-crypt $5$, SHA-512-crypt $6$ and Apache MD5 $apr1$ are)` };
}

function describeRefused(hash: string): string {
  if (hash.startsWith('$apr1$')) return 'a malformed Apache MD5 ($apr1$) hash';
  if (hash.startsWith('$1$')) return 'an MD5-crypt ($1$) hash';
  if (hash.startsWith('{SHA}')) return 'a SHA-1 ({SHA}) hash';
  if (/^\$2[aby]\$/.test(hash)) return 'a malformed bcrypt hash';
  if (/^\$[56]\$/.test(hash)) return 'a malformed SHA-crypt hash';
  if (hash.startsWith('$')) return 'an unsupported crypt scheme';
  if (/^[./A-Za-z0-9]{13}$/.test(hash)) return 'a DES crypt hash';
  return 'a plain-text or unrecognised password';
}

/** Whether `password` matches the entry's hash; false (never a throw) for any mismatch. */
export async function verifyPassword(password: string, entry: Pick<HtpasswdEntry, 'hash' | 'scheme'>): Promise<boolean> {
  try {
    if (entry.scheme === 'bcrypt') return await bcrypt.compare(password, entry.hash);
    if (entry.scheme === 'apr1-md5') return apr1Verify(password, entry.hash);
    return shaCryptVerify(password, entry.hash);
  } catch {
    // unixcrypt throws when the computed hash has another length (e.g. a salt glibc would have truncated).
    return false;
  }
}

/**
 * A hash of the same scheme and cost as `like` that no password matches in practice (random salt and digest): verified
 * for unknown users so that they take as long as known ones.
 */
export function dummyHash(like: Pick<HtpasswdEntry, 'scheme' | 'cost'>): Pick<HtpasswdEntry, 'hash' | 'scheme'> {
  if (like.scheme === 'bcrypt') {
    return { scheme: 'bcrypt', hash: `$2b$${String(like.cost).padStart(2, '0')}$${randomCrypt64(53)}` };
  }
  if (like.scheme === 'apr1-md5') return { scheme: 'apr1-md5', hash: `$apr1$${randomCrypt64(8)}$${randomCrypt64(22)}` };
  const id = like.scheme === 'sha256-crypt' ? '5' : '6';
  const rounds = like.cost === defaultShaCryptRounds ? '' : `rounds=${like.cost}$`;
  const digest = randomCrypt64(like.scheme === 'sha256-crypt' ? 43 : 86);
  return { scheme: like.scheme, hash: `$${id}$${rounds}${randomCrypt64(16)}$${digest}` };
}

/**
 * Whether `password` matches an `$apr1$` hash, compared in constant time. apache-md5 hashes a string by its
 * character codes (Node's "ascii"), so the password goes in as its UTF-8 bytes, one character per byte, as Apache's
 * htpasswd and nginx hash it; else two different non-Latin passwords could hash alike.
 */
function apr1Verify(password: string, hash: string): boolean {
  const computed = Buffer.from(aprMd5(Buffer.from(password, 'utf8').toString('latin1'), hash), 'latin1');
  const expected = Buffer.from(hash, 'latin1');
  return computed.length === expected.length && timingSafeEqual(computed, expected);
}

function randomCrypt64(length: number): string {
  let s = '';
  for (let i = 0; i < length; i++) s += cryptAlphabet[randomInt(cryptAlphabet.length)];
  return s;
}
