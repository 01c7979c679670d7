// ingress-nginx's controller ConfigMap read as the gateway's defaults (pure): its keys, ingress-nginx's HSTS
// default, a bad value keeping its last good one, the keys not read; and the defaults reaching an Ingress's policy.
import { describe, expect, it } from 'vitest';
import { readControllerConfig } from '../../../ingress/routes/controller-config.ts';
import { readPolicy } from '../../../ingress/routes/policy.ts';
import { defaultStreamSettings } from '../../../ingress/stream/settings.ts';

const yearHsts = 'max-age=31536000; includeSubDomains';
const base = { connectTimeoutMs: 5000, readTimeoutMs: 60_000 };
/** The policy of an Ingress without annotations of its own, under a ConfigMap's settings. */
const policyUnder = (config: { annotations?: Record<string, string> }, own: Record<string, string> = {}) => readPolicy('shop', own, { ...base, annotations: config.annotations }).policy;

describe('readControllerConfig', () => {
  it("is ingress-nginx's defaults without a ConfigMap, or with an empty one: HSTS on for a year with subdomains", () => {
    expect(readControllerConfig(undefined, undefined)).toEqual({ config: { hsts: yearHsts, trustedProxies: [], stream: defaultStreamSettings }, problems: [], unread: [] });
    expect(readControllerConfig({}, undefined).config).toEqual({ hsts: yearHsts, trustedProxies: [], stream: defaultStreamSettings });
  });

  it('reads the time-outs, the body size, the redirects and the HSTS keys', () => {
    const got = readControllerConfig(
      { 'proxy-connect-timeout': '3', 'proxy-read-timeout': '120', 'proxy-send-timeout': '30', 'proxy-body-size': '8m', 'ssl-redirect': 'false', 'force-ssl-redirect': 'true', 'hsts-max-age': '600', 'hsts-include-subdomains': 'false', 'hsts-preload': 'True' },
      undefined,
    );
    expect([got.config.hsts, got.problems, got.unread]).toEqual(['max-age=600; preload', [], []]);
    expect(policyUnder(got.config)).toMatchObject({ connectTimeoutMs: 3000, readTimeoutMs: 120_000, sendTimeoutMs: 30_000, maxBodyBytes: 8 * 1024 * 1024, sslRedirect: false, forceSslRedirect: true });
    expect(readControllerConfig({ hsts: 'false' }, undefined).config.hsts).toBeNull();
  });

  it('keeps the last good value of a key whose new value is bad, and says why; names the keys it does not read', () => {
    const first = readControllerConfig({ 'proxy-read-timeout': '90', hsts: 'false' }, undefined).config;
    const got = readControllerConfig({ 'proxy-read-timeout': '90s', hsts: 'maybe', 'server-tokens': 'false', 'allow-snippet-annotations': 'false' }, first);
    expect([got.config.hsts, got.config.trustedProxies, policyUnder(got.config).readTimeoutMs]).toEqual([null, [], 90_000]);
    expect(got.problems).toEqual([
      { key: 'proxy-read-timeout', reason: 'proxy-read-timeout is "90s"; allowed is a whole number from 1 to 86400 (seconds, without unit)' },
      { key: 'hsts', reason: '"maybe" is not true or false' },
    ]);
    expect(got.unread).toEqual(['allow-snippet-annotations', 'server-tokens']);
  });
});

describe('use-forwarded-headers and proxy-real-ip-cidr', () => {
  it("believe X-Forwarded-* from no peer by default, from every peer with use-forwarded-headers, from proxy-real-ip-cidr's when given", () => {
    const trusted = (data: Record<string, string>) => readControllerConfig(data, undefined).config.trustedProxies;
    expect(trusted({})).toEqual([]);
    expect(trusted({ 'proxy-real-ip-cidr': '10.0.0.0/8' })).toEqual([]);
    expect(trusted({ 'use-forwarded-headers': 'true' })).toEqual(['0.0.0.0/0', '::/0']);
    expect(trusted({ 'use-forwarded-headers': 'true', 'proxy-real-ip-cidr': '10.0.0.0/8, 192.168.1.7' })).toEqual(['10.0.0.0/8', '192.168.1.7']);
    const last = readControllerConfig({ 'use-forwarded-headers': 'true', 'proxy-real-ip-cidr': '10.0.0.0/8' }, undefined).config;
    const bad = readControllerConfig({ 'use-forwarded-headers': 'true', 'proxy-real-ip-cidr': '10.0.0.0/33' }, last);
    expect([bad.config.trustedProxies, bad.problems.map((p) => p.key)]).toEqual([['10.0.0.0/8'], ['proxy-real-ip-cidr']]);
  });
});

describe('ConfigMap keys that are annotations\' global defaults', () => {
  const defaults = { connectTimeoutMs: 5000, readTimeoutMs: 60_000 };
  it('gives every Ingress the annotation unless it sets its own; a bad value is left out with its reason, the last good kept', () => {
    const first = readControllerConfig({ 'load-balance': 'least_request', 'whitelist-source-range': '10.0.0.0/8', 'custom-http-errors': '503' }, undefined);
    expect(first.problems).toEqual([]);
    const annotations = first.config.annotations!;
    expect(annotations).toEqual({ 'nginx.ingress.kubernetes.io/load-balance': 'least_request', 'nginx.ingress.kubernetes.io/custom-http-errors': '503', 'nginx.ingress.kubernetes.io/whitelist-source-range': '10.0.0.0/8' });
    const plain = readPolicy('shop', {}, { ...defaults, annotations }).policy;
    expect([plain.loadBalance, plain.sourceRange?.allow?.length]).toEqual(['least_request', 1]);
    const own = readPolicy('shop', { 'nginx.ingress.kubernetes.io/load-balance': 'round_robin', 'nginx.ingress.kubernetes.io/allowlist-source-range': '127.0.0.1/32,::1' }, { ...defaults, annotations }).policy;
    expect([own.loadBalance, own.sourceRange?.allow?.length]).toEqual(['round_robin', 2]);
    const bad = readControllerConfig({ 'load-balance': 'fastest', 'custom-http-errors': '503' }, first.config);
    expect(bad.problems).toEqual([{ key: 'load-balance', reason: 'load-balance is "fastest"; allowed are round_robin, least_request' }]);
    expect(bad.config.annotations).toEqual({ 'nginx.ingress.kubernetes.io/load-balance': 'least_request', 'nginx.ingress.kubernetes.io/custom-http-errors': '503' });
  });
});

describe('the defaults in an Ingress policy', () => {
  it('takes the ConfigMap\'s redirects where the Ingress does not say, its own annotations where it does', () => {
    expect(policyUnder({})).toMatchObject({ sslRedirect: true, forceSslRedirect: false });
    const redirects = readControllerConfig({ 'ssl-redirect': 'false', 'force-ssl-redirect': 'true' }, undefined).config;
    expect(policyUnder(redirects)).toMatchObject({ sslRedirect: false, forceSslRedirect: true });
    expect(policyUnder(redirects, { 'nginx.ingress.kubernetes.io/ssl-redirect': 'true' }).sslRedirect).toBe(true);
  });
});
