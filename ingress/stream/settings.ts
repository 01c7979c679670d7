// How the TCP and UDP services relay, from ingress-nginx's controller ConfigMap (--configmap): the keys its template
// writes into every stream server as nginx's stream proxy directives — proxy-stream-timeout (proxy_timeout),
// proxy-stream-next-upstream (proxy_next_upstream), proxy-stream-next-upstream-timeout (proxy_next_upstream_timeout),
// proxy-stream-next-upstream-tries (proxy_next_upstream_tries), and for UDP proxy-stream-responses (proxy_responses).
// Times are read as nginx reads a time in milliseconds (ngx_parse_time): `600s`, `10m`, `1h 30m`, `500ms`, a bare
// number being seconds. A bad value is reported and the key keeps its last good value. Pure.
import { parseGoBool } from '../routes/annotations.ts';

/** The relay settings of the TCP and UDP services. */
export interface StreamSettings {
  /** A connection or UDP flow with nothing either way for this long is closed (proxy_timeout). */
  idleMs: number;
  /** Whether a connection whose endpoint cannot be reached goes to the next one (proxy_next_upstream). */
  nextUpstream: boolean;
  /** No endpoint is tried this long after the first try began; 0: no limit (proxy_next_upstream_timeout). */
  nextUpstreamTimeoutMs: number;
  /** Endpoints tried per connection, the first included; 0: each endpoint once (proxy_next_upstream_tries). */
  tries: number;
  /**
   * Answers a UDP flow carries per client datagram before it ends (proxy_responses); 0: the flow ends once the
   * client's datagrams are sent. Undefined: as many as come, until the flow is idle.
   */
  responses?: number;
}

/**
 * ingress-nginx's defaults (its config defaults: 600s, on, 600s, 3), but proxy-stream-responses: netplane's flows
 * carry every answer until idle where ingress-nginx's default 1 ends a session at the first answer to each datagram.
 */
export const defaultStreamSettings: Readonly<StreamSettings> = Object.freeze({ idleMs: 600_000, nextUpstream: true, nextUpstreamTimeoutMs: 600_000, tries: 3 });

/** The ConfigMap keys read here. */
export const streamKeys = ['proxy-stream-timeout', 'proxy-stream-next-upstream', 'proxy-stream-next-upstream-timeout', 'proxy-stream-next-upstream-tries', 'proxy-stream-responses'] as const;

// The longest time a Node timer keeps (2^31 - 1 ms): a longer one would fire at once.
const maxMs = 2 ** 31 - 1;
/** nginx's time units allowed in a millisecond setting, largest first, with their length in ms. */
const units: ReadonlyArray<[string, number]> = [
  ['w', 7 * 86_400_000],
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1000],
  ['ms', 1],
];

/**
 * A time as nginx reads one for a millisecond setting: parts of a number and a unit (w, d, h, m, s, ms), each unit at
 * most once and larger units first, spaces allowed between parts; a number without a unit, last, is seconds.
 * Undefined for anything else, or past 2^31 - 1 ms (about 24 days).
 */
export function parseNginxTime(raw: string): number | undefined {
  const text = raw.trim();
  if (!/^(?:\d+(?:ms|[wdhms])?\s*)+$/.test(text)) return undefined;
  let ms = 0;
  // The index in `units` the next part's unit may have at least: units come largest first, each once.
  let next = 0;
  const parts = [...text.matchAll(/(\d+)(ms|[wdhms])?/g)];
  for (const [i, [, digits, unit]] of parts.entries()) {
    // A bare number is seconds, and only the last part.
    if (unit === undefined && i !== parts.length - 1) return undefined;
    const at = units.findIndex(([u]) => u === (unit ?? 's'));
    if (at < next) return undefined;
    next = at + 1;
    ms += Number(digits) * units[at]![1];
  }
  return Number.isSafeInteger(ms) && ms <= maxMs ? ms : undefined;
}

/** The settings of the ConfigMap's `data` (undefined: none, ingress-nginx's defaults); `last`: the settings last read. */
export function readStreamSettings(
  data: Readonly<Record<string, string>> | undefined,
  last: Readonly<StreamSettings> | undefined,
): { settings: StreamSettings; problems: Array<{ key: string; reason: string }> } {
  const d = data ?? {};
  const problems: Array<{ key: string; reason: string }> = [];
  const settings: StreamSettings = { ...defaultStreamSettings };
  // Each key alone: a bad value keeps its last good one (or the default), the others apply.
  const take = <K extends keyof StreamSettings>(key: (typeof streamKeys)[number], field: K, read: (raw: string) => { value: StreamSettings[K] } | { allowed: string }): void => {
    const raw = d[key];
    if (raw === undefined) return;
    const got = read(raw.trim());
    if ('value' in got) {
      settings[field] = got.value;
      return;
    }
    problems.push({ key, reason: `${key} is ${JSON.stringify(raw)}; allowed is ${got.allowed}` });
    if (last !== undefined) settings[field] = last[field];
  };
  const time = (zero: boolean) => (raw: string) => {
    const ms = parseNginxTime(raw);
    if (ms === undefined || (ms === 0 && !zero)) return { allowed: `a time as nginx writes one (600s, 10m, 1h 30m, 500ms; a bare number is seconds) ${zero ? 'up to 24d (0: no limit)' : 'from 1ms to 24d'}` };
    return { value: ms };
  };
  const count = (max: number, zero: string) => (raw: string) => (/^\d{1,7}$/.test(raw) && Number(raw) <= max ? { value: Number(raw) } : { allowed: `a whole number from 0 to ${max} (0: ${zero})` });
  take('proxy-stream-timeout', 'idleMs', time(false));
  take('proxy-stream-next-upstream', 'nextUpstream', (raw) => {
    const on = parseGoBool(raw);
    return on === undefined ? { allowed: 'true or false' } : { value: on };
  });
  take('proxy-stream-next-upstream-timeout', 'nextUpstreamTimeoutMs', time(true));
  take('proxy-stream-next-upstream-tries', 'tries', count(1_000_000, 'each endpoint once'));
  take('proxy-stream-responses', 'responses', count(1_000_000, 'the flow ends once the client\'s datagrams are sent'));
  return { settings, problems };
}

/** The endpoints a connection may try among `available`, as the settings allow. */
export function streamTries(s: Pick<StreamSettings, 'nextUpstream' | 'tries'>, available: number): number {
  if (!s.nextUpstream) return 1;
  return s.tries === 0 ? available : s.tries;
}
