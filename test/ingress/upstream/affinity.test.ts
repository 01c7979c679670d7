import { describe, expect, it } from 'vitest';
import { affinitySetCookie, affinityValue, readCookie } from '../../../ingress/upstream/affinity.ts';

describe('affinityValue', () => {
  it('is a short stable hash that does not show the address', () => {
    const v = affinityValue('10.1.2.3:8080');
    expect(v).toMatch(/^[0-9a-f]{16}$/);
    expect(affinityValue('10.1.2.3:8080')).toBe(v);
    expect(affinityValue('10.1.2.4:8080')).not.toBe(v);
    expect(v).not.toContain('10');
  });
});

describe('readCookie', () => {
  it.each([
    { header: undefined, want: undefined },
    { header: 'route=abc', want: 'abc' },
    { header: 'a=1; route=abc; b=2', want: 'abc' },
    { header: 'xroute=1; route=2', want: '2' },
    { header: 'routex=1', want: undefined },
    { header: 'flag; route=3', want: '3' },
    { header: 'route="q"', want: 'q' },
    { header: 'route=', want: '' },
    { header: ['a=1', 'route=4'], want: '4' },
  ])('$header', ({ header, want }) => {
    expect(readCookie(header, 'route')).toBe(want);
  });
});

describe('affinitySetCookie', () => {
  it.each([
    { affinity: { cookieName: 'route' }, want: 'route=v; Path=/; HttpOnly' },
    { affinity: { cookieName: 'INGRESSCOOKIE', path: '/app', maxAgeSeconds: 3600 }, want: 'INGRESSCOOKIE=v; Path=/app; HttpOnly; Max-Age=3600' },
    { affinity: { cookieName: 'bad name' }, want: undefined },
    { affinity: { cookieName: 'r', path: '/a;b' }, want: undefined },
    { affinity: { cookieName: 'r', path: '/a\r\nX: y' }, want: undefined },
  ])('$affinity.cookieName $affinity.path', ({ affinity, want }) => {
    expect(affinitySetCookie(affinity, 'v')).toBe(want);
  });
});
