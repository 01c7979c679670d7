import bcrypt from 'bcryptjs';
import { encrypt } from 'unixcrypt';
import { afterEach, describe, expect, it } from 'vitest';
import { Authenticators } from '../../../ingress/auth/authenticators.ts';
import { BasicAuthenticator, basicCacheTtlMs, decodeBasic } from '../../../ingress/auth/basic.ts';
import { parseHtpasswd } from '../../../ingress/auth/htpasswd.ts';
import type { AuthResult } from '../../../ingress/auth/types.ts';
import type { BasicAuthPolicy } from '../../../ingress/routes/types.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { authRequest, basic, capturedLogger, knownVectors, secret, secretStore } from './fixtures.ts';

const ref = { namespace: 'team', name: 'users' };
const policy: BasicAuthPolicy = { type: 'basic', secret: ref, realm: 'Team area' };
const challenge = { 'www-authenticate': 'Basic realm="Team area"' };

const bcryptHash = bcrypt.hashSync('b-pass', 5);
const htpasswd = [
  `bea:${bcryptHash}`,
  `sam:${encrypt('s-pass', '$5$abcdefgh')}`,
  `sue:${encrypt('u-pass', '$6$rounds=2000$abcdefgh')}`,
  ...knownVectors.map((v, i) => `tool${i}:${v.hash}`),
  'alf:$apr1$saltsalt$LrttParrLPdxvgutaSXWJ0',
  'pat:plain-text-password',
].join('\n');

const opened: Authenticators[] = [];
function authenticators(log = silentLogger(), now?: () => number) {
  const store = secretStore();
  const a = new Authenticators({ secrets: store.lookup, log, ...(now ? { now } : {}) });
  opened.push(a);
  return { a, store };
}
afterEach(() => {
  for (const a of opened.splice(0)) a.close();
});

function status(r: AuthResult): number {
  return r.allow ? 200 : r.status;
}

describe('basic auth', () => {
  const cases: Array<[string, Record<string, string>, number]> = [
    ['bcrypt user', basic('bea', 'b-pass'), 200],
    ['SHA-256-crypt user', basic('sam', 's-pass'), 200],
    ['SHA-512-crypt user with rounds', basic('sue', 'u-pass'), 200],
    ...knownVectors.map((v, i): [string, Record<string, string>, number] => [`real-tool vector: ${v.name}`, basic(`tool${i}`, v.password), 200]),
    ['wrong password', basic('bea', 'B-pass'), 401],
    ['another user’s password', basic('sam', 'b-pass'), 401],
    ['unknown user', basic('zed', 'b-pass'), 401],
    ['user name differs in case', basic('Bea', 'b-pass'), 401],
    ['refused scheme (apr1) cannot log in', basic('alf', 'secret'), 401],
    ['plain-text line cannot log in, even with the text', basic('pat', 'plain-text-password'), 401],
    ['no Authorization header', {}, 401],
    ['Bearer instead of Basic', { authorization: 'Bearer abc' }, 401],
    ['scheme is case-insensitive', { authorization: basic('bea', 'b-pass').authorization.replace('Basic', 'bAsIc') }, 200],
    ['not base64', { authorization: 'Basic !!!' }, 401],
    ['no colon', { authorization: `Basic ${Buffer.from('bea').toString('base64')}` }, 401],
    ['empty user', basic('', 'b-pass'), 401],
    ['invalid UTF-8', { authorization: `Basic ${Buffer.from([0x62, 0x65, 0x61, 0x3a, 0xff]).toString('base64')}` }, 401],
  ];
  for (const [name, headers, want] of cases) {
    it(name, async () => {
      const { a, store } = authenticators();
      store.secrets.set('team/users', secret(ref, { auth: htpasswd }));
      const r = await a.get('team/app', policy).check(authRequest(headers));
      expect(status(r)).toBe(want);
      if (r.allow) expect(r.upstreamHeaders ?? {}).toEqual({});
      else expect(r.headers).toEqual(challenge);
    });
  }

  it('logs each refused line with the Secret and line number, never the hash', async () => {
    const { log, lines, text } = capturedLogger();
    const { a, store } = authenticators(log);
    store.secrets.set('team/users', secret(ref, { auth: htpasswd }));
    expect(status(await a.get('team/app', policy).check(authRequest(basic('bea', 'b-pass'))))).toBe(200);
    const warned = lines().filter((l) => String(l.msg).startsWith('htpasswd line skipped'));
    const n = 3 + knownVectors.length;
    expect(warned.map((l) => [l.secret, l.line])).toEqual([
      ['team/users', n + 1],
      ['team/users', n + 2],
    ]);
    expect(text()).not.toMatch(/LrttParrLPdxvgutaSXWJ0|plain-text-password/);
  });

  const closed: Array<[string, Record<string, string> | undefined]> = [
    ['missing Secret', undefined],
    ['Secret without key "auth"', { other: 'x' }],
    ['Secret with no usable line', { auth: 'alf:$apr1$saltsalt$LrttParrLPdxvgutaSXWJ0\n# only a comment\n' }],
  ];
  for (const [name, data] of closed) {
    it(`${name}: fails closed with 503 and logs why`, async () => {
      const { log, lines } = capturedLogger();
      const { a, store } = authenticators(log);
      if (data) store.secrets.set('team/users', secret(ref, data));
      const r = await a.get('team/app', policy).check(authRequest(basic('bea', 'b-pass')));
      expect(r).toMatchObject({ allow: false, status: 503 });
      expect(lines().some((l) => l.level === 40 && String(l.msg).includes('team/users'))).toBe(true);
    });
  }

  const realms: Array<[string, string]> = [
    ['Team area', 'Basic realm="Team area"'],
    ['say "hi"\\', 'Basic realm="say hi"'],
    ['line\r\nSet-Cookie: x=1', 'Basic realm="lineSet-Cookie: x=1"'],
    ['caf\u00e9 \u{1F600}', 'Basic realm="caf "'],
    ['', 'Basic realm=""'],
  ];
  for (const [realm, header] of realms) {
    it(`realm ${JSON.stringify(realm)} is quoted safely`, async () => {
      const { a, store } = authenticators();
      store.secrets.set('team/users', secret(ref, { auth: htpasswd }));
      const r = await a.get('team/app', { ...policy, realm }).check(authRequest());
      expect(r).toMatchObject({ allow: false, status: 401, headers: { 'www-authenticate': header } });
    });
  }

  it('the first line of a duplicated user wins', async () => {
    const { a, store } = authenticators();
    store.secrets.set('team/users', secret(ref, { auth: `dup:${encrypt('one', '$5$aaaa')}\ndup:${encrypt('two', '$5$bbbb')}` }));
    const auth = a.get('team/app', policy);
    expect(status(await auth.check(authRequest(basic('dup', 'one'))))).toBe(200);
    expect(status(await auth.check(authRequest(basic('dup', 'two'))))).toBe(401);
  });
});

describe('basic auth timing and cache', () => {
  async function timed(f: () => Promise<unknown>): Promise<number> {
    const t = performance.now();
    await f();
    return performance.now() - t;
  }

  it('an unknown user costs a hash verification like a known one', async () => {
    const hash = bcrypt.hashSync('pw', 10);
    const auth = new BasicAuthenticator(parseHtpasswd(`known:${hash}`).entries, 'r');
    const known = await timed(() => auth.check(authRequest(basic('known', 'wrong'))));
    const unknown = await timed(() => auth.check(authRequest(basic('nobody', 'wrong'))));
    // bcrypt cost 10 takes tens of milliseconds; a plain miss would take microseconds.
    expect(known).toBeGreaterThan(10);
    expect(unknown).toBeGreaterThan(known / 3);
  });

  it('remembers a successful verification for 60 s, and only successful ones', async () => {
    let now = 1_000_000;
    const hash = bcrypt.hashSync('pw', 10);
    const auth = new BasicAuthenticator(parseHtpasswd(`u:${hash}`).entries, 'r', () => now);
    const ok = authRequest(basic('u', 'pw'));
    const first = await timed(() => auth.check(ok));
    expect(auth.cacheSize).toBe(1);
    const cached = await timed(async () => expect(status(await auth.check(ok))).toBe(200));
    expect(cached).toBeLessThan(first / 4);
    expect(status(await auth.check(authRequest(basic('u', 'PW'))))).toBe(401);
    expect(auth.cacheSize).toBe(1);
    now += basicCacheTtlMs + 1;
    const expired = await timed(async () => expect(status(await auth.check(ok))).toBe(200));
    expect(expired).toBeGreaterThan(first / 3);
  });

  it('decodeBasic splits at the first colon only', () => {
    expect(decodeBasic(Buffer.from('u:p:q').toString('base64'))).toEqual({ user: 'u', password: 'p:q' });
    expect(decodeBasic(Buffer.from('u:').toString('base64'))).toEqual({ user: 'u', password: '' });
  });
});

describe('Authenticators', () => {
  it('keeps one instance per Ingress while the policy is deep-equal and its Secret unchanged', async () => {
    const { a, store } = authenticators();
    store.secrets.set('team/users', secret(ref, { auth: `u:${encrypt('old', '$5$aaaa')}` }));
    const first = a.get('team/app', policy);
    expect(a.get('team/app', structuredClone(policy))).toBe(first);
    expect(a.get('team/other', policy)).not.toBe(first);
    expect(a.get('team/app', { ...policy, realm: 'changed' })).not.toBe(first);
  });

  it('rebuilds after secretsChanged: a password change and a Secret that appears', async () => {
    const { a, store } = authenticators();
    const first = a.get('team/app', policy);
    expect(status(await first.check(authRequest(basic('u', 'old'))))).toBe(503);
    store.secrets.set('team/users', secret(ref, { auth: `u:${encrypt('old', '$5$aaaa')}` }));
    a.secretsChanged(['other/secret']);
    expect(a.get('team/app', policy)).toBe(first);
    a.secretsChanged(['team/users']);
    const second = a.get('team/app', policy);
    expect(second).not.toBe(first);
    expect(status(await second.check(authRequest(basic('u', 'old'))))).toBe(200);
    store.secrets.set('team/users', secret(ref, { auth: `u:${encrypt('new', '$5$bbbb')}` }));
    a.secretsChanged(new Set(['team/users']));
    const third = a.get('team/app', policy);
    expect(status(await third.check(authRequest(basic('u', 'old'))))).toBe(401);
    expect(status(await third.check(authRequest(basic('u', 'new'))))).toBe(200);
  });

  it('retain forgets other Ingresses', () => {
    const { a } = authenticators();
    const keep = a.get('ns/keep', policy);
    const drop = a.get('ns/drop', policy);
    a.retain(new Set(['ns/keep']));
    expect(a.get('ns/keep', policy)).toBe(keep);
    expect(a.get('ns/drop', policy)).not.toBe(drop);
  });
});
