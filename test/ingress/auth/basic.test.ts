import bcrypt from 'bcryptjs';
import { encrypt } from 'unixcrypt';
import { afterEach, describe, expect, it } from 'vitest';
import { Authenticators } from '../../../ingress/auth/authenticators.ts';
import { BasicAuthenticator, basicCacheTtlMs, decodeBasic } from '../../../ingress/auth/basic.ts';
import { classifyHash, parseHtpasswd, verifyPassword, type HtpasswdEntry } from '../../../ingress/auth/htpasswd.ts';
import type { AuthResult } from '../../../ingress/auth/types.ts';
import type { BasicAuthPolicy } from '../../../ingress/routes/types.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { captureLogger } from '../../helpers/wait.ts';
import { authRequest, basic, knownVectors, secret, secretStore } from './fixtures.ts';

const ref = { namespace: 'team', name: 'users' };
const policy: BasicAuthPolicy = { type: 'basic', secret: ref, realm: 'Team area' };
const challenge = { 'www-authenticate': 'Basic realm="Team area"' };

const bcryptHash = bcrypt.hashSync('b-pass', 5);
const htpasswd = [
  `bea:${bcryptHash}`,
  `sam:${encrypt('s-pass', '$5$abcdefgh')}`,
  `sue:${encrypt('u-pass', '$6$rounds=2000$abcdefgh')}`,
  ...knownVectors.map((v, i) => `tool${i}:${v.hash}`),
  'alf:$1$saltsalt$9xy1btjgzLYfb7hivXtC//',
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
    ['refused scheme (MD5-crypt $1$) cannot log in', basic('alf', 'secret'), 401],
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
    const { log, records } = captureLogger();
    const { a, store } = authenticators(log);
    store.secrets.set('team/users', secret(ref, { auth: htpasswd }));
    expect(status(await a.get('team/app', policy).check(authRequest(basic('bea', 'b-pass'))))).toBe(200);
    const warned = records.filter((l) => String(l.msg).startsWith('htpasswd line skipped'));
    const n = 3 + knownVectors.length;
    expect(warned.map((l) => [l.secret, l.line])).toEqual([
      ['team/users', n + 1],
      ['team/users', n + 2],
    ]);
    expect(JSON.stringify(records)).not.toMatch(/9xy1btjgzLYfb7hivXtC|plain-text-password/);
  });

  const closed: Array<[string, Record<string, string> | undefined]> = [
    ['missing Secret', undefined],
    ['Secret without key "auth"', { other: 'x' }],
    ['Secret with no usable line', { auth: 'alf:$1$saltsalt$9xy1btjgzLYfb7hivXtC//\n# only a comment\n' }],
  ];
  for (const [name, data] of closed) {
    it(`${name}: fails closed with 503 and logs why`, async () => {
      const { log, records } = captureLogger();
      const { a, store } = authenticators(log);
      if (data) store.secrets.set('team/users', secret(ref, data));
      const r = await a.get('team/app', policy).check(authRequest(basic('bea', 'b-pass')));
      expect(r).toMatchObject({ allow: false, status: 503 });
      expect(records.some((l) => l.level === 40 && String(l.msg).includes('team/users'))).toBe(true);
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
  /** The real verification, counted, with the scheme and cost of each hash it was given. */
  function counted() {
    const calls: Array<ReturnType<typeof classifyHash>> = [];
    const verify = (password: string, entry: Pick<HtpasswdEntry, 'hash' | 'scheme'>) => {
      calls.push(classifyHash(entry.hash));
      return verifyPassword(password, entry);
    };
    return { calls, verify };
  }

  const schemes: Array<[string, string]> = [
    ['bcrypt cost 6', bcrypt.hashSync('pw', 6)],
    ['SHA-256-crypt', encrypt('pw', '$5$abcdefgh')],
    ['SHA-512-crypt, 7000 rounds', encrypt('pw', '$6$rounds=7000$abcdefgh')],
  ];
  for (const [name, hash] of schemes) {
    it(`${name}: an unknown user costs a verification of the same scheme and cost as a known one`, async () => {
      const { calls, verify } = counted();
      const auth = new BasicAuthenticator(parseHtpasswd(`known:${hash}`).entries, 'r', { verify });
      expect(status(await auth.check(authRequest(basic('known', 'wrong'))))).toBe(401);
      expect(status(await auth.check(authRequest(basic('nobody', 'pw'))))).toBe(401);
      expect(calls).toHaveLength(2);
      expect(calls[1]).toEqual(calls[0]);
      expect(calls[0]).toEqual(classifyHash(hash));
    });
  }

  it('an unknown user takes about as long as a wrong password (bcrypt cost 10)', async () => {
    const auth = new BasicAuthenticator(parseHtpasswd(`known:${bcrypt.hashSync('pw', 10)}`).entries, 'r');
    const timed = async (user: string) => {
      const t = performance.now();
      await auth.check(authRequest(basic(user, 'wrong')));
      return performance.now() - t;
    };
    // A lookup miss without the dummy verification would take microseconds, not milliseconds.
    expect(await timed('nobody')).toBeGreaterThan(5);
  });

  it('remembers a successful verification for 60 s, and only successful ones', async () => {
    let now = 1_000_000;
    const { calls, verify } = counted();
    const auth = new BasicAuthenticator(parseHtpasswd(`u:${bcrypt.hashSync('pw', 4)}`).entries, 'r', { now: () => now, verify });
    const ok = authRequest(basic('u', 'pw'));
    const steps: Array<[string, () => void, ReturnType<typeof authRequest>, number, number, number]> = [
      ['first success is verified', () => {}, ok, 200, 1, 1],
      ['then remembered', () => (now += 1000), ok, 200, 1, 1],
      ['a wrong password is verified and not remembered', () => {}, authRequest(basic('u', 'PW')), 401, 2, 1],
      ['again wrong, again verified', () => {}, authRequest(basic('u', 'PW')), 401, 3, 1],
      ['still remembered just before 60 s', () => (now += basicCacheTtlMs - 1001), ok, 200, 3, 1],
      ['verified again after 60 s', () => (now += 2), ok, 200, 4, 1],
    ];
    for (const [name, advance, req, want, verifications, cacheSize] of steps) {
      advance();
      expect([status(await auth.check(req)), calls.length, auth.cacheSize], name).toEqual([want, verifications, cacheSize]);
    }
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
