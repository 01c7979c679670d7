// ingress-nginx's proxy-next-upstream and proxy-next-upstream-timeout, read as data (never rendered into any
// configuration): which failed tries of a request go to the next endpoint, and for how long a request may be passed
// on. upstream/errors.ts (passesToNext) and upstream/forward.ts apply them.
import { invalid, type AnnotationReader } from './annotations.ts';
import { quote } from './errors.ts';
import type { NextUpstreamPolicy } from './types.ts';

/** The values of nginx's proxy_next_upstream that ingress-nginx allows (its validUpstreamAnnotation), in its order. */
export const nextUpstreamValues = [
  'error', 'timeout', 'invalid_header', 'http_500', 'http_502', 'http_503', 'http_504', 'http_403', 'http_404', 'http_429', 'non_idempotent', 'off',
] as const;

const known: ReadonlySet<string> = new Set(nextUpstreamValues);

/**
 * proxy-next-upstream: space-separated values, read without regard to case as nginx reads them; `off` anywhere turns
 * every other off, as nginx's merge does. Undefined when not set or empty (ingress-nginx then takes its default,
 * `error timeout`). Throws AnnotationError naming a value that is not one of nextUpstreamValues.
 */
export function readNextUpstream(a: AnnotationReader): NextUpstreamPolicy | undefined {
  const annotation = a.get('proxy-next-upstream');
  if (annotation === undefined || annotation.value === '') return undefined;
  const words = annotation.value.toLowerCase().split(/ +/);
  const bad = words.find((w) => !known.has(w));
  if (bad !== undefined) {
    throw invalid(annotation, `${quote(bad)} is not allowed: allowed are space-separated values of ${nextUpstreamValues.join(', ')} (nginx's proxy_next_upstream)`);
  }
  const has = new Set(words);
  if (has.has('off')) return { error: false, timeout: false, invalidHeader: false, statuses: [], nonIdempotent: false };
  const statuses = words.filter((w) => w.startsWith('http_')).map((w) => Number(w.slice(5)));
  return {
    error: has.has('error'),
    timeout: has.has('timeout'),
    invalidHeader: has.has('invalid_header'),
    statuses: [...new Set(statuses)].sort((x, y) => x - y),
    nonIdempotent: has.has('non_idempotent'),
  };
}

/**
 * proxy-next-upstream-timeout in whole seconds (as ingress-nginx reads it), 0 to 86400, as milliseconds; undefined
 * when not set or 0 (nginx's "no limit"). Throws AnnotationError for any other value.
 */
export function readNextUpstreamTimeout(a: AnnotationReader): number | undefined {
  const seconds = a.int('proxy-next-upstream-timeout', 0, 86_400);
  return seconds === undefined || seconds === 0 ? undefined : seconds * 1000;
}
