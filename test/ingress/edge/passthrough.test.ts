// Which TLS server names are passed through, against route tables the real compiler builds (the served version of
// each Ingress decides, its own rule hosts only); what a passthrough Ingress may also ask for (source ranges and
// limit-connections, enforced per connection) and what is refused with it (auth, client certificates, request
// rates); the round robin over a backend's endpoints; and the ssl-passthrough annotation with and without
// --enable-ssl-passthrough.
import { describe, expect, it } from 'vitest';
import { Passthrough, passthroughChoice, sourceAllowed, type PassthroughChoice } from '../../../ingress/edge/passthrough.ts';
import { RateLimiters } from '../../../ingress/limits/rate.ts';
import { AnnotationReader } from '../../../ingress/routes/annotations.ts';
import { ignoredAnnotations } from '../../../ingress/routes/unhonoured.ts';
import { AnnotationError } from '../../../ingress/routes/errors.ts';
import type { Ingress } from '../../../cluster/model/ingress.ts';
import { compile, defaults, ingress, rule } from '../routes/fixtures.ts';

const ngx = 'nginx.ingress.kubernetes.io/';
const key = `${ngx}ssl-passthrough`;
const pass = { [key]: 'true' };

const switchOn = { defaults: { ...defaults, sslPassthrough: true } };

/** The choice as [Ingress, backend key], or undefined: terminated. */
const shown = (c: PassthroughChoice | undefined) => (c === undefined ? undefined : [c.ingress, c.backend.key]);

describe('passthroughChoice', () => {
  const ingresses = [
    ingress('pass', { annotations: pass, rules: [rule('pass.test', 'Prefix / tls:443', 'Prefix /other web:80')] }),
    ingress('exact', { annotations: { [key]: 'True' }, rules: [rule('exact.test', 'Exact / tls:https')] }),
    ingress('wild', { annotations: { [key]: '1' }, rules: [rule('*.wild.test', 'Prefix / tls:443')] }),
    ingress('apionly', { annotations: pass, rules: [rule('api.test', 'Prefix /api tls:443')] }),
    ingress('plain', { rules: [rule('plain.test', 'Prefix / web:80'), rule('x.wild.test', 'Prefix / web:80')] }),
    ingress('off', { annotations: { [key]: 'false' }, rules: [rule('off.test', 'Prefix / tls:443')] }),
    ingress('anyhost', { annotations: pass, rules: [rule('', 'Prefix / tls:443')] }),
    ingress('shared', { rules: [rule('shared.test', 'Prefix / web:80')] }),
    ingress('sharedpass', { annotations: pass, rules: [rule('shared.test', 'Prefix /api tls:443')] }),
    // ingress-nginx passes only the server's own host name through; the www. redirect and the aliases stay on nginx.
    ingress('pass2', { annotations: { ...pass, [`${ngx}from-to-www-redirect`]: 'true', [`${ngx}server-alias`]: 'alias2.test, Alias3.test' }, rules: [rule('pass2.test', 'Prefix / tls:443')] }),
    ingress('pass3', { annotations: { ...pass, [`${ngx}from-to-www-redirect`]: 'true' }, rules: [rule('www.pass3.test', 'Prefix / tls:443')] }),
    // Another Ingress checks client certificates for the host: the check is made only in a handshake netplane makes.
    ingress('mtlspass', { annotations: pass, rules: [rule('mtls.test', 'Prefix / tls:443')] }),
    ingress('mtlsadmin', { annotations: { [`${ngx}auth-tls-secret`]: 'ca' }, rules: [rule('mtls.test', 'Prefix /admin web:80')] }),
  ];
  const { table } = compile(ingresses, switchOn);

  // [server name, Ingress passed through to and backend, or undefined: terminated]
  const cases: Array<[string, [string, string] | undefined]> = [
    ['pass.test', ['default/pass', 'default/tls:443']],
    ['exact.test', ['default/exact', 'default/tls:https']],
    ['a.wild.test', ['default/wild', 'default/tls:443']],
    // The exact rule of another Ingress wins over the wildcard, as in routing.
    ['x.wild.test', undefined],
    // Two labels under a one-label wildcard: no rule with that host, only the rule without host.
    ['a.b.wild.test', undefined],
    ['api.test', undefined],
    ['plain.test', undefined],
    ['off.test', undefined],
    // A rule without host never passes through: it would take every name.
    ['nobody.test', undefined],
    // The `/` rule of the host is another Ingress's, which does not ask.
    ['shared.test', undefined],
    ['pass2.test', ['default/pass2', 'default/tls:443']],
    ['www.pass2.test', undefined],
    ['alias2.test', undefined],
    ['alias3.test', undefined],
    ['www.pass3.test', ['default/pass3', 'default/tls:443']],
    ['pass3.test', undefined],
    ['mtls.test', undefined],
  ];
  for (const [name, want] of cases) it(name, () => expect(shown(passthroughChoice(name, table))).toEqual(want));

  it('the www. names and aliases are routed (terminated) under the Ingress as before', () => {
    expect(table.match('www.pass2.test', '/')?.policy.redirectToHost).toBe('pass2.test');
    expect(table.match('alias2.test', '/')?.ingress).toBe('default/pass2');
  });

  it('a host whose client certificates another Ingress checks is a problem of the passthrough Ingress', () => {
    expect(table.problems).toEqual([
      { ingress: 'default/mtlspass', reason: 'host "mtls.test" is not passed through: Ingress default/mtlsadmin asks for client certificates for it, which netplane can check only on TLS it terminates', keptLastGood: false },
    ]);
  });
});

describe('passthrough follows the served version of an Ingress, never a refused one', () => {
  const host = (annotations: Record<string, string>, name = 'pt') => ingress(name, { annotations, rules: [rule('pt.test', 'Prefix / tls:443')] });
  const basic = { [`${ngx}auth-type`]: 'basic', [`${ngx}auth-secret`]: 'htpasswd' };
  /** Compiles `first`, then `then` with the versions `first` served as the last good ones. */
  const after = (first: Ingress, then: Ingress) => compile([then], { ...switchOn, lastGood: compile([first], switchOn).served });

  it('a refused edit adding ssl-passthrough: the last good version (with basic auth) is served, and terminated', () => {
    const { table } = after(host(basic), host({ ...basic, ...pass, [`${ngx}limit-rps`]: 'lots' }));
    expect(table.problems).toMatchObject([{ ingress: 'default/pt', keptLastGood: true }]);
    expect(table.match('pt.test', '/')?.policy.auth).toMatchObject({ type: 'basic' });
    expect(passthroughChoice('pt.test', table)).toBeUndefined();
  });

  it('a refused edit dropping ssl-passthrough: the last good version is still passed through', () => {
    const { table } = after(host(pass), host({ [`${ngx}limit-rps`]: 'lots' }));
    expect(table.problems).toMatchObject([{ ingress: 'default/pt', keptLastGood: true }]);
    expect(shown(passthroughChoice('pt.test', table))).toEqual(['default/pt', 'default/tls:443']);
  });

  it('an edit that is served takes effect', () => {
    expect(passthroughChoice('pt.test', after(host(pass), host({})).table)).toBeUndefined();
    expect(passthroughChoice('pt.test', after(host({}), host(pass)).table)).toBeDefined();
  });
});

describe('what a passthrough Ingress may also ask for', () => {
  // [what, annotations beside ssl-passthrough, the problem (undefined: served)]
  const cases: Array<[string, Record<string, string>, RegExp | undefined]> = [
    ['basic auth', { [`${ngx}auth-type`]: 'basic', [`${ngx}auth-secret`]: 'htpasswd' }, /auth-type is "basic"; a passed-through TLS connection is never decrypted, so netplane cannot ask for credentials/],
    ['jwt', { 'netplane.io/auth-type': 'jwt', 'netplane.io/auth-jwt-secret': 'keys' }, /netplane\.io\/auth-type is "jwt".*cannot ask for credentials/],
    ['auth-url', { [`${ngx}auth-url`]: 'http://auth.example/check' }, /auth-url is "http:\/\/auth\.example\/check".*cannot ask for credentials/],
    ['client certificates', { [`${ngx}auth-tls-secret`]: 'ca' }, /auth-tls-secret is "ca".*cannot ask for a client certificate/],
    ['limit-rps', { [`${ngx}limit-rps`]: '10' }, /limit-rps is "10".*cannot count its requests/],
    ['limit-rpm', { [`${ngx}limit-rpm`]: '600', [`${ngx}limit-connections`]: '2' }, /limit-rpm is "600".*cannot count its requests/],
    ['limit-rps, ssl-passthrough "True"', { [key]: 'True', [`${ngx}limit-rps`]: '10' }, /ssl-passthrough is "True" while .*limit-rps is "10"/],
    ['client certificates switched off', { [`${ngx}auth-tls-secret`]: 'ca', [`${ngx}auth-tls-verify-client`]: 'off' }, undefined],
    ['limit-connections', { [`${ngx}limit-connections`]: '2', [`${ngx}limit-whitelist`]: '10.0.0.0/8' }, undefined],
    ['source ranges', { [`${ngx}allowlist-source-range`]: '10.0.0.0/8', [`${ngx}denylist-source-range`]: '10.9.0.0/16' }, undefined],
  ];
  for (const [name, annotations, problem] of cases) {
    it(`${name}: ${problem === undefined ? 'served' : 'refused'}`, () => {
      const { table } = compile([ingress('pt', { annotations: { ...pass, ...annotations }, rules: [rule('pt.test', 'Prefix / tls:443')] })], switchOn);
      if (problem === undefined) {
        expect(table.problems).toEqual([]);
        expect(passthroughChoice('pt.test', table)).toBeDefined();
      } else {
        expect(table.problems).toHaveLength(1);
        expect(table.problems[0]).toMatchObject({ ingress: 'default/pt', keptLastGood: false, reason: expect.stringMatching(problem) });
        expect(table.problems[0]!.reason).toMatch(new RegExp(`^annotation ${key} is "(true|True)" while `));
        expect(table.match('pt.test', '/')).toBeUndefined();
      }
    });
  }

  it('without --enable-ssl-passthrough the same Ingresses are refused for the passthrough itself', () => {
    const { table } = compile([ingress('pt', { annotations: { ...pass, [`${ngx}limit-connections`]: '2' }, rules: [rule('pt.test', 'Prefix / tls:443')] })]);
    expect(table.problems[0]?.reason).toMatch(/without --enable-ssl-passthrough/);
  });
});

describe('Passthrough.admit: source ranges and limit-connections per connection', () => {
  const ingresses = [
    ingress('ranged', { annotations: { ...pass, [`${ngx}allowlist-source-range`]: '10.0.0.0/8, 2001:db8::/32', [`${ngx}denylist-source-range`]: '10.9.0.0/16' }, rules: [rule('ranged.test', 'Prefix / tls:443')] }),
    ingress('limited', { annotations: { ...pass, [`${ngx}limit-connections`]: '2', [`${ngx}limit-whitelist`]: '192.0.2.1' }, rules: [rule('limited.test', 'Prefix / tls:443')] }),
  ];
  const { table } = compile(ingresses, switchOn);
  const passthrough = () => {
    const limiters = new RateLimiters();
    return new Passthrough({ table: () => table, endpoints: () => [{ ip: '10.0.0.1', port: 8443 }], limiter: (i, p) => limiters.get(i, p) });
  };

  // [client, refused (undefined: let in)]
  const ranges: Array<[string, string | undefined]> = [
    ['10.1.2.3', undefined],
    ['2001:db8::7', undefined],
    ['::ffff:10.1.2.3', undefined],
    ['10.9.1.1', 'source-range'],
    ['192.0.2.1', 'source-range'],
    ['', 'source-range'],
  ];
  for (const [ip, refused] of ranges) {
    it(`source range, client ${JSON.stringify(ip)}: ${refused ?? 'let in'}`, () => {
      const p = passthrough();
      const admitted = p.admit(p.target('ranged.test')!, ip);
      expect('refused' in admitted ? admitted.refused : undefined).toBe(refused);
      expect(sourceAllowed(table.match('ranged.test', '/')!.policy, ip)).toBe(refused === undefined);
    });
  }

  it('limit-connections: two open connections per client, a third refused until one closes; other clients and the whitelist apart', () => {
    const p = passthrough();
    const target = p.target('limited.test')!;
    const take = (ip: string) => p.admit(target, ip);
    const first = take('198.51.100.1');
    const second = take('198.51.100.1');
    expect(take('198.51.100.1')).toEqual({ refused: 'connection-limit' });
    expect('release' in take('198.51.100.2')).toBe(true);
    expect([1, 2, 3].map(() => 'release' in take('192.0.2.1'))).toEqual([true, true, true]);
    if (!('release' in first) || !('release' in second)) throw new Error('the first two were refused');
    first.release();
    first.release();
    expect('release' in take('198.51.100.1')).toBe(true);
    expect(take('198.51.100.1')).toEqual({ refused: 'connection-limit' });
  });
});

describe('Passthrough', () => {
  const ingresses = [ingress('pass', { annotations: pass, rules: [rule('pass.test', 'Prefix / tls:443')] })];
  const { table } = compile(ingresses, switchOn);
  const endpoints = [
    { ip: '10.0.0.1', port: 8443 },
    { ip: '10.0.0.2', port: 8443 },
    { ip: '10.0.0.3', port: 8443 },
  ];
  const limiters = new RateLimiters();
  const limiter = (i: string, p: Parameters<RateLimiters['get']>[1]) => limiters.get(i, p);

  it('starts each connection of a backend at the next endpoint, the others after it to retry', () => {
    const p = new Passthrough({ table: () => table, endpoints: () => endpoints, limiter });
    const firsts = [1, 2, 3, 4].map(() => p.target('pass.test')!.endpoints.map((e) => e.ip.slice(-1)).join(''));
    expect(firsts).toEqual(['123', '231', '312', '123']);
  });

  it('a backend without endpoints: a target with none (the connection is closed)', () => {
    const asked: string[] = [];
    const p = new Passthrough({ table: () => table, endpoints: (b) => (asked.push(b.key), []), limiter });
    expect(p.target('pass.test')).toMatchObject({ ingress: 'default/pass', endpoints: [] });
    expect(p.target('other.test')).toBeUndefined();
    expect(asked).toEqual(['default/tls:443']);
  });
});

describe('the ssl-passthrough annotation', () => {
  // [value, refused without the switch, refused with it]
  const cases: Array<[string, boolean, boolean]> = [
    ['true', true, false],
    ['True', true, false],
    ['1', true, false],
    ['false', false, false],
    ['', false, false],
    // Not a Go boolean: refused either way rather than guessed.
    ['yes', true, true],
    ['on', true, true],
  ];
  for (const [value, without, withSwitch] of cases) {
    it(JSON.stringify(value), () => {
      const read = (sslPassthrough: boolean) => () => new AnnotationReader({ [key]: value }, { sslPassthrough });
      if (without) expect(read(false)).toThrow(AnnotationError);
      else expect(read(false)).not.toThrow();
      if (withSwitch) expect(read(true)).toThrow(/--enable-ssl-passthrough/);
      else expect(read(true)).not.toThrow();
    });
  }

  it('is not reported as ignored when it is served', () => {
    const known = () => false;
    expect(ignoredAnnotations({ [key]: 'true' }, known, { sslPassthrough: true })).toEqual({ tuning: [], unknown: [] });
    expect(ignoredAnnotations({ [key]: 'false' }, known, { sslPassthrough: true })).toEqual({ tuning: [key], unknown: [] });
    expect(ignoredAnnotations({ [key]: 'true' }, known)).toEqual({ tuning: [key], unknown: [] });
  });
});
