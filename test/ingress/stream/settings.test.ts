// The controller ConfigMap's proxy-stream-* keys read as the TCP and UDP services' settings (pure): nginx's time
// syntax, each key's values and defaults, a bad value keeping its last good one with the reason, and the tries a
// connection gets.
import { describe, expect, it } from 'vitest';
import { readControllerConfig } from '../../../ingress/routes/controller-config.ts';
import { defaultStreamSettings, parseNginxTime, readStreamSettings, streamTries } from '../../../ingress/stream/settings.ts';

describe('parseNginxTime', () => {
  it.each<[string, number | undefined]>([
    ['600s', 600_000],
    ['600', 600_000],
    ['10m', 600_000],
    ['1h', 3_600_000],
    ['1h30m', 5_400_000],
    ['1h 30m', 5_400_000],
    ['1m 30', 90_000],
    ['500ms', 500],
    ['1s500ms', 1500],
    ['2d', 172_800_000],
    ['1w', 604_800_000],
    ['0', 0],
    ['0s', 0],
    [' 5s ', 5000],
    // Larger units first, each once, a bare number last; y and M are not times in milliseconds to nginx.
    ['30m1h', undefined],
    ['1m1m', undefined],
    ['30 1m', undefined],
    ['1y', undefined],
    ['1M', undefined],
    ['1.5s', undefined],
    ['-1s', undefined],
    ['s', undefined],
    ['', undefined],
    ['10 minutes', undefined],
    // Past what a Node timer keeps.
    ['25d', undefined],
    ['24d', 2_073_600_000],
  ])('%j is %s ms', (raw, ms) => {
    expect(parseNginxTime(raw)).toBe(ms);
  });
});

describe('readStreamSettings', () => {
  it("is ingress-nginx's defaults without keys, but for proxy-stream-responses: a flow carries every answer until idle", () => {
    expect(readStreamSettings(undefined, undefined)).toEqual({ settings: { idleMs: 600_000, nextUpstream: true, nextUpstreamTimeoutMs: 600_000, tries: 3 }, problems: [] });
    expect(readStreamSettings({ 'proxy-body-size': '8m' }, undefined).settings).toEqual(defaultStreamSettings);
  });

  it.each<[string, Record<string, string>, object]>([
    ['proxy-stream-timeout', { 'proxy-stream-timeout': '30s' }, { idleMs: 30_000 }],
    ['proxy-stream-timeout in minutes', { 'proxy-stream-timeout': '10m' }, { idleMs: 600_000 }],
    ['proxy-stream-next-upstream off', { 'proxy-stream-next-upstream': 'false' }, { nextUpstream: false }],
    ["proxy-stream-next-upstream as Go's ParseBool reads it", { 'proxy-stream-next-upstream': 'F' }, { nextUpstream: false }],
    ['proxy-stream-next-upstream-timeout', { 'proxy-stream-next-upstream-timeout': '5s' }, { nextUpstreamTimeoutMs: 5000 }],
    ['proxy-stream-next-upstream-timeout 0: no limit', { 'proxy-stream-next-upstream-timeout': '0' }, { nextUpstreamTimeoutMs: 0 }],
    ['proxy-stream-next-upstream-tries', { 'proxy-stream-next-upstream-tries': '7' }, { tries: 7 }],
    ['proxy-stream-next-upstream-tries 0: each endpoint once', { 'proxy-stream-next-upstream-tries': '0' }, { tries: 0 }],
    ['proxy-stream-responses', { 'proxy-stream-responses': '1' }, { responses: 1 }],
    ['proxy-stream-responses 0', { 'proxy-stream-responses': '0' }, { responses: 0 }],
  ])('reads %s', (_what, data, want) => {
    const got = readStreamSettings(data, undefined);
    expect(got.problems).toEqual([]);
    expect(got.settings).toEqual({ ...defaultStreamSettings, ...want });
  });

  it.each<[string, string, string]>([
    ['proxy-stream-timeout', 'soon', 'proxy-stream-timeout is "soon"; allowed is a time as nginx writes one (600s, 10m, 1h 30m, 500ms; a bare number is seconds) from 1ms to 24d'],
    ['proxy-stream-timeout', '0s', 'proxy-stream-timeout is "0s"; allowed is a time as nginx writes one (600s, 10m, 1h 30m, 500ms; a bare number is seconds) from 1ms to 24d'],
    ['proxy-stream-next-upstream', 'on', 'proxy-stream-next-upstream is "on"; allowed is true or false'],
    ['proxy-stream-next-upstream-timeout', '1y', 'proxy-stream-next-upstream-timeout is "1y"; allowed is a time as nginx writes one (600s, 10m, 1h 30m, 500ms; a bare number is seconds) up to 24d (0: no limit)'],
    ['proxy-stream-next-upstream-tries', '-1', 'proxy-stream-next-upstream-tries is "-1"; allowed is a whole number from 0 to 1000000 (0: each endpoint once)'],
    ['proxy-stream-responses', 'one', `proxy-stream-responses is "one"; allowed is a whole number from 0 to 1000000 (0: the flow ends once the client's datagrams are sent)`],
  ])('refuses %s %j with one sentence, keeping the last good value (else the default)', (key, raw, reason) => {
    const good = { 'proxy-stream-timeout': '30s', 'proxy-stream-next-upstream': 'false', 'proxy-stream-next-upstream-timeout': '5s', 'proxy-stream-next-upstream-tries': '5', 'proxy-stream-responses': '2' };
    const last = readStreamSettings(good, undefined).settings;
    const got = readStreamSettings({ ...good, [key]: raw }, last);
    expect(got.problems).toEqual([{ key, reason }]);
    expect(got.settings).toEqual(last);
    expect(readStreamSettings({ [key]: raw }, undefined).settings).toEqual(defaultStreamSettings);
  });

  it('leaves the other keys applied when one is bad', () => {
    expect(readStreamSettings({ 'proxy-stream-timeout': 'x', 'proxy-stream-responses': '1' }, undefined).settings).toEqual({ ...defaultStreamSettings, responses: 1 });
  });

  it('reaches the controller ConfigMap read: its settings, its problems, and not the keys netplane does not read', () => {
    const got = readControllerConfig({ 'proxy-stream-timeout': '1m', 'proxy-stream-responses': '1', 'proxy-stream-next-upstream-tries': 'many' }, undefined);
    expect(got.config.stream).toEqual({ ...defaultStreamSettings, idleMs: 60_000, responses: 1 });
    expect(got.problems.map((p) => p.key)).toEqual(['proxy-stream-next-upstream-tries']);
    expect(got.unread).toEqual([]);
  });
});

describe('streamTries', () => {
  it.each<[string, { nextUpstream: boolean; tries: number }, number, number]>([
    ['the tries asked', { nextUpstream: true, tries: 3 }, 5, 3],
    ['0: each endpoint once', { nextUpstream: true, tries: 0 }, 5, 5],
    ['next upstream off: the first alone', { nextUpstream: false, tries: 3 }, 5, 1],
  ])('%s', (_what, s, available, want) => {
    expect(streamTries(s, available)).toBe(want);
  });
});
