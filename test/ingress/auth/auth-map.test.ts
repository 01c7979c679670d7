// auth-secret-type auth-map: a basic-auth Secret with one key per user, its value the password hash, read as
// ingress-nginx writes it into nginx's htpasswd file (`key:value` per key); bad entries are skipped as bad lines are.
import { afterEach, describe, expect, it } from 'vitest';
import { Authenticators } from '../../../ingress/auth/authenticators.ts';
import { basicUsers } from '../../../ingress/auth/basic-secret.ts';
import { basicAuthProblems } from '../../../ingress/auth/secret-problems.ts';
import { readPolicy } from '../../../ingress/routes/policy.ts';
import type { AuthResult } from '../../../ingress/auth/types.ts';
import type { BasicAuthPolicy, IngressPolicy } from '../../../ingress/routes/types.ts';
import { captureLogger } from '../../helpers/wait.ts';
import { authRequest, basic, knownVectors, secret, secretStore } from './fixtures.ts';

const ngx = 'nginx.ingress.kubernetes.io/';
const ref = { namespace: 'team', name: 'users' };
const mapPolicy: BasicAuthPolicy = { type: 'basic', secret: ref, realm: 'Team', secretType: 'auth-map' };
const apr1 = knownVectors.find((v) => v.name.startsWith('openssl -apr1 ('))!;
const sha512 = knownVectors.find((v) => v.name === 'openssl -6')!;

describe('readPolicy: auth-secret-type', () => {
  const read = (type: string | undefined) => readPolicy('team', { [`${ngx}auth-type`]: 'basic', [`${ngx}auth-secret`]: 'users', ...(type === undefined ? {} : { [`${ngx}auth-secret-type`]: type }) }, { connectTimeoutMs: 1, readTimeoutMs: 1 }).policy.auth;
  it.each([
    [undefined, { type: 'basic', secret: ref, realm: 'Authentication Required' }],
    ['auth-file', { type: 'basic', secret: ref, realm: 'Authentication Required' }],
    ['auth-map', { type: 'basic', secret: ref, realm: 'Authentication Required', secretType: 'auth-map' }],
  ])('%s', (type, auth) => expect(read(type)).toEqual(auth));

  it('refuses another layout with one sentence', () => {
    expect(() => read('auth-list')).toThrow(`annotation ${ngx}auth-secret-type is "auth-list"; allowed are auth-file, auth-map`);
  });
});

describe('basicUsers: auth-map', () => {
  // [Secret data, users read (name, line), refused (key, a word of the reason)]
  const cases: Array<[string, Record<string, string>, Array<[string, number]>, Array<[string, string]>]> = [
    ['two users, sorted', { zoe: sha512.hash, ann: apr1.hash }, [['ann', 1], ['zoe', 2]], []],
    ['a trailing line break, as `htpasswd -n` or a file leaves it', { ann: `${apr1.hash}\n`, bob: `${sha512.hash}\r\n` }, [['ann', 1], ['bob', 2]], []],
    ['an nginx comment after the hash', { ann: `${apr1.hash}:on call` }, [['ann', 1]], []],
    ['a plain password', { ann: 'secret', bob: apr1.hash }, [['bob', 2]], [['ann', 'plain-text']]],
    ['an MD5-crypt hash', { ann: '$1$saltsalt$9xy1btjgzLYfb7hivXtC//' }, [], [['ann', 'MD5-crypt']]],
    ['an empty value', { ann: '' }, [], [['ann', 'plain-text']]],
    ['a second line inside a value is not another user', { ann: `${apr1.hash}\nbob:${apr1.hash}` }, [], [['ann', 'line break']]],
    ['a key with ":"', { 'a:b': apr1.hash }, [], [['a:b', 'user name']]],
    // The key `auth` is a user like any other in an auth-map, as ingress-nginx writes it.
    ['a key named auth', { auth: apr1.hash }, [['auth', 1]], []],
  ];
  it.each(cases)('%s', (_what, data, users, refused) => {
    const read = basicUsers(secret(ref, data), 'auth-map');
    if ('missing' in read) throw new Error(read.missing);
    expect(read.entries.map((e) => [e.user, e.line])).toEqual(users);
    expect(read.entries.every((e) => e.key === e.user)).toBe(true);
    expect(read.refused.map((r) => [r.key, r.reason])).toEqual(refused.map(([k, w]) => [k, expect.stringContaining(w)]));
  });

  it('a Secret with no key has nothing to read, and an auth-file Secret is still read from `auth` only', () => {
    expect(basicUsers(secret(ref, {}), 'auth-map')).toEqual({ missing: expect.stringContaining('has no key') });
    expect(basicUsers(secret(ref, { ann: apr1.hash }), 'auth-file')).toEqual({ missing: 'has no key "auth"' });
  });
});

describe('basic auth against an auth-map Secret', () => {
  const opened: Authenticators[] = [];
  afterEach(() => {
    for (const a of opened.splice(0)) a.close();
  });
  const status = (r: AuthResult) => (r.allow ? 200 : r.status);

  it.each([
    ['the Apache MD5 user', basic('ann', apr1.password), 200],
    ['the SHA-512-crypt user', basic('bob', sha512.password), 200],
    ['a wrong password', basic('ann', 'wrong'), 401],
    ['an unknown user', basic('zed', apr1.password), 401],
    ['the user of a refused entry', basic('pat', 'plain'), 401],
    ['no credentials', {}, 401],
  ])('%s gets %i', async (_what, headers, code) => {
    const { log, records } = captureLogger();
    const store = secretStore();
    store.secrets.set('team/users', secret(ref, { ann: `${apr1.hash}\n`, bob: sha512.hash, pat: 'plain' }));
    const a = new Authenticators({ secrets: store.lookup, log });
    opened.push(a);
    expect(status(await a.get('team/app', mapPolicy).check(authRequest(headers)))).toBe(code);
    // The refused entry is logged by its key, never with its value.
    const skipped = records.filter((r) => r.level === 40);
    expect(skipped.map((r) => [r.key, r.msg])).toEqual([['pat', expect.stringContaining('auth-map entry skipped: a plain-text')]]);
    expect(JSON.stringify(records)).not.toContain('"plain"');
  });

  it('fails closed (503) with no usable entry, and the Ingress has a problem naming the keys', async () => {
    const store = secretStore();
    store.secrets.set('team/users', secret(ref, { ann: 'plain', bob: '{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=' }));
    const a = new Authenticators({ secrets: store.lookup, log: captureLogger().log });
    opened.push(a);
    expect(status(await a.get('team/app', mapPolicy).check(authRequest(basic('ann', 'plain'))))).toBe(503);
    const base: IngressPolicy = { sslRedirect: true, forceSslRedirect: false, backendProtocol: 'HTTP', maxBodyBytes: 1, connectTimeoutMs: 1, readTimeoutMs: 1, sendTimeoutMs: 1, loadBalance: 'round_robin' };
    const [p] = basicAuthProblems(new Map([['team/app', { ...base, auth: mapPolicy }]]), store.lookup);
    expect(p!.reason).toMatch(/^basic auth Secret team\/users has no usable auth-map entry \(key "ann": a plain-text .*; key "bob": a SHA-1 .*\), so every request gets 503$/);
    // The same Secret read as an htpasswd file is a different verdict (no key "auth"), not the cached one.
    const [q] = basicAuthProblems(new Map([['team/app', { ...base, auth: { ...mapPolicy, secretType: undefined } as BasicAuthPolicy }]]), store.lookup);
    expect(q!.reason).toContain('has no key "auth"');
  });
});
