// Basic-auth Secrets that are there but cannot be used are problems of the Ingresses that name them.
import { describe, expect, it } from 'vitest';
import { basicAuthProblems } from '../../../ingress/auth/secret-problems.ts';
import type { IngressPolicy } from '../../../ingress/routes/types.ts';
import { knownVectors, secret, secretStore } from './fixtures.ts';

const base: IngressPolicy = { sslRedirect: true, forceSslRedirect: false, backendProtocol: 'HTTP', maxBodyBytes: 1 << 20, connectTimeoutMs: 5000, readTimeoutMs: 60_000, sendTimeoutMs: 60_000, loadBalance: 'round_robin' };
const basicOn = (name: string): IngressPolicy => ({ ...base, auth: { type: 'basic', secret: { namespace: 'team', name }, realm: 'r' } });

describe('basicAuthProblems', () => {
  const { secrets, lookup } = secretStore();
  const put = (name: string, data: Record<string, string>) => secrets.set(`team/${name}`, secret({ namespace: 'team', name }, data));
  put('good', { auth: `# users\nann:$1$saltsalt$9xy1btjgzLYfb7hivXtC//\nbob:${knownVectors.find((v) => v.scheme === 'apr1-md5')!.hash}\n` });
  put('old', { auth: 'ann:$1$saltsalt$9xy1btjgzLYfb7hivXtC//\nbob:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=\ncid:plain\ndan:plain\neve:plain\n' });
  put('nokey', { users: 'ann:x' });
  put('empty', { auth: '# nobody yet\n' });

  // [the Secret the Ingress names, the problem's reason, or undefined]
  it.each([
    ['good', undefined],
    ['missing', undefined],
    ['old', 'basic auth Secret team/old has no usable htpasswd line (line 1: an MD5-crypt ($1$) hash is not accepted'],
    ['nokey', 'basic auth Secret team/nokey has no key "auth", so every request gets 503'],
    ['empty', 'basic auth Secret team/empty has no htpasswd line, so every request gets 503'],
  ])('a basic-auth Ingress on Secret %s', (name, reason) => {
    const problems = basicAuthProblems(new Map([['team/app', basicOn(name)], ['team/open', base]]), lookup);
    if (reason === undefined) expect(problems).toEqual([]);
    else {
      expect(problems.map((p) => [p.ingress, p.keptLastGood])).toEqual([['team/app', false]]);
      expect(problems[0]!.reason).toContain(reason);
    }
  });

  it('names at most three refused lines, and how many more, never a hash', () => {
    const [p] = basicAuthProblems(new Map([['team/app', basicOn('old')]]), lookup);
    expect(p!.reason).toMatch(/line 1: .*; line 2: a SHA-1 .*; line 3: .*; 2 more\), so every request gets 503$/);
    expect(p!.reason).not.toMatch(/9xy1btjg|5en6G6/);
  });
});
