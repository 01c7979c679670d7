import { exportJWK, exportSPKI, generateKeyPair, SignJWT, UnsecuredJWT, type CryptoKey, type JWK } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Authenticators } from '../../../ingress/auth/authenticators.ts';
import { jwksRetryMs } from '../../../ingress/auth/jwt.ts';
import type { AuthResult } from '../../../ingress/auth/types.ts';
import type { JwtAuthPolicy } from '../../../ingress/routes/types.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { freePort } from '../../helpers/ports.ts';
import { authRequest, secret, secretStore, Servers } from './fixtures.ts';

const algs = ['RS256', 'ES256', 'EdDSA'] as const;
type Alg = (typeof algs)[number];
const issuer = 'https://issuer.example';
const ref = { namespace: 'team', name: 'jwt-keys' };
const base: JwtAuthPolicy = { type: 'jwt', issuer, audience: ['app', 'other-app'], algorithms: [] };

interface Pair {
  privateKey: CryptoKey;
  publicJwk: JWK;
  pem: string;
}
const keys = {} as Record<Alg, Pair>;
let stranger: Pair;

async function pair(alg: Alg, kid: string): Promise<Pair> {
  const { privateKey, publicKey } = await generateKeyPair(alg);
  return { privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg }, pem: await exportSPKI(publicKey) };
}

beforeAll(async () => {
  for (const alg of algs) keys[alg] = await pair(alg, `k-${alg}`);
  stranger = await pair('RS256', 'k-RS256');
});

const nowS = () => Math.floor(Date.now() / 1000);

interface Claims {
  iss?: string;
  aud?: string | string[];
  exp?: number;
  nbf?: number;
}
function sign(alg: Alg, claims: Claims = {}, key: Pair = keys[alg]): Promise<string> {
  const c = { iss: issuer, aud: 'app', exp: nowS() + 300, ...claims };
  const t = new SignJWT({ sub: 'user-1' }).setProtectedHeader({ alg, kid: key.publicJwk.kid! }).setIssuedAt();
  if (c.iss !== undefined) t.setIssuer(c.iss);
  if (c.aud !== undefined) t.setAudience(c.aud);
  if (c.exp !== undefined) t.setExpirationTime(c.exp);
  if (c.nbf !== undefined) t.setNotBefore(c.nbf);
  return t.sign(key.privateKey);
}
const withoutExp = (alg: Alg) => sign(alg, { exp: undefined } as unknown as Claims);
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

const servers = new Servers();
const opened: Authenticators[] = [];
afterEach(() => {
  for (const a of opened.splice(0)) a.close();
});
afterAll(() => servers.closeAll());

function setup() {
  const store = secretStore();
  const a = new Authenticators({ secrets: store.lookup, log: silentLogger() });
  opened.push(a);
  return { a, store };
}

const invalid = { 'www-authenticate': 'Bearer error="invalid_token"' };

function outcome(r: AuthResult): [number, Record<string, string>] {
  return r.allow ? [200, {}] : [r.status, r.headers];
}

// Token cases shared by every key source: [name, token maker, policy overrides, status].
const cases: Array<[string, () => Promise<string>, Partial<JwtAuthPolicy>, number]> = [
  ...algs.map((alg): [string, () => Promise<string>, Partial<JwtAuthPolicy>, number] => [`good ${alg}`, () => sign(alg), {}, 200]),
  ['second audience', () => sign('ES256', { aud: 'other-app' }), {}, 200],
  ['no issuer or audience required', () => sign('ES256', { iss: 'anyone', aud: 'any' }), { issuer: undefined, audience: [] }, 200],
  ['expired 10 s ago: within the 30 s tolerance', () => sign('RS256', { exp: nowS() - 10 }), {}, 200],
  ['expired 2 min ago', () => sign('RS256', { exp: nowS() - 120 }), {}, 401],
  ['not valid for another 2 min', () => sign('RS256', { nbf: nowS() + 120 }), {}, 401],
  ['no exp claim', () => withoutExp('EdDSA'), {}, 401],
  ['wrong issuer', () => sign('ES256', { iss: 'https://evil.example' }), {}, 401],
  ['wrong audience', () => sign('ES256', { aud: 'someone-else' }), {}, 401],
  ['alg not in the policy', () => sign('RS256'), { algorithms: ['ES256', 'EdDSA'] }, 401],
  ['signed by an unknown key with a known kid', () => sign('RS256', {}, stranger), {}, 401],
  ['HS256 token', () => new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setIssuer(issuer).setAudience('app').setExpirationTime('5m').sign(new TextEncoder().encode('x'.repeat(32))), {}, 401],
  ['HS256 keyed with the public key (key confusion)', () => new SignJWT({}).setProtectedHeader({ alg: 'HS256', kid: 'k-RS256' }).setIssuer(issuer).setAudience('app').setExpirationTime('5m').sign(new TextEncoder().encode(keys.RS256.pem)), {}, 401],
  ['alg none', async () => new UnsecuredJWT({}).setIssuer(issuer).setAudience('app').setExpirationTime('5m').encode(), {}, 401],
  ['not a JWT', async () => 'garbage', {}, 401],
  ['tampered payload', async () => { const [h, , s] = (await sign('ES256')).split('.'); return `${h}.${Buffer.from('{"iss":"https://issuer.example","aud":"app","exp":9999999999}').toString('base64url')}.${s}`; }, {}, 401],
];

const sources: Array<[string, (s: ReturnType<typeof setup>) => Promise<Partial<JwtAuthPolicy>>]> = [
  ['JWKS in a Secret', async ({ store }) => {
    store.secrets.set('team/jwt-keys', secret(ref, { jwks: JSON.stringify({ keys: algs.map((a) => keys[a].publicJwk) }) }));
    return { secret: ref };
  }],
  ['JWKS URL served over HTTP', async () => {
    const url = await servers.start((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: algs.map((a) => keys[a].publicJwk) }));
    });
    return { jwksUrl: `${url}/.well-known/jwks.json` };
  }],
];

for (const [sourceName, source] of sources) {
  describe(`jwt, keys from ${sourceName}`, () => {
    for (const [name, token, over, want] of cases) {
      it(name, async () => {
        const s = setup();
        const auth = s.a.get('team/app', { ...base, ...(await source(s)), ...over });
        const [status, headers] = outcome(await auth.check(authRequest(bearer(await token()))));
        expect(status).toBe(want);
        expect(headers).toEqual(want === 401 ? invalid : {});
      });
    }
  });
}

describe('jwt, one PEM key in a Secret', () => {
  for (const alg of algs) {
    it(`${alg}: its own tokens pass; tokens of other keys and algorithms do not`, async () => {
      const { a, store } = setup();
      store.secrets.set('team/jwt-keys', secret(ref, { key: keys[alg].pem }));
      const auth = a.get('team/app', { ...base, secret: ref, algorithms: [alg] });
      expect(outcome(await auth.check(authRequest(bearer(await sign(alg)))))[0]).toBe(200);
      for (const other of algs.filter((o) => o !== alg)) {
        expect(outcome(await auth.check(authRequest(bearer(await sign(other)))))).toEqual([401, invalid]);
      }
    });
  }
});

describe('jwt requests and failures', () => {
  it('no token: 401 with a Bearer challenge naming the host as realm', async () => {
    const { a, store } = setup();
    store.secrets.set('team/jwt-keys', secret(ref, { key: keys.ES256.pem }));
    const auth = a.get('team/app', { ...base, secret: ref, algorithms: ['ES256'] });
    for (const headers of [{}, { authorization: 'Basic dTpw' }, { authorization: 'Bearer ' }]) {
      expect(outcome(await auth.check(authRequest(headers)))).toEqual([401, { 'www-authenticate': 'Bearer realm="app.example.com"' }]);
    }
  });

  const misconfigured: Array<[string, Record<string, string> | undefined, Partial<JwtAuthPolicy>]> = [
    ['missing Secret', undefined, { secret: ref }],
    ['Secret with neither jwks nor key', { other: 'x' }, { secret: ref }],
    ['jwks that is not JSON', { jwks: '{nope' }, { secret: ref }],
    ['PEM key without an algorithm in the policy', { key: 'PEM' }, { secret: ref, algorithms: [] }],
    ['PEM key that does not parse', { key: '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----' }, { secret: ref, algorithms: ['RS256'] }],
    ['HS256 in the policy', { key: 'x' }, { secret: ref, algorithms: ['HS256'] }],
    ['no key source at all', undefined, {}],
    ['jwksUrl that is not http(s)', undefined, { jwksUrl: 'file:///etc/jwks.json' }],
  ];
  for (const [name, data, over] of misconfigured) {
    it(`${name}: 503 for every token`, async () => {
      const { a, store } = setup();
      if (data) store.secrets.set('team/jwt-keys', secret(ref, data));
      const auth = a.get('team/app', { ...base, ...over });
      expect(outcome(await auth.check(authRequest(bearer(await sign('RS256')))))[0]).toBe(503);
    });
  }

  it('JWKS URL refusing connections: 503', async () => {
    const { a } = setup();
    const auth = a.get('team/app', { ...base, jwksUrl: `http://127.0.0.1:${await freePort()}/jwks` });
    expect(outcome(await auth.check(authRequest(bearer(await sign('ES256')))))[0]).toBe(503);
  });

  it('JWKS URL answering 500: 503; a garbage token still 401 without a fetch', async () => {
    let fetches = 0;
    const url = await servers.start((_req, res) => {
      fetches++;
      res.statusCode = 500;
      res.end('down');
    });
    const { a } = setup();
    const auth = a.get('team/app', { ...base, jwksUrl: url });
    expect(outcome(await auth.check(authRequest(bearer('garbage'))))[0]).toBe(401);
    expect(fetches).toBe(0);
    expect(outcome(await auth.check(authRequest(bearer(await sign('ES256')))))[0]).toBe(503);
    expect(fetches).toBe(1);
  });

  // A client cannot make the gateway hammer a failing identity provider: after a failed fetch the next waits
  // jwksRetryMs, and requests meanwhile get 503 at once (with a good JWKS, unknown kids refetch only every 30 s).
  const failing: Array<[string, (res: import('node:http').ServerResponse) => void]> = [
    ['answering 500', (res) => ((res.statusCode = 500), res.end('down'))],
    ['answering 200 with a body that is not JSON', (res) => res.end('<html>maintenance</html>')],
    ['closing the connection', (res) => res.socket?.destroy()],
  ];
  for (const [name, answer] of failing) {
    it(`a JWKS URL ${name} is asked again only after ${jwksRetryMs} ms, whatever the clients send`, async () => {
      let fetches = 0;
      let up = false;
      const url = await servers.start((_req, res) => {
        fetches++;
        if (up) res.end(JSON.stringify({ keys: [keys.ES256.publicJwk] }));
        else answer(res);
      });
      const { a } = setup();
      const auth = a.get('team/app', { ...base, jwksUrl: url });
      const token = await sign('ES256');
      const started = performance.now();
      for (let i = 0; i < 20; i++) expect(outcome(await auth.check(authRequest(bearer(token))))[0]).toBe(503);
      expect(performance.now() - started).toBeLessThan(jwksRetryMs);
      expect(fetches).toBe(1);
      up = true;
      await new Promise((r) => setTimeout(r, jwksRetryMs + 50));
      expect(outcome(await auth.check(authRequest(bearer(token))))[0]).toBe(200);
      expect(fetches).toBe(2);
    });
  }

  it('the JWKS is fetched once and cached across requests', async () => {
    let fetches = 0;
    const url = await servers.start((_req, res) => {
      fetches++;
      res.end(JSON.stringify({ keys: [keys.EdDSA.publicJwk] }));
    });
    const { a } = setup();
    const auth = a.get('team/app', { ...base, jwksUrl: url });
    for (let i = 0; i < 5; i++) expect(outcome(await auth.check(authRequest(bearer(await sign('EdDSA')))))[0]).toBe(200);
    expect(fetches).toBe(1);
  });

  it('a Secret change is picked up after secretsChanged', async () => {
    const { a, store } = setup();
    const policy = { ...base, secret: ref, algorithms: ['ES256'] };
    store.secrets.set('team/jwt-keys', secret(ref, { key: keys.ES256.pem }));
    const token = await sign('ES256');
    expect(outcome(await a.get('team/app', policy).check(authRequest(bearer(token))))[0]).toBe(200);
    const rotated = await pair('ES256', 'k-new');
    store.secrets.set('team/jwt-keys', secret(ref, { key: rotated.pem }));
    a.secretsChanged(['team/jwt-keys']);
    expect(outcome(await a.get('team/app', policy).check(authRequest(bearer(token))))[0]).toBe(401);
    const fresh = await new SignJWT({}).setProtectedHeader({ alg: 'ES256' }).setIssuer(issuer).setAudience('app').setExpirationTime('5m').sign(rotated.privateKey);
    expect(outcome(await a.get('team/app', policy).check(authRequest(bearer(fresh))))[0]).toBe(200);
  });
});
