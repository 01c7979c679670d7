// auth-tls-match-cn read from the annotations: a pattern for the client certificate's subject DN, checked by
// routes/user-regex.ts; only with auth-tls-secret, and not with verify "off" (no certificate would be asked for).
import { describe, expect, it } from 'vitest';
import { readPolicy } from '../../../ingress/routes/policy.ts';

const ngx = 'nginx.ingress.kubernetes.io/';
const read = (annotations: Record<string, string>) => readPolicy('shop', annotations, { connectTimeoutMs: 1, readTimeoutMs: 1 }).policy.clientCert;
const guarded = (more: Record<string, string>) => ({ [`${ngx}auth-tls-secret`]: 'ca', ...more });

describe('readPolicy: auth-tls-match-cn', () => {
  it.each([
    ['a pattern', guarded({ [`${ngx}auth-tls-match-cn`]: 'CN=client1' }), 'CN=client1'],
    ['with verify optional', guarded({ [`${ngx}auth-tls-verify-client`]: 'optional', [`${ngx}auth-tls-match-cn`]: '^CN=(a|b),' }), '^CN=(a|b),'],
    ['empty: none, as ingress-nginx writes no check', guarded({ [`${ngx}auth-tls-match-cn`]: '' }), undefined],
  ])('%s', (_what, annotations, matchCn) => {
    expect(read(annotations)?.matchCn).toBe(matchCn);
  });

  it.each([
    ['without auth-tls-secret', { [`${ngx}auth-tls-match-cn`]: 'CN=client1' }, 'only with auth-tls-secret'],
    ['with verify off', guarded({ [`${ngx}auth-tls-verify-client`]: 'off', [`${ngx}auth-tls-match-cn`]: 'CN=client1' }), 'auth-tls-verify-client is "off"'],
    ['a look-behind', guarded({ [`${ngx}auth-tls-match-cn`]: '(?<=CN=)client1' }), 'a look-ahead or look-behind'],
  ])('refuses %s', (_what, annotations, why) => {
    expect(() => read(annotations)).toThrow(why);
    expect(() => read(annotations)).toThrow(`annotation ${ngx}auth-tls-match-cn is `);
  });
});
