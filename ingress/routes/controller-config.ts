// ingress-nginx's controller ConfigMap (its --configmap NAMESPACE/NAME, `ingress-nginx-controller`) read as the
// gateway's defaults, so that a cluster's settings move over with it: the keys that are the global defaults of the
// annotations of the same names (time-outs, body size, redirects, load balancing, ...) become annotations every
// Ingress has unless it sets its own, HSTS (ingress-nginx sends it by default: so does the gateway with a ConfigMap,
// unless `hsts: "false"`), the trusted proxies, and how the TCP and UDP services relay (stream/settings.ts). Values
// are checked as those annotations are (policy.ts); a bad one is reported and its last good value kept; keys the
// gateway does not read are named once. Pure.
import { parseGoBool } from './annotations.ts';
import { AnnotationError } from './errors.ts';
import { readPolicy } from './policy.ts';
import { TrustedProxies } from '../limits/client-ip.ts';
import { hstsHeader } from '../tls/hsts.ts';
import { readStreamSettings, streamKeys, type StreamSettings } from '../stream/settings.ts';

/** What the ConfigMap sets. */
export interface ControllerConfig {
  /** The Strict-Transport-Security value, null for none. */
  hsts: string | null;
  /** Annotations every Ingress has unless it sets them (their ingress-nginx names, prefixed), each checked alone. */
  annotations?: Record<string, string>;
  /** The peers whose X-Forwarded-* headers are believed: none unless use-forwarded-headers, then proxy-real-ip-cidr. */
  trustedProxies: string[];
  /** How the TCP and UDP services relay (the proxy-stream-* keys). */
  stream: StreamSettings;
}

/** The ConfigMap read: its settings, the keys with a bad value (their last good value kept), the keys not read. */
export interface ControllerConfigRead {
  config: ControllerConfig;
  problems: Array<{ key: string; reason: string }>;
  unread: string[];
}

const nginxPrefix = 'nginx.ingress.kubernetes.io/';
// ingress-nginx's HSTS defaults (its config defaults: hsts true, one year, includeSubDomains, no preload).
const hstsDefaults = { on: true, maxAge: 31_536_000, includeSubdomains: true, preload: false };
const hstsKeys = ['hsts', 'hsts-max-age', 'hsts-include-subdomains', 'hsts-preload'];
// Keys that are, in ingress-nginx, the global default of the annotation of the same name (its ConfigMap
// documentation): every Ingress has them unless it sets them itself.
const annotationKeys = [
  'proxy-connect-timeout', 'proxy-read-timeout', 'proxy-send-timeout', 'proxy-body-size', 'ssl-redirect', 'force-ssl-redirect',
  'load-balance', 'proxy-next-upstream', 'proxy-next-upstream-tries', 'proxy-next-upstream-timeout', 'custom-http-errors', 'limit-rate', 'limit-rate-after', 'whitelist-source-range', 'denylist-source-range',
];

/** The annotation a ConfigMap key stands for in ControllerConfig.annotations. */
export const defaultAnnotation = (key: string) => nginxPrefix + key;

/** Reads the ConfigMap's `data` (undefined: there is none, which is ingress-nginx's defaults); `last`: the last read. */
export function readControllerConfig(data: Readonly<Record<string, string>> | undefined, last: ControllerConfig | undefined): ControllerConfigRead {
  const d = data ?? {};
  const stream = readStreamSettings(d, last?.stream);
  const problems: ControllerConfigRead['problems'] = [...stream.problems];
  const config: ControllerConfig = {
    trustedProxies: [],
    hsts: last !== undefined ? last.hsts : hstsHeader(hstsDefaults.maxAge, hstsDefaults.includeSubdomains, hstsDefaults.preload),
    stream: stream.settings,
  };
  for (const key of annotationKeys) {
    const raw = d[key];
    const name = defaultAnnotation(key);
    if (raw === undefined) continue;
    try {
      // Checked alone, as one Ingress with only this annotation: a bad value must not take every Ingress down.
      readPolicy('default', { [name]: raw }, { connectTimeoutMs: 1000, readTimeoutMs: 1000 });
      (config.annotations ??= {})[name] = raw;
    } catch (e) {
      if (!(e instanceof AnnotationError)) throw e;
      problems.push({ key, reason: e.message.replace(`annotation ${name} `, `${key} `) });
      const kept = last?.annotations?.[name];
      if (kept !== undefined) (config.annotations ??= {})[name] = kept;
    }
  }
  const hsts = { ...hstsDefaults };
  let hstsBad = false;
  for (const key of hstsKeys) {
    const raw = d[key]?.trim();
    if (raw === undefined) continue;
    if (key === 'hsts-max-age') {
      if (/^\d{1,10}$/.test(raw)) hsts.maxAge = Number(raw);
      else {
        problems.push({ key, reason: `${JSON.stringify(raw)} is not a whole number of seconds` });
        hstsBad = true;
      }
      continue;
    }
    const b = parseGoBool(raw);
    if (b === undefined) {
      problems.push({ key, reason: `${JSON.stringify(raw)} is not true or false` });
      hstsBad = true;
    } else if (key === 'hsts') hsts.on = b;
    else if (key === 'hsts-include-subdomains') hsts.includeSubdomains = b;
    else hsts.preload = b;
  }
  if (!hstsBad) config.hsts = hsts.on ? hstsHeader(hsts.maxAge, hsts.includeSubdomains, hsts.preload) : null;
  // use-forwarded-headers (ingress-nginx's default false: no peer is believed) with proxy-real-ip-cidr (its default
  // 0.0.0.0/0: every peer).
  config.trustedProxies = last?.trustedProxies ?? [];
  const forwarded = d['use-forwarded-headers']?.trim();
  const realIp = d['proxy-real-ip-cidr']?.trim();
  const on = forwarded === undefined ? false : parseGoBool(forwarded);
  if (on === undefined) problems.push({ key: 'use-forwarded-headers', reason: `${JSON.stringify(forwarded)} is not true or false` });
  else {
    const cidrs = on ? (realIp === undefined || realIp === '' ? ['0.0.0.0/0', '::/0'] : realIp.split(',').map((c) => c.trim()).filter(Boolean)) : [];
    try {
      TrustedProxies.parse(cidrs);
      config.trustedProxies = cidrs;
    } catch (e) {
      problems.push({ key: 'proxy-real-ip-cidr', reason: (e as Error).message });
    }
  }
  const read = new Set<string>([...hstsKeys, ...annotationKeys, ...streamKeys, 'use-forwarded-headers', 'proxy-real-ip-cidr']);
  return { config, problems, unread: Object.keys(d).filter((k) => !read.has(k)).sort() };
}
