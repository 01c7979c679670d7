// The admission webhook's judgement (pure): an Ingress write checked against the others as the route compiler would
// serve them — refused when it would not be served as written, with warnings for what is served otherwise — and the
// AdmissionReview exchange around it.
import { describe, expect, it } from 'vitest';
import { checkIngress, type CheckGround } from '../../../ingress/admission/check.ts';
import { BadReviewError, readReview, reviewResponse, subjectOf } from '../../../ingress/admission/review.ts';
import type { CompileInput } from '../../../ingress/routes/compile.ts';
import type { Ingress } from '../../../cluster/model/ingress.ts';
import { defaults, ingress, rule } from '../routes/fixtures.ts';

const ngx = 'nginx.ingress.kubernetes.io/';
const web = ingress('web', { rules: [rule('web.test', 'Prefix / web')], created: '2024-01-01T00:00:00Z' });
const newer = ingress('newer', { rules: [rule('new.test', 'Prefix /api api')], created: '2025-01-01T00:00:00Z' });

/** The ground of a check: these Ingresses served now, every backend Service there but `missing`. */
function ground(ingresses: Ingress[], missing: string[] = []): CheckGround {
  const input: CompileInput = { ingresses, classes: [], className: 'netplane', lastGood: new Map(ingresses.map((i) => [`default/${i.metadata.name}`, i])), defaults };
  return {
    input,
    objectProblems: (table) =>
      [...table.backends.values()].filter((b) => missing.includes(b.service)).flatMap((b) => [...(table.backendUsers?.get(b.key) ?? [])].map((i) => ({ ingress: i, reason: `backend Service ${b.service} does not exist`, keptLastGood: false, partly: true as const }))),
  };
}

describe('checkIngress', () => {
  it('allows an Ingress on a host of its own, without a word', () => {
    expect(checkIngress(ingress('shop', { rules: [rule('shop.test', 'Prefix / shop')] }), ground([web, newer]))).toEqual({ allowed: true, warnings: [] });
  });

  it('allows an update of an Ingress that keeps what it serves', () => {
    expect(checkIngress(web, ground([web, newer]))).toEqual({ allowed: true, warnings: [] });
  });

  it('refuses a host and path another Ingress routes, naming it', () => {
    const v = checkIngress(ingress('copy', { rules: [rule('web.test', 'Prefix / other')], created: '2026-01-01T00:00:00Z' }), ground([web]));
    expect(v.allowed).toBe(false);
    expect(v.message).toMatch(/^netplane would not serve Ingress default\/copy as written: .*web\.test.* is dropped: Ingress default\/web, .* already routes it$/);
  });

  it('refuses an update that would take a path from a newer Ingress that serves it now', () => {
    const grown = ingress('web', { rules: [rule('web.test', 'Prefix / web'), rule('new.test', 'Prefix /api web')], created: '2024-01-01T00:00:00Z' });
    const v = checkIngress(grown, ground([web, newer]));
    expect(v.allowed).toBe(false);
    expect(v.message).toMatch(/Ingress default\/newer would lose what it serves now: .*new\.test.*is dropped: Ingress default\/web/);
  });

  it('refuses an annotation value it cannot honour, and a snippet', () => {
    const bad = checkIngress(ingress('big', { rules: [rule('big.test', 'Prefix / web')], annotations: { [`${ngx}proxy-body-size`]: 'lots' } }), ground([web]));
    expect(bad.allowed).toBe(false);
    expect(bad.message).toContain('proxy-body-size');
    const snippet = checkIngress(ingress('snip', { rules: [rule('snip.test', 'Prefix / web')], annotations: { [`${ngx}configuration-snippet`]: 'return 200;' } }), ground([web]));
    expect(snippet.allowed).toBe(false);
    expect(snippet.message).toContain('configuration-snippet');
  });

  it('judges the write as written, not by the last good version the gateway keeps serving', () => {
    const broken = ingress('web', { rules: [rule('web.test', 'Prefix / web')], annotations: { [`${ngx}proxy-body-size`]: 'lots' }, created: '2024-01-01T00:00:00Z' });
    expect(checkIngress(broken, ground([web])).allowed).toBe(false);
  });

  it('allows, with warnings, a missing backend Service and annotations netplane ignores or does not know', () => {
    const v = checkIngress(
      ingress('later', { rules: [rule('later.test', 'Prefix / coming')], annotations: { [`${ngx}proxy-buffer-size`]: '8k', [`${ngx}rewrite-taget`]: '/' } }),
      ground([web], ['coming']),
    );
    expect(v).toEqual({
      allowed: true,
      warnings: [
        'backend Service coming does not exist',
        `annotations netplane ignores (nginx tuning, or asking for nothing): ${ngx}proxy-buffer-size`,
        `annotations netplane does not know (misspelt, retired, or newer than netplane): ${ngx}rewrite-taget`,
      ],
    });
  });

  it('lets an Ingress of another class through unchecked', () => {
    const other = ingress('other', { className: 'nginx-internal', rules: [rule('web.test', 'Prefix / web')], annotations: { [`${ngx}configuration-snippet`]: 'x' } });
    expect(checkIngress(other, ground([web]))).toEqual({ allowed: true, warnings: [] });
  });

  it('finds what another Ingress holds among many of other hosts, and a wildcard or catch-all apart from exact hosts', () => {
    const many = Array.from({ length: 500 }, (_, i) => ingress(`other-${i}`, { rules: [rule(`h${i}.test`, 'Prefix / web')], created: '2023-01-01T00:00:00Z' }));
    const wildcard = ingress('wild', { rules: [rule('*.web.test', 'Prefix / web')], created: '2023-06-01T00:00:00Z' });
    const catchAll = ingress('all', { defaultBackend: { service: { name: 'web', port: { number: 80 } } }, created: '2023-06-01T00:00:00Z' });
    const g = ground([...many, wildcard, catchAll, web]);
    expect(checkIngress(ingress('copy', { rules: [rule('h250.test', 'Prefix / web')] }), g).message).toMatch(/Ingress default\/other-250, .* already routes it$/);
    expect(checkIngress(ingress('copy', { rules: [rule('*.web.test', 'Prefix / web')] }), g).message).toMatch(/Ingress default\/wild, .* already routes it$/);
    // An exact host under the wildcard is a host of its own: no conflict.
    expect(checkIngress(ingress('one', { rules: [rule('a.web.test', 'Prefix / web')] }), g)).toEqual({ allowed: true, warnings: [] });
    expect(checkIngress(ingress('second', { defaultBackend: { service: { name: 'web', port: { number: 80 } } } }), g).message).toMatch(/its defaultBackend is not the catch-all: Ingress default\/all/);
  });

  it('warns of a canary without its primary instead of refusing it', () => {
    const canary = ingress('canary', { rules: [rule('solo.test', 'Prefix / web')], annotations: { [`${ngx}canary`]: 'true', [`${ngx}canary-weight`]: '10' } });
    const v = checkIngress(canary, ground([web]));
    expect(v.allowed).toBe(true);
    expect(v.warnings.join('\n')).toMatch(/has no primary/);
  });
});

describe('the AdmissionReview exchange', () => {
  const object = { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name: 'shop', namespace: 'default' }, spec: { rules: [] } };
  const review = (request: object, apiVersion = 'admission.k8s.io/v1') => ({ apiVersion, kind: 'AdmissionReview', request });

  it('reads a request and answers in its version, with its uid', () => {
    const request = readReview(review({ uid: 'u-1', operation: 'CREATE', object }, 'admission.k8s.io/v1beta1'));
    expect(subjectOf(request)).toMatchObject({ ingress: { metadata: { name: 'shop', namespace: 'default' } } });
    expect(reviewResponse(request, { allowed: false, message: 'no', warnings: ['w'] })).toEqual({
      apiVersion: 'admission.k8s.io/v1beta1',
      kind: 'AdmissionReview',
      response: { uid: 'u-1', allowed: false, status: { code: 400, reason: 'BadRequest', message: 'no' }, warnings: ['w'] },
    });
    expect(reviewResponse(request, { allowed: true, warnings: [] })).toEqual({ apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', response: { uid: 'u-1', allowed: true } });
  });

  it('takes the namespace and name from the request when the object has none', () => {
    const request = readReview(review({ uid: 'u-2', operation: 'CREATE', namespace: 'shop', name: 'front', object: { ...object, metadata: {} } }));
    expect(subjectOf(request)).toMatchObject({ ingress: { metadata: { name: 'front', namespace: 'shop' } } });
  });

  it('lets deletes and other kinds through, and refuses an Ingress it cannot read', () => {
    expect(subjectOf(readReview(review({ uid: 'u', operation: 'DELETE' })))).toEqual({ pass: '' });
    expect(subjectOf(readReview(review({ uid: 'u', operation: 'CREATE', object: { apiVersion: 'v1', kind: 'Service' } })))).toEqual({
      pass: "netplane's admission webhook checks Ingresses of networking.k8s.io/v1; this Service is let through unchecked",
    });
    const bad = subjectOf(readReview(review({ uid: 'u', operation: 'UPDATE', object: { ...object, spec: { rules: [{ http: { paths: [{ path: '/', pathType: 'Sometimes' }] } }] } } })));
    expect(bad).toMatchObject({ refuse: expect.stringMatching(/^netplane cannot read this Ingress: spec\.rules\[0\]\.http\.paths\[0\]/) });
  });

  it.each<[string, unknown, string]>([
    ['not an object', 'x', 'the body is not an AdmissionReview object'],
    ['another kind', { apiVersion: 'admission.k8s.io/v1', kind: 'TokenReview', request: { uid: 'u' } }, 'the body is not an AdmissionReview of admission.k8s.io/v1 or v1beta1'],
    ['no uid', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: {} }, 'the AdmissionReview has no request.uid'],
  ])('refuses a body that is %s', (_what, body, message) => {
    expect(() => readReview(body)).toThrow(new BadReviewError(message));
  });

  it('cuts warnings to what the API server keeps whole', () => {
    const long = 'x'.repeat(300);
    const r = reviewResponse({ apiVersion: 'admission.k8s.io/v1', uid: 'u' }, { allowed: true, warnings: [long] }) as { response: { warnings: string[] } };
    expect(r.response.warnings[0]).toHaveLength(256);
    expect(r.response.warnings[0]!.endsWith('…')).toBe(true);
  });
});
