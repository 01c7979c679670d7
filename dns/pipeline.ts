// What netplane dns answers with, built from its flags: the forwarders (the default one and each stub domain's), the
// hosts file, the cluster zone's handler over the shared record index, autopath and rewrite, the rotation and the
// query log. Built once at start and again for each reloaded Corefile (reload.ts), while the listeners, the record
// index and the metrics stay.
import { Counter, type Registry } from 'prom-client';
import type { Logger } from '../runtime/logger.ts';
import type { Store } from '../cluster/store.ts';
import { Forwarder, LoopDetector, readCaFile, readResolvConf, type Policy, type PrefetchSettings, type UpstreamAddress } from './forward/forwarder.ts';
import { readSearchDomains } from './forward/resolvconf.ts';
import { StubDomains } from './forward/stubs.ts';
import { followHostsFile } from './hosts/file.ts';
import { HostsHandler, parseHosts } from './hosts/hosts.ts';
import { chainOf, RewriteHandler } from './rewrite/handler.ts';
import type { NameRule } from './rewrite/rules.ts';
import type { LoadBalance } from './server/balance.ts';
import { QueryLog, type QueryClass } from './server/querylog.ts';
import type { ServingOptions } from './server/server.ts';
import type { HostPort } from '../runtime/flags.ts';
import { nodeSearchDomains } from './zone/autopath.ts';
import { AutopathHandler } from './zone/autopath-handler.ts';
import { ExternalZoneHandler } from './zone/external.ts';
import { ClusterZoneHandler } from './zone/handler.ts';
import type { RecordIndex } from './zone/records.ts';
import { inDomain } from './wire/name.ts';
import type { DnsHandler } from './types.ts';

/** The flags a pipeline is built from (dns/component.ts parses them). */
export interface PipelineFlags {
  listen: HostPort[];
  zone: string;
  hosts: string | undefined;
  'hosts-ttl': number;
  'hosts-entry': string[];
  'hosts-no-reverse': boolean;
  'stub-domain': Array<{ domain: string; upstreams: UpstreamAddress[] }>;
  upstream: UpstreamAddress[];
  'upstream-tls-servername': string | undefined;
  'upstream-tls-ca': string[];
  'upstream-expire': number;
  'upstream-tls-expire': number | undefined;
  'forward-only': boolean;
  'ignore-empty-service': boolean;
  'external-zone': string[];
  'external-ttl': number;
  'external-apex': string;
  ttl: number;
  pods: 'disabled' | 'insecure' | 'verified';
  autopath: boolean;
  'rewrite-name': NameRule[];
  'reverse-cidr': string[][];
  'dns-service': { namespace: string; name: string };
  'forward-policy': Policy;
  'max-concurrent': number;
  'max-fails': number;
  'health-check': number;
  'failfast-all-unhealthy': boolean;
  'forward-except': string[];
  'cache-size': number;
  'cache-keep-ttl': boolean;
  'cache-ttl': number;
  'cache-success-ttl': { max: number; min: number | undefined } | undefined;
  'cache-denial-ttl': { max: number; min: number | undefined } | undefined;
  'cache-servfail-ttl': number;
  prefetch: PrefetchSettings | false;
  loadbalance: LoadBalance;
  'log-queries': boolean;
  'log-class': ReadonlySet<QueryClass> | undefined;
}

/** What every pipeline of one process shares. */
export interface PipelineContext {
  log: Logger;
  registry: Registry;
  store: Store;
  /** The cluster zone's records; absent with --forward-only, which answers no cluster zone. */
  index: RecordIndex | undefined;
  /** The `server` label of CoreDNS's metrics. */
  serverLabel: string;
  /** Whether the first full view of the cluster is loaded. */
  synced: () => boolean;
  loops: LoopDetector;
  /** The resolv.conf whose nameservers are the default upstreams and whose search domains autopath walks. */
  resolvConf: string;
}

/** A built pipeline: what the server serves with, and what to close when it is replaced or the process stops. */
export interface Pipeline {
  serving: ServingOptions;
  forwarders: Array<{ domain: string; forwarder: Forwarder }>;
  upstreams: UpstreamAddress[];
  autopathSearch: string[] | undefined;
  /** Stops following the hosts file and closes the forwarders (their queries in flight get SERVFAIL). */
  close(): Promise<void>;
}

/** A pipeline that could not be built: the message says why (no upstream, a stub domain's upstreams). */
export class PipelineError extends Error {}

/** Builds the pipeline of these flags. Throws PipelineError, closing what it made. */
export async function buildPipeline(p: PipelineContext, f: PipelineFlags): Promise<Pipeline> {
  let upstreams: UpstreamAddress[];
  const servername = f['upstream-tls-servername'];
  const extraCa: string[] = [];
  for (const file of f['upstream-tls-ca']) {
    try {
      extraCa.push(...readCaFile(file));
    } catch (e) {
      throw new PipelineError(`--upstream-tls-ca ${JSON.stringify(file)}: ${(e as Error).message}`, { cause: e });
    }
  }
  const tls = { extraCa, expireMs: f['upstream-tls-expire'] ?? f['upstream-expire'] };
  try {
    upstreams = f.upstream.length > 0 ? f.upstream.map((u) => (u.tls && u.tls.servername === undefined && servername !== undefined ? { ...u, tls: { servername } } : u)) : readResolvConf(p.resolvConf);
  } catch (e) {
    throw new PipelineError(`no upstream to forward to: ${(e as Error).message}; give --upstream ADDR:PORT`, { cause: e });
  }
  const success = f['cache-success-ttl'];
  const denial = f['cache-denial-ttl'];
  const cache = {
    maxEntries: f['cache-size'],
    prefetch: f.prefetch,
    maxTtl: success?.max ?? f['cache-ttl'],
    minTtl: success?.min ?? 5,
    maxNegativeTtl: denial?.max ?? f['cache-ttl'],
    minNegativeTtl: denial?.min ?? 5,
    servfailTtl: f['cache-servfail-ttl'],
    keepTtl: f['cache-keep-ttl'],
  };
  const common = { tls, log: p.log, registry: p.registry, server: p.serverLabel, cache, maxConcurrent: f['max-concurrent'], maxFails: f['max-fails'], probeIntervalMs: f['health-check'], failFast: f['failfast-all-unhealthy'], policy: f['forward-policy'], loops: p.loops };
  const forwarder = new Forwarder({ ...common, upstreams, except: f['forward-except'] });
  const forwarders = [{ domain: '.', forwarder }];
  let stubs: StubDomains;
  try {
    for (const s of f['stub-domain']) forwarders.push({ domain: s.domain, forwarder: new Forwarder({ ...common, upstreams: s.upstreams, domain: s.domain }) });
    stubs = new StubDomains(forwarders.slice(1));
  } catch (e) {
    await Promise.all(forwarders.map((w) => w.forwarder.close()));
    throw new PipelineError(`--stub-domain: ${(e as Error).message}`, { cause: e });
  }
  const forwarderFor = (lname: string) => stubs.forwarderFor(lname) ?? forwarder;
  const inline = f['hosts-entry'].length > 0 ? parseHosts(f['hosts-entry'].join('\n')).table : undefined;
  const hosts = f.hosts !== undefined || inline !== undefined ? new HostsHandler(f['hosts-ttl'], { ...(inline ? { inline } : {}), noReverse: f['hosts-no-reverse'] }) : undefined;
  const stopHosts = hosts && f.hosts !== undefined ? await followHostsFile(f.hosts, hosts, p.log) : undefined;
  const index = p.index;
  const self = f['dns-service'];
  const zone = index === undefined ? undefined : new ClusterZoneHandler(index, {
    ttl: f.ttl,
    pods: f.pods,
    reverseCIDRs: f['reverse-cidr'].flat(),
    nameservers: () => index.service(self.namespace, self.name)?.clusterIPs ?? f.listen.map((l) => l.host).filter((h) => h !== '0.0.0.0' && h !== '::'),
    synced: p.synced,
    podsSynced: () => p.store.hasSynced('Pod'),
    ignoreEmptyService: f['ignore-empty-service'],
    resolve: async (name, type, q) => forwarderFor(name.toLowerCase()).handle({ ...q, name, lname: name.toLowerCase(), type, qtype: type === 'A' ? 1 : 28 }),
  });
  const external =
    index === undefined || f['external-zone'].length === 0
      ? undefined
      : new ExternalZoneHandler(index, { zones: f['external-zone'], ttl: f['external-ttl'], apex: f['external-apex'], nameservers: () => index.service(self.namespace, self.name)?.externalIPs ?? [], synced: p.synced });
  const zoneLabel = `${f.zone}.`;
  // CoreDNS labels a stub domain's requests with its server block's zone.
  const stubZone = (lname: string) => {
    const s = stubs.find(lname);
    return s ? `${s.domain}.` : '.';
  };
  // Before the cluster zone, as CoreDNS orders k8s_external before kubernetes.
  const rest = [...(external ? [external] : []), ...(zone ? [zone] : []), ...(hosts ? [hosts] : []), ...(f['stub-domain'].length > 0 ? [stubs] : []), forwarder];
  // After the rewrite handler and before the zone, as CoreDNS orders its plugins.
  const autopath = f.autopath && index ? autopathHandler(p, index, f.zone, rest) : undefined;
  const chain = autopath ? [autopath.handler, ...rest] : rest;
  const log = p.log;
  return {
    serving: {
      handlers: f['rewrite-name'].length > 0 ? [new RewriteHandler(f['rewrite-name'], chainOf(chain)), ...chain] : chain,
      zoneOf: (lname) => {
        if (zone && inDomain(lname, f.zone)) return zoneLabel;
        const ext = external?.zoneOf(lname);
        return ext !== undefined ? `${ext}.` : stubZone(lname);
      },
      loadBalance: f.loadbalance,
      // CoreDNS's log plugin prints whatever the level of other logs; --log-level silent still silences it.
      queryLog: f['log-queries'] ? new QueryLog(log.level === 'silent' ? log : log.child({}, { level: 'info' }), f['log-class']) : undefined,
    },
    forwarders,
    upstreams,
    autopathSearch: autopath?.nodeSearch,
    async close() {
      stopHosts?.();
      await forwarder.close();
      await stubs.close();
    },
  };
}

/**
 * --autopath: the handler, finding clients' namespaces in the index's Pods, walking the search domains of resolv.conf
 * (read when the pipeline is built, as the upstreams from it are), and coredns_autopath_success_total. An unreadable
 * resolv.conf or a bad domain in it is logged and walked without, as CoreDNS does.
 */
function autopathHandler(p: PipelineContext, index: RecordIndex, zone: string, rest: readonly DnsHandler[]): { handler: AutopathHandler; nodeSearch: string[] } {
  const name = 'coredns_autopath_success_total';
  const counter = (p.registry.getSingleMetric(name) as Counter<'server'> | undefined) ?? new Counter({ name, help: "Queries answered from a later name of the client Pod's search path.", labelNames: ['server'], registers: [p.registry] });
  const success = counter.labels(p.serverLabel);
  let raw: string[] = [];
  try {
    raw = readSearchDomains(p.resolvConf);
  } catch (e) {
    p.log.warn({ file: p.resolvConf, err: (e as Error).message }, `autopath walks no search domains of the node: ${(e as Error).message}`);
  }
  const { domains, skipped } = nodeSearchDomains(raw, zone);
  for (const s of skipped) {
    const at = s.reason === 'not a domain name' ? 'warn' : 'debug';
    p.log[at]({ file: p.resolvConf, domain: s.domain, reason: s.reason }, `autopath does not walk search domain ${JSON.stringify(s.domain)} of ${p.resolvConf}: ${s.reason}`);
  }
  const handler = new AutopathHandler({ zone, nodeSearch: domains, namespaceOf: (ip) => index.podNamespace(ip), next: chainOf(rest), onSuccess: () => success.inc() });
  return { handler, nodeSearch: domains };
}
