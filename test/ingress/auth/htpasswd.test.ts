import bcrypt from 'bcryptjs';
import { encrypt } from 'unixcrypt';
import { describe, expect, it } from 'vitest';
import { classifyHash, dummyHash, maxBcryptCost, maxShaCryptRounds, parseHtpasswd, verifyPassword, type HashScheme } from '../../../ingress/auth/htpasswd.ts';
import { knownVectors } from './fixtures.ts';

describe('known-good vectors from real tools', () => {
  for (const v of knownVectors) {
    it(v.name, async () => {
      expect(classifyHash(v.hash)).toEqual({ scheme: v.scheme, cost: v.cost });
      expect(await verifyPassword(v.password, v)).toBe(true);
      expect(await verifyPassword(`${v.password}x`, v)).toBe(false);
      expect(await verifyPassword('', v)).toBe(false);
    });
  }
});

describe('hashes generated in the test', () => {
  const bcryptHash = bcrypt.hashSync('pw', 4);
  const cases: Array<[string, string, HashScheme]> = [
    ['bcrypt $2b$', bcryptHash, 'bcrypt'],
    ['bcrypt $2a$', bcryptHash.replace('$2b$', '$2a$'), 'bcrypt'],
    ['bcrypt $2y$ (htpasswd -B)', bcryptHash.replace('$2b$', '$2y$'), 'bcrypt'],
    ['SHA-256-crypt', encrypt('pw', '$5$abcdefgh'), 'sha256-crypt'],
    ['SHA-512-crypt', encrypt('pw', '$6$abcdefgh'), 'sha512-crypt'],
    ['SHA-512-crypt, explicit rounds', encrypt('pw', '$6$rounds=2000$abcdefgh'), 'sha512-crypt'],
  ];
  for (const [name, hash, scheme] of cases) {
    it(name, async () => {
      expect(classifyHash(hash)).toMatchObject({ scheme });
      expect(await verifyPassword('pw', { hash, scheme })).toBe(true);
      expect(await verifyPassword('pW', { hash, scheme })).toBe(false);
    });
  }
});

describe('classifyHash refuses', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['MD5 apr1 cut short', '$apr1$saltsalt$LrttParrLPdxvgutaSXW', /malformed Apache MD5/],
    ['MD5 apr1 with a 9-character salt', '$apr1$saltsalts$LrttParrLPdxvgutaSXWJ0', /malformed Apache MD5/],
    ['MD5-crypt', '$1$saltsalt$9xy1btjgzLYfb7hivXtC//', /MD5-crypt/],
    ['SHA-1 {SHA}', '{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=', /SHA-1/],
    ['DES crypt', 'saEyRmpPjGDvA', /DES crypt/],
    ['plain text', 'hunter2', /plain-text/],
    ['empty', '', /plain-text/],
    ['yescrypt', '$y$j9T$abc$def', /unsupported crypt/],
    ['bcrypt $2x$', '$2x$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW', /unsupported crypt/],
    ['bcrypt cut short', '$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9km', /malformed bcrypt/],
    ['bcrypt cost 3', '$2b$03$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW', /cost 3 is outside/],
    [`bcrypt cost above ${maxBcryptCost}`, '$2b$20$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW', /cost 20 is outside/],
    ['SHA-256 digest of SHA-512 length', `$5$saltsalt$${'a'.repeat(86)}`, /not 43 characters/],
    [`rounds above ${maxShaCryptRounds}`, `$6$rounds=999999999$saltsalt$${'a'.repeat(86)}`, /rounds 999999999 is outside/],
    ['rounds below 1000', `$5$rounds=10$saltsalt$${'a'.repeat(43)}`, /rounds 10 is outside/],
    ['salt with a bad character', `$5$salt!$${'a'.repeat(43)}`, /malformed SHA-crypt/],
  ];
  for (const [name, hash, reason] of cases) {
    it(name, () => {
      const r = classifyHash(hash);
      expect(r).toHaveProperty('refused');
      const text = (r as { refused: string }).refused;
      expect(text).toMatch(reason);
      if (hash.length > 3) expect(text).not.toContain(hash.slice(3));
    });
  }
});

describe('parseHtpasswd', () => {
  it('reads users, skips comments and blank lines, numbers lines, and refuses bad ones', () => {
    const sha = knownVectors[0]!.hash;
    const text = [
      '# users', // 1
      `alice:${sha}`, // 2
      '', // 3
      'bob:$1$saltsalt$9xy1btjgzLYfb7hivXtC//', // 4
      `carol:${sha}:a comment nginx allows\r`, // 5
      'no-separator', // 6
      `:${sha}`, // 7
      'dave:plaintext', // 8
    ].join('\n');
    const { entries, refused } = parseHtpasswd(text);
    expect(entries.map((e) => [e.user, e.line, e.scheme, e.hash])).toEqual([
      ['alice', 2, 'sha256-crypt', sha],
      ['carol', 5, 'sha256-crypt', sha],
    ]);
    expect(refused.map((r) => r.line)).toEqual([4, 6, 7, 8]);
    expect(refused.map((r) => r.reason).join(' ')).not.toMatch(/plaintext|9xy1btjg/);
  });
});

describe('Apache MD5 ($apr1$)', () => {
  it('hashes the UTF-8 bytes of a password, so characters beyond Latin-1 do not collide', async () => {
    // apache-md5 alone hashes character codes cut to 8 bits: "Ġ" (U+0120) would then pass for " " (0x20).
    const space = { hash: '$apr1$abcdefgh$2aXUDpWJ69a1pIYK6XYme/', scheme: 'apr1-md5' as const };
    expect(await verifyPassword(' ', space)).toBe(true);
    expect(await verifyPassword('\u0120', space)).toBe(false);
    // openssl passwd -apr1 -salt abcdefgh 'Ā' (UTF-8 C4 80), which the 8-bit cut would read as NUL.
    expect(await verifyPassword('\u0100', { hash: '$apr1$abcdefgh$ArxtKN7xNFdw0gi0G/aV2.', scheme: 'apr1-md5' })).toBe(true);
  });

  it('is read from an htpasswd file as htpasswd -c writes it', () => {
    const { entries, refused } = parseHtpasswd('foo:$apr1$saltsalt$LrttParrLPdxvgutaSXWJ0\n');
    expect([entries.map((e) => [e.user, e.scheme, e.cost]), refused]).toEqual([[['foo', 'apr1-md5', 1000]], []]);
  });
});

describe('dummyHash', () => {
  const likes: Array<{ scheme: HashScheme; cost: number }> = [
    { scheme: 'apr1-md5', cost: 1000 },
    { scheme: 'bcrypt', cost: 5 },
    { scheme: 'sha256-crypt', cost: 5000 },
    { scheme: 'sha512-crypt', cost: 20000 },
  ];
  for (const like of likes) {
    it(`${like.scheme} cost ${like.cost}: same scheme and cost, matches nothing, differs each time`, async () => {
      const d = dummyHash(like);
      expect(classifyHash(d.hash)).toEqual(like);
      expect(dummyHash(like).hash).not.toBe(d.hash);
      for (const pw of ['', 'pw', 'secret']) expect(await verifyPassword(pw, d)).toBe(false);
    });
  }
});
