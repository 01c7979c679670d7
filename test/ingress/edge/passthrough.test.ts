// Which TLS server names are passed through, against route tables the real compiler builds; the round robin over
// a backend's endpoints; and the ssl-passthrough annotation with and without --enable-ssl-passthrough.
import { describe, expect, it } from 'vitest';
import { Passthrough, passthroughChoice } from '../../../ingress/edge/passthrough.ts';
import { AnnotationReader } from '../../../ingress/routes/annotations.ts';
import { ignoredAnnotations } from '../../../ingress/routes/unhonoured.ts';
import { AnnotationError } from '../../../ingress/routes/errors.ts';
import { compile, defaults, ingress, rule } from '../routes/fixtures.ts';

const key = 'nginx.ingress.kubernetes.io/ssl-passthrough';

const switchOn = { defaults: { ...defaults, sslPassthrough: true } };

describe('passthroughChoice', () => {
  const ingresses = [
    ingress('pass', { annotations: { [key]: 'true' }, rules: [rule('pass.test', 'Prefix / tls:443', 'Prefix /other web:80')] }),
    ingress('exact', { annotations: { [key]: 'True' }, rules: [rule('exact.test', 'Exact / tls:https')] }),
    ingress('wild', { annotations: { [key]: '1' }, rules: [rule('*.wild.test', 'Prefix / tls:443')] }),
    ingress('apionly', { annotations: { [key]: 'true' }, rules: [rule('api.test', 'Prefix /api tls:443')] }),
    ingress('plain', { rules: [rule('plain.test', 'Prefix / web:80'), rule('x.wild.test', 'Prefix / web:80')] }),
    ingress('off', { annotations: { [key]: 'false' }, rules: [rule('off.test', 'Prefix / tls:443')] }),
    ingress('anyhost', { annotations: { [key]: 'true' }, rules: [rule('', 'Prefix / tls:443')] }),
    ingress('shared', { rules: [rule('shared.test', 'Prefix / web:80')] }),
    ingress('sharedpass', { annotations: { [key]: 'true' }, rules: [rule('shared.test', 'Prefix /api tls:443')] }),
  ];
  const { table, served } = compile(ingresses, switchOn);
  const annotationsOf = (name: string) => served.get(name)?.metadata.annotations;

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
  ];
  for (const [name, want] of cases) {
    it(name, () => {
      const c = passthroughChoice(name, table, annotationsOf);
      expect(c === undefined ? undefined : [c.ingress, c.backend.key]).toEqual(want);
    });
  }
  it('every Ingress above is served with the switch on', () => expect(table.problems).toEqual([]));
});

describe('Passthrough', () => {
  const ingresses = [ingress('pass', { annotations: { [key]: 'true' }, rules: [rule('pass.test', 'Prefix / tls:443')] })];
  const { table, served } = compile(ingresses, switchOn);
  const endpoints = [
    { ip: '10.0.0.1', port: 8443 },
    { ip: '10.0.0.2', port: 8443 },
    { ip: '10.0.0.3', port: 8443 },
  ];

  it('starts each connection of a backend at the next endpoint, the others after it to retry', () => {
    const p = new Passthrough({ table: () => table, annotationsOf: (n) => served.get(n)?.metadata.annotations, endpoints: () => endpoints });
    const firsts = [1, 2, 3, 4].map(() => p.target('pass.test')!.endpoints.map((e) => e.ip.slice(-1)).join(''));
    expect(firsts).toEqual(['123', '231', '312', '123']);
  });

  it('a backend without endpoints: a target with none (the connection is closed)', () => {
    const asked: string[] = [];
    const p = new Passthrough({ table: () => table, annotationsOf: (n) => served.get(n)?.metadata.annotations, endpoints: (b) => (asked.push(b.key), []) });
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
