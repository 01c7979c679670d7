// netplane dns: CoreDNS's job. Answers the cluster zone from the service map, forwards and caches the rest.
import { readCorefile } from './corefile/settings.ts';
import { corednsFlags } from './coredns-flags.ts';
import { Counter, Gauge } from 'prom-client';
import { defineComponent, listenProblem, type ComponentContext } from '../runtime/component.ts';
import { durationFlag, flagGiven, intInRange, listFlag, nonEmpty, oneOf, parseCIDRList, parseHostPort, positiveInt, switchFlag, valueFlag } from '../runtime/flags.ts';
import type { Reread } from '../runtime/settings.ts';
import { LoopDetector, TlsConfigError, parseServername, parseUpstream, policies, readCaFile, type PrefetchSettings } from './forward/forwarder.ts';
import { UsageError } from '../runtime/errors.ts';
import { parseNameRule } from './rewrite/rules.ts';
import { loadBalancePolicies } from './server/balance.ts';
import { parseQueryClasses } from './server/querylog.ts';
import { DnsServer } from './server/server.ts';
import { followPods } from './zone/pods.ts';
import { followNamespaces, RecordIndex } from './zone/records.ts';
import { buildPipeline, PipelineError, type Pipeline, type PipelineContext } from './pipeline.ts';
import { parseReload, planReload } from './reload.ts';
import { Reloader } from '../runtime/reloader.ts';
import { isIP } from 'node:net';
import { HostRunner } from '../runtime/exec.ts';
import { NetlinkKernel } from '../overlay/kernel/netlink.ts';
import { LocalSetup } from './local/setup.ts';
import { inDomain } from './wire/name.ts';
import { parseHosts } from './hosts/hosts.ts';

const zoneName = (raw: string, maxLength = 253) => {
  const z = raw.toLowerCase().replace(/\.$/, '');
  if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/.test(z)) throw new Error('must be a domain name such as cluster.local');
  if (z.split('.').some((l) => l.length > 63)) throw new Error('has a label longer than 63 characters, which no DNS name can hold');
  if (z.length > maxLength) throw new Error(`is ${z.length} characters long; it may be at most ${maxLength}`);
  return z;
};
/** `ADDRESS NAME [NAME...]`, one hosts-file line. */
const hostsEntry = (raw: string) => {
  const { table, problems } = parseHosts(raw);
  if (problems.length > 0) throw new Error(`must be ADDRESS NAME [NAME...], as a hosts file line: ${problems[0]!.reason}`);
  if (table.byName.size === 0) throw new Error('must be ADDRESS NAME [NAME...], as a hosts file line');
  return raw.trim();
};
/** One DNS label: letters, digits and hyphens, at most 63. */
const dnsLabel = (raw: string) => {
  const l = raw.toLowerCase();
  if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(l)) throw new Error('must be one DNS label: letters, digits and hyphens, such as dns');
  return l;
};
/** An interface name the kernel takes: at most 15 bytes, no '/', ':' or white space, not '.' or '..'. */
const interfaceName = (raw: string) => {
  if (Buffer.byteLength(raw) > 15 || !/^[^/:\s]+$/.test(raw) || raw === '.' || raw === '..') throw new Error("must be an interface name: at most 15 characters, without '/', ':' or spaces");
  return raw;
};
/** `NAME=VALUE`: a word of the Corefile (letters, digits and `_`) and what replaces it, which may be empty. */
const placeholder = (raw: string) => {
  const eq = raw.indexOf('=');
  const name = raw.slice(0, eq);
  if (eq <= 0 || !/^[A-Za-z0-9_]+$/.test(name)) throw new Error('must be NAME=VALUE, NAME of letters, digits and _, e.g. __PILLAR__CLUSTER__DNS__=10.96.0.10');
  const value = raw.slice(eq + 1);
  if (/[\n{}#]/.test(value)) throw new Error('VALUE must be words of a Corefile line: no line break, braces or #');
  return { name, value };
};
const ipAddress = (raw: string) => {
  if (isIP(raw) === 0) throw new Error('must be an IP address');
  return raw;
};
/** The cluster zone: its SOA names hostmaster.<zone>, which must fit in a DNS name too (253 characters). */
const clusterZone = (raw: string) => zoneName(raw, 253 - 'hostmaster.'.length);
/** `DOMAIN=UPSTREAM[,UPSTREAM...]`: a stub domain and its upstreams, each `ADDR:PORT` or `tls://ADDR[:PORT][#NAME]`. */
const stubDomain = (raw: string) => {
  const eq = raw.indexOf('=');
  if (eq <= 0) throw new Error('must be DOMAIN=ADDR:PORT[,ADDR:PORT...] (an upstream may be tls://ADDR[:PORT][#NAME]), e.g. consul.local=10.0.0.10:53');
  const domain = zoneName(raw.slice(0, eq));
  const upstreams = raw.slice(eq + 1).split(',').map((u) => parseUpstream(u.trim()));
  return { domain, upstreams };
};
/** `off`, or `AMOUNT[:SECONDS[:PERCENT]]`: CoreDNS's `prefetch AMOUNT DURATION PERCENTAGE%`. */
export const prefetchSetting = (raw: string): PrefetchSettings | false => {
  if (raw === 'off') return false;
  const m = /^(\d+)(?::(\d+)(?::(\d+))?)?$/.exec(raw);
  const [amount, windowSeconds, percentage] = [Number(m?.[1]), Number(m?.[2] ?? 60), Number(m?.[3] ?? 10)];
  if (!m || amount < 1 || windowSeconds < 1 || percentage < 1 || percentage > 100) {
    throw new Error('must be off or AMOUNT[:SECONDS[:PERCENT]] with AMOUNT and SECONDS at least 1 and PERCENT from 1 to 100, e.g. 2:60:10');
  }
  return { amount, windowSeconds, percentage };
};

/** `SECONDS[:MINSECONDS]`: the longest cache TTL and, optionally, the shortest (CoreDNS cache `success|denial CAPACITY TTL MINTTL`). */
export const ttlBounds = (raw: string): { max: number; min: number | undefined } => {
  const m = /^(\d+)(?::(\d+))?$/.exec(raw);
  const max = Number(m?.[1]);
  const min = m?.[2] === undefined ? undefined : Number(m[2]);
  if (!m || max < 1 || max > 2_147_483_647 || (min !== undefined && min > 2_147_483_647)) {
    throw new Error('must be SECONDS[:MINSECONDS] with SECONDS at least 1 (the cap) and MINSECONDS at least 0 (the floor), e.g. 30 or 30:5');
  }
  return { max, min };
};

/** The certificates of an --upstream-tls-ca file; a UsageError (exit 2) when it cannot be used. */
const caFile = (file: string): string[] => {
  try {
    return readCaFile(file);
  } catch (e) {
    if (e instanceof TlsConfigError) throw new UsageError(`netplane dns: --upstream-tls-ca ${JSON.stringify(file)}: ${e.message}`, { cause: e });
    throw e;
  }
};

const serviceRef = (raw: string) => {
  const m = /^([a-z0-9-]+)\/([a-z0-9-]+)$/.exec(raw);
  if (!m) throw new Error('must be NAMESPACE/NAME');
  return { namespace: m[1]!, name: m[2]! };
};

const upstreamExpire = durationFlag({ help: 'close a kept-open connection to a tcp:// or tls:// upstream unused this long (CoreDNS forward expire)', default: '10s', min: '1ms' });

const flags = {
  listen: listFlag({ value: 'ADDR:PORT', help: 'answer DNS over UDP and TCP here', parse: parseHostPort, listens: true, default: [parseHostPort('0.0.0.0:53')] }),
  zone: valueFlag({ value: 'DOMAIN', help: 'the cluster domain', parse: clusterZone, default: 'cluster.local' }),
  hosts: valueFlag({ value: 'FILE', help: "answer the names of this hosts file (CoreDNS's hosts plugin), read again when it changes; cluster names are answered first", parse: nonEmpty }),
  'hosts-ttl': valueFlag({ value: 'SECONDS', help: 'TTL of answers from --hosts and --hosts-entry', parse: intInRange(0, 2_147_483_647), default: 3600 }),
  'hosts-entry': listFlag({
    value: "'ADDRESS NAME...'",
    help: "answer these names with this address, before the --hosts file's (CoreDNS's hosts entries written in the Corefile)",
    parse: hostsEntry,
  }),
  'hosts-no-reverse': switchFlag('answer no PTR from --hosts and --hosts-entry (CoreDNS hosts no_reverse)'),
  'stub-domain': listFlag({
    value: 'DOMAIN=ADDR:PORT,...',
    help: "forward names at and under DOMAIN to these upstreams instead, with their own cache (kube-dns stubDomains; CoreDNS's per-domain forward); an upstream may be tcp://ADDR[:PORT] or tls://ADDR[:PORT][#NAME], as in --upstream",
    parse: stubDomain,
  }),
  upstream: listFlag({
    value: 'ADDR:PORT|tcp://ADDR[:PORT]|tls://ADDR[:PORT][#NAME]',
    help: 'forward other names here: plain DNS (UDP, and TCP for a truncated answer), plain DNS over TCP only on kept-open connections (port 53 unless given; CoreDNS force_tcp), or DNS over TLS (port 853 unless given; the certificate must match NAME, else --upstream-tls-servername, else ADDR) (default: the nameservers in /etc/resolv.conf)',
    parse: parseUpstream,
  }),
  'upstream-tls-servername': valueFlag({ value: 'NAME', help: "the name the certificates of the tls:// --upstream must match, for those without #NAME (CoreDNS tls_servername)", parse: parseServername }),
  'upstream-tls-ca': listFlag({ value: 'FILE', help: 'trust the CA certificates (PEM) in FILE for tls:// upstreams too, besides the system store', parse: nonEmpty }),
  'upstream-expire': upstreamExpire,
  'upstream-tls-expire': valueFlag({ value: 'DURATION', help: 'the older name of --upstream-expire', parse: upstreamExpire.parse }),
  ttl: valueFlag({ value: 'SECONDS', help: 'TTL of answers from the cluster zone, 0 to 3600 (CoreDNS kubernetes ttl)', parse: intInRange(0, 3600), default: 5 }),
  pods: valueFlag({
    value: 'MODE',
    help: 'pod records a-b-c-d.<ns>.pod.<zone>: disabled, insecure (answered from the name alone) or verified (only while a Pod of that namespace has that address: Pods are read, list and watch)',
    parse: oneOf(['disabled', 'insecure', 'verified'] as const),
    default: 'disabled' as 'disabled' | 'insecure' | 'verified',
  }),
  autopath: switchFlag(
    "answer a client Pod's first search-path query (NAME.<its ns>.svc.<zone>) with the first of NAME.<ns>.svc.<zone>, NAME.svc.<zone>, NAME.<zone>, NAME.<each search domain of /etc/resolv.conf, read at start> and NAME that exists, behind a CNAME, in one round trip (CoreDNS autopath @kubernetes); needs --pods verified",
  ),
  'external-zone': listFlag({
    value: 'ZONE',
    help: "answer <svc>.<ns>.ZONE with the Service's external addresses (externalIPs, load-balancer ingress IPs) and SRV for its ports, and the apex's SOA and NS, for clients outside the cluster (CoreDNS k8s_external)",
    parse: (raw) => zoneName(raw),
  }),
  'external-ttl': valueFlag({ value: 'SECONDS', help: 'TTL of answers from --external-zone (CoreDNS k8s_external ttl)', parse: intInRange(0, 3600), default: 5 }),
  'external-apex': valueFlag({ value: 'LABEL', help: "the label under each --external-zone that holds its nameserver's name, ns1.LABEL.ZONE (CoreDNS k8s_external apex)", parse: dnsLabel, default: 'dns' }),
  'forward-only': switchFlag(
    'answer no cluster zone and read nothing from the cluster: only forward and cache, to --upstream and --stub-domain (CoreDNS without its kubernetes plugin, as NodeLocal DNSCache runs it, asking the cluster zone of the cluster DNS)',
  ),
  namespaces: listFlag({
    value: 'NS[,NS...]',
    help: "answer only these namespaces' names; a Service, endpoint, pod or PTR name of another is NXDOMAIN, as if it did not exist (CoreDNS kubernetes namespaces)",
    parse: (raw: string) => raw.split(',').map((n) => n.trim()).filter((n) => n !== '').map((n) => {
      if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(n)) throw new Error(`${JSON.stringify(n)} is not a namespace name (lower-case letters, digits and -, at most 63)`);
      return n;
    }),
  }),
  'ignore-empty-service': switchFlag('answer NXDOMAIN for a ClusterIP Service without a ready endpoint, so that clients move on to their next search domain (CoreDNS kubernetes ignore empty_service)'),
  'endpoint-pod-names': switchFlag("name endpoints without a hostname after their Pod (<pod>.<svc>.<ns>.svc.<zone>, PTR too) instead of their dashed address (CoreDNS endpoint_pod_names)"),
  'rewrite-name': listFlag({
    value: 'exact|suffix:FROM:TO',
    help: "ask names matching FROM (the whole name, or its end) as TO instead and map the answer's names back (CoreDNS rewrite name ... answer auto); the first rule that matches applies",
    parse: parseNameRule,
  }),
  'reverse-cidr': listFlag({ value: 'CIDRS', help: 'reverse names of these ranges are answered here (NXDOMAIN when unknown), not forwarded', parse: parseCIDRList }),
  'dns-service': valueFlag({
    value: 'NAMESPACE/NAME',
    help: "this DNS server's own Service, whose cluster IPs are ns.dns.<zone>",
    parse: serviceRef,
    default: serviceRef('kube-system/kube-dns'),
    shown: 'kube-system/kube-dns',
  }),
  'forward-policy': valueFlag({
    value: 'POLICY',
    help: "the order healthy upstreams are tried in per query: random, round_robin or sequential (as given: failover only); unhealthy ones always go last (CoreDNS forward policy)",
    parse: oneOf(policies),
    default: 'random' as (typeof policies)[number],
  }),
  'max-fails': valueFlag({
    value: 'N',
    help: 'failed exchanges in a row after which an upstream is tried last and probed until it answers; 0 never takes one down (CoreDNS forward max_fails)',
    parse: intInRange(0, 1_000_000),
    default: 2,
  }),
  'forward-except': listFlag({
    value: 'DOMAIN',
    help: 'never send names at or under DOMAIN to the --upstream servers: SERVFAIL (CoreDNS forward except); cluster names, hosts and stub domains still answer',
    parse: (raw: string) => zoneName(raw),
  }),
  'failfast-all-unhealthy': switchFlag('with every upstream of a forwarder down, answer SERVFAIL (or stale) at once instead of trying them all (CoreDNS forward failfast_all_unhealthy_upstreams)'),
  'health-check': durationFlag({ help: 'how often an upstream taken down is probed (CoreDNS forward health_check)', default: '0.5s', min: '10ms', max: '1h' }),
  'max-concurrent': valueFlag({ value: 'N', help: 'upstream queries under way at most per forwarder (CoreDNS max_concurrent); a query above it gets REFUSED at once, as from CoreDNS', parse: positiveInt, default: 1000 }),
  'cache-keep-ttl': switchFlag("serve a cached answer with the TTL it was cached for until it expires, not the remaining one (CoreDNS cache keepttl)"),
  'cache-size': valueFlag({ value: 'N', help: 'forwarded answers kept in the cache (0 turns it off)', parse: (r: string) => (r === '0' ? 0 : positiveInt(r)), default: 10_000 }),
  'cache-ttl': valueFlag({
    value: 'SECONDS',
    help: "the longest a forwarded answer, positive or negative, is cached, which is also the most TTL clients are given (CoreDNS cache TTL: the default Corefile's cache 30)",
    parse: intInRange(1, 2_147_483_647),
    default: 30,
  }),
  'cache-success-ttl': valueFlag({
    value: 'SECONDS[:MINSECONDS]',
    help: 'positive answers: the longest cache TTL (default --cache-ttl) and the shortest, to which lower TTLs are raised (default 5) (CoreDNS cache success ... TTL MINTTL)',
    parse: ttlBounds,
  }),
  'cache-denial-ttl': valueFlag({
    value: 'SECONDS[:MINSECONDS]',
    help: 'NXDOMAIN and NODATA answers: the longest cache TTL (default --cache-ttl) and the shortest (default 5) (CoreDNS cache denial ... TTL MINTTL)',
    parse: ttlBounds,
  }),
  'cache-servfail-ttl': valueFlag({
    value: 'SECONDS',
    help: "how long an upstream's SERVFAIL answer is cached, 0 to 300; 0 never (CoreDNS cache servfail)",
    parse: intInRange(0, 300),
    default: 5,
  }),
  prefetch: valueFlag({
    value: 'AMOUNT[:SECONDS[:PERCENT]]',
    help: 'refresh a cached answer before it expires once it was asked AMOUNT times with no gap of SECONDS, in the last PERCENT of its TTL (CoreDNS prefetch); off turns it off',
    parse: prefetchSetting,
    default: prefetchSetting('2:60:10'),
    shown: '2:60:10',
  }),
  lameduck: durationFlag({
    help: 'on SIGTERM, fail /readyz at once but keep answering this long before closing the listeners, while endpoints and conntrack move away (CoreDNS health lameduck); 0s turns it off',
    default: '5s',
  }),
  loadbalance: valueFlag({
    value: 'POLICY',
    help: "round_robin: rotate the A/AAAA and MX records of every NOERROR answer per response, CNAMEs first (CoreDNS loadbalance, in every default Corefile); off: keep their order",
    parse: oneOf(loadBalancePolicies),
    default: 'round_robin' as (typeof loadBalancePolicies)[number],
  }),
  'local-interface': valueFlag({
    value: 'NAME',
    help: 'put the --local-ip addresses on a dummy interface of this name before listening (made when missing, checked every minute, removed at exit unless --keep-local-setup), as NodeLocal DNSCache puts 169.254.20.10 on nodelocaldns; needs CAP_NET_ADMIN',
    parse: interfaceName,
  }),
  'local-ip': listFlag({ value: 'IP', help: 'the node-local addresses of --local-interface and --notrack (default: the addresses of --listen that are not 0.0.0.0 or ::)', parse: ipAddress }),
  notrack: switchFlag('keep DNS to and from the --local-ip addresses out of conntrack (nftables tables ip and ip6 netplane-dns, raw priority), and accept it where a host firewall would drop it untracked (iptables chain NETPLANE-DNS-LOCAL at the top of INPUT and OUTPUT), as NodeLocal DNSCache does; checked every minute; needs CAP_NET_ADMIN'),
  'keep-local-setup': switchFlag('leave the --local-interface and the --notrack rules in place at exit (node-cache -skipteardown)'),
  'reuse-port': switchFlag('share the listen ports with other processes (SO_REUSEPORT): run one per core and the kernel spreads clients over them'),
  'log-queries': switchFlag("log one JSON line per answered query, whatever --log-level (except silent), with the fields of CoreDNS's log plugin: client, id, type, class, name, proto, sizes, DO, bufsize, rcode, flags, duration"),
  'log-class': valueFlag({
    value: 'CLASSES',
    help: 'which answered queries --log-queries logs: all, or some of success, denial (NXDOMAIN, NODATA) and error, separated by commas (CoreDNS log class)',
    parse: parseQueryClasses,
  }),
  conf: valueFlag({
    value: 'FILE',
    help: "CoreDNS's Corefile (as in the coredns ConfigMap), read at start as the flags of the same meaning: the root zone's block (kubernetes, forward, cache, health, ready, prometheus, loadbalance, hosts, rewrite, autopath, log, bind, reload) and stub domains; flags given here win over it",
    parse: nonEmpty,
  }),
  'corefile-placeholder': listFlag({
    value: 'NAME=VALUE',
    help: "replace NAME by VALUE in the --conf Corefile before reading it, as node-cache fills NodeLocal DNSCache's __PILLAR__ placeholders (one left unfilled is a usage error naming its line)",
    parse: placeholder,
  }),
  'corefile-port': valueFlag({
    value: 'PORT',
    help: "with --conf: the port of the Corefile's server blocks written without one, such as `.` (CoreDNS's -dns.port)",
    parse: intInRange(1, 65535),
    default: 53,
  }),
  reload: valueFlag({
    value: 'INTERVAL[,JITTER]|off',
    help: "read --conf and what it imports again every INTERVAL (2s or more), moved by up to half the JITTER (1s or more; 15s by default, at most half the INTERVAL), and apply a change without a restart (CoreDNS reload; `reload` in the Corefile sets it); a Corefile that cannot be used is logged and what runs stays",
    parse: parseReload,
    default: false as ReturnType<typeof parseReload>,
    shown: 'off',
  }),
  health: valueFlag({ value: 'ADDR:PORT', listens: true, help: "also serve CoreDNS's /health alone here, as its health plugin on :8080, for probes copied from CoreDNS's manifests (--admin serves it too)", parse: parseHostPort }),
  ready: valueFlag({ value: 'ADDR:PORT', listens: true, help: "also serve CoreDNS's /ready alone here, as its ready plugin on :8181, for probes copied from CoreDNS's manifests (--admin serves it too)", parse: parseHostPort }),
};

/** The dns component. */
export const dnsComponent = defineComponent({
  name: 'dns',
  summary: "Answers cluster DNS to the Kubernetes DNS specification and forwards the rest (CoreDNS's job).",
  // Namespaces: pod names answer only in namespaces that exist (CoreDNS watches them too, whatever its pod mode).
  kinds: ['Service', 'EndpointSlice', 'Namespace'],
  // Pods only for --pods verified: every other mode, and every other component, lists and watches none.
  flagKinds: (f) => (f.pods === 'verified' ? ['Pod'] : []),
  needsNoCluster: (f) => f['forward-only'],
  // CoreDNS's metrics port.
  defaultAdmin: '127.0.0.1:9153',
  flags,
  // A CoreDNS Deployment's command line, as it is.
  anchor: corednsFlags,
  settings: async (f) => (f.conf === undefined ? undefined : readCorefile(f.conf, process.env, f['corefile-port'], f['corefile-placeholder'])),
  async before(f, log) {
    checkDnsFlags(f);
    if (f.conf === undefined && flagGiven(f, 'corefile-port')) log.warn(`--corefile-port ${f['corefile-port']} has no effect without --conf: --listen says where DNS is answered`);
    if (f.conf === undefined && f['corefile-placeholder'].length > 0) log.warn('--corefile-placeholder fills the Corefile of --conf, and none is given: it has no effect');
    if (f['keep-local-setup'] && f['local-interface'] === undefined && !f.notrack) log.warn('--keep-local-setup keeps what --local-interface and --notrack set up, and neither is given: it has no effect');
    // Checked here, before the admin and probe ports are bound, as every other flag is; the pipeline reads them again.
    for (const file of f['upstream-tls-ca']) caFile(file);
    return undefined;
  },
  async run(ctx, f) {
    await runDns(ctx, f);
  },
});

type DnsFlags = Parameters<NonNullable<typeof dnsComponent.run>>[1];

/** The checks of flags that go together, at start and for each reloaded Corefile. Throws UsageError. */
function checkDnsFlags(f: DnsFlags): void {
  if (f.autopath && f.pods !== 'verified') throw new UsageError(`netplane dns: --autopath finds a client's namespace from the Pod with its address, so it needs --pods verified, not --pods ${f.pods}`);
  if (f['log-class'] !== undefined && !f['log-queries']) throw new UsageError('netplane dns: --log-class chooses what --log-queries logs; give --log-queries too');
  if (f.reload !== false && f.conf === undefined) throw new UsageError('netplane dns: --reload reads the Corefile of --conf again; give --conf too');
  if (f['forward-only']) {
    const zoneFlags = [f.autopath && '--autopath', f.pods !== 'disabled' && `--pods ${f.pods}`, f['reverse-cidr'].length > 0 && '--reverse-cidr', f['endpoint-pod-names'] && '--endpoint-pod-names', f['external-zone'].length > 0 && '--external-zone', f['ignore-empty-service'] && '--ignore-empty-service', f.namespaces.length > 0 && '--namespaces'].filter((x) => x !== false);
    if (zoneFlags.length > 0) throw new UsageError(`netplane dns: ${zoneFlags.join(', ')} ${zoneFlags.length === 1 ? 'is' : 'are'} about the cluster zone, which --forward-only does not answer`);
  }
  for (const s of f['forward-only'] ? [] : f['stub-domain']) {
    if (s.domain === f.zone || s.domain.endsWith(`.${f.zone}`)) throw new UsageError(`netplane dns: --stub-domain ${s.domain} is inside the cluster zone ${f.zone}, which is answered here`);
  }
  for (const z of f['external-zone']) {
    if (inDomain(z, f.zone) || inDomain(f.zone, z)) throw new UsageError(`netplane dns: --external-zone ${z} overlaps the cluster zone ${f.zone}: give a zone of its own, such as example.org`);
  }
  if (f['upstream-tls-expire'] !== undefined && flagGiven(f, 'upstream-expire')) throw new UsageError('netplane dns: --upstream-tls-expire is the older name of --upstream-expire; give one of them');
  if ((f['local-interface'] !== undefined || f.notrack) && localIps(f).length === 0) {
    throw new UsageError(`netplane dns: ${f.notrack ? '--notrack' : '--local-interface'} needs node-local addresses: give --local-ip, or --listen on an address that is not 0.0.0.0 or ::`);
  }
  const servername = f['upstream-tls-servername'];
  if (servername !== undefined && !f.upstream.some((u) => u.tls)) {
    throw new UsageError(`netplane dns: --upstream-tls-servername ${servername} names the certificate of tls:// --upstream servers, and none is given (a stub domain's is written tls://ADDR#NAME)`);
  }
}

/** The addresses of --local-interface and --notrack: --local-ip, else the --listen addresses that are not wildcards. */
function localIps(f: DnsFlags): string[] {
  return f['local-ip'].length > 0 ? f['local-ip'] : [...new Set(f.listen.map((l) => l.host).filter((h) => h !== '0.0.0.0' && h !== '::'))];
}

/** The node-local networking the flags ask for, or undefined. */
function localSetup(ctx: ComponentContext, f: DnsFlags): LocalSetup | undefined {
  const name = f['local-interface'];
  if (name === undefined && !f.notrack) return undefined;
  const ips = localIps(f);
  const health = f.health !== undefined && ips.includes(f.health.host) ? [f.health.port] : [];
  return new LocalSetup({
    ...(name !== undefined ? { interface: { name, ips } } : {}),
    ...(f.notrack ? { notrack: { ips, dnsPorts: f.listen.map((l) => l.port), tcpPorts: health } } : {}),
    keep: f['keep-local-setup'],
    kernel: () => NetlinkKernel.open(),
    runner: new HostRunner(),
    log: ctx.log,
    registry: ctx.registry,
  });
}

/** The resolv.conf whose nameservers are the default upstreams and whose search domains --autopath walks, as CoreDNS reads it. */
const resolvConf = '/etc/resolv.conf';
/** How long a replaced pipeline lives on for the queries it has under way: the server's query time-out. */
const retireAfterMs = 5000;

async function runDns(ctx: ComponentContext, f: DnsFlags): Promise<void> {
  // The node-local addresses first: the health address and the listeners may be on them.
  const local = localSetup(ctx, f);
  try {
    await local?.start();
  } catch (e) {
    ctx.log.fatal({ err: (e as Error).message }, `cannot put the node-local addresses on --local-interface ${f['local-interface']}: ${(e as Error).message}`);
    await local?.close();
    await ctx.shutdown.run(1);
    return;
  }
  // Run after the server has stopped answering (handlers registered later run first).
  if (local) ctx.shutdown.add('node-local setup', () => local.close());
  for (const [addr, path] of [[f.health, '/health'], [f.ready, '/ready']] as const) {
    if (addr === undefined) continue;
    try {
      await ctx.admin.listen(addr, path);
    } catch (e) {
      ctx.log.fatal({ err: (e as Error).message }, `cannot serve ${path} on ${addr.text}: ${(e as Error).message}`);
      await ctx.shutdown.run(1);
      return;
    }
  }
  const serverLabel = `dns://${f.listen[0]!.host === '0.0.0.0' ? '' : f.listen[0]!.host}:${f.listen[0]!.port}`;
  const index = f['forward-only'] ? undefined : followCluster(ctx, f);
  // Read on every zone query: kept current from the store's status events instead of copying the status each time.
  let synced = ctx.store.status.synced;
  ctx.store.onStatus((st) => (synced = st.synced));
  const pctx: PipelineContext = { log: ctx.log, registry: ctx.registry, store: ctx.store, index, serverLabel, synced: () => synced, loops: new LoopDetector(), resolvConf };
  let running = f;
  let pipe: Pipeline;
  try {
    pipe = await buildPipeline(pctx, f);
  } catch (e) {
    if (!(e instanceof PipelineError)) throw e;
    ctx.log.fatal({ err: e.message }, e.message);
    await ctx.shutdown.run(1);
    return;
  }
  const server = new DnsServer({ listen: f.listen, ...pipe.serving, log: ctx.log, registry: ctx.registry, serverLabel, reusePort: f['reuse-port'] });
  let listening = false;
  let lameDuck = false;
  // A forwarder whose every upstream loops back here can answer no external name: not ready, so it is noticed.
  ctx.admin.addReadinessCheck('upstreams', () => {
    const dead = pipe.forwarders.filter((w) => w.forwarder.looping.none);
    if (dead.length === 0) return { ok: true };
    return { ok: false, reason: dead.map((w) => `every upstream of ${w.domain} (${w.forwarder.looping.upstreams.join(', ')}) forwards back to this server`).join('; ') };
  });
  ctx.admin.addReadinessCheck('listeners', () =>
    lameDuck ? { ok: false, reason: 'shutting down: answering until the lame-duck period ends' } : listening ? { ok: true } : { ok: false, reason: 'not listening yet' },
  );
  let bound;
  try {
    bound = await server.start();
    listening = true;
    await local?.serving();
  } catch (e) {
    ctx.log.fatal({ err: (e as Error).message }, `cannot listen on ${f.listen.map((l) => l.text).join(', ')}: ${listenProblem(e as NodeJS.ErrnoException)}`);
    await pipe.close();
    await ctx.shutdown.run(1);
    return;
  }
  // Pipelines replaced by a reload, closed once their queries under way have had their time.
  const retiring = new Set<Pipeline>();
  const reloader = ctx.settingsFile === undefined ? undefined : corefileReloader(ctx, ctx.settingsFile, () => running, async (next, notes) => {
    const plan = planReload(running as unknown as Record<string, unknown>, next.flags);
    for (const key of plan.waiting) ctx.log.warn({ flag: key }, `the Corefile changes --${key}: that applies when netplane dns restarts; it keeps its running value`);
    const flagsNow = plan.flags as unknown as DnsFlags;
    checkDnsFlags(flagsNow);
    for (const note of notes) ctx.log.warn(note);
    if (plan.changed.length > 0) {
      const built = await buildPipeline(pctx, flagsNow);
      server.use(built.serving);
      const old = pipe;
      pipe = built;
      retiring.add(old);
      setTimeout(() => void old.close().finally(() => retiring.delete(old)), retireAfterMs).unref();
      void Promise.all(built.forwarders.map((w) => w.forwarder.checkLoops()));
    }
    running = flagsNow;
    ctx.shutdown.allow(flagsNow.lameduck + 10_000);
    ctx.log.info({ changed: plan.changed, waiting: plan.waiting, upstreams: pipe.upstreams.map((u) => u.text) }, plan.changed.length > 0 ? 'Corefile reloaded' : 'Corefile read again: nothing to apply now');
  });
  // Registered last, so run first: the admin server and the cluster view stay up through the lame-duck period.
  ctx.shutdown.allow(f.lameduck + 10_000);
  ctx.shutdown.add('dns', async () => {
    reloader?.stop();
    lameDuck = true;
    const lameduck = running.lameduck;
    if (lameduck > 0) {
      ctx.log.info({ lameduckMs: lameduck }, 'dns lame duck: /readyz fails, queries are still answered');
      await new Promise((resolve) => setTimeout(resolve, lameduck));
    }
    await server.close();
    await Promise.all([pipe, ...retiring].map((p) => p.close()));
  });
  void Promise.all(pipe.forwarders.map((w) => w.forwarder.checkLoops()));
  reloader?.start();
  ctx.log.info({ listen: bound.map((b) => `${b.transport}://${b.address}:${b.port}`), zone: f['forward-only'] ? null : f.zone, upstreams: pipe.upstreams.map((u) => u.text), stubDomains: f['stub-domain'].map((s) => `${s.domain}=${s.upstreams.map((u) => u.text).join(',')}`), ...(pipe.autopathSearch ? { autopathSearch: pipe.autopathSearch } : {}) }, 'dns serving');
}

/** The record index of the cluster zone, kept current from the service map, the Namespaces and (--pods verified) the Pods. */
function followCluster(ctx: ComponentContext, f: DnsFlags): RecordIndex {
  const serviceMap = ctx.serviceMap();
  const namespaces = f.namespaces.flat();
  const index = new RecordIndex(f.zone, { endpointPodNames: f['endpoint-pod-names'], ...(namespaces.length > 0 ? { namespaces } : {}) });
  const tracker = serviceMap.tracker();
  const programming = new Counter({ name: 'netplane_dns_index_updates_total', help: 'Services re-indexed after a change.', registers: [ctx.registry] });
  const sync = () => {
    const changes = tracker.take();
    if (changes.services.size === 0) return;
    index.update(serviceMap, changes.services);
    programming.inc(changes.services.size);
  };
  tracker.onChange(sync);
  sync();
  followNamespaces(ctx.store, index);
  if (f.pods === 'verified') followPods(ctx.store, index);
  return index;
}

/**
 * The Corefile read again every --reload (CoreDNS reload), applied by `apply` when it changed, with CoreDNS's reload
 * metrics: coredns_reload_version_info names the running Corefile's hash, coredns_reload_failed_total counts
 * Corefiles that could not be used.
 */
function corefileReloader(ctx: ComponentContext, file: NonNullable<ComponentContext['settingsFile']>, running: () => DnsFlags, apply: (read: Reread, notes: string[]) => Promise<void>): Reloader {
  const failures = new Counter({ name: 'coredns_reload_failed_total', help: 'Counter of the number of failed reload attempts.', registers: [ctx.registry] });
  const version = new Gauge({ name: 'coredns_reload_version_info', help: "A metric with a constant '1' value labeled by hash, and value which type of hash generated.", labelNames: ['hash', 'value'], registers: [ctx.registry] });
  const show = (fingerprint: string | undefined) => {
    version.reset();
    if (running().reload !== false && fingerprint !== undefined) version.set({ hash: 'sha512', value: fingerprint }, 1);
  };
  show(file.fingerprint);
  return new Reloader({
    every: () => running().reload,
    fingerprint: file.fingerprint,
    reread: () => file.reread(),
    apply: (read) => apply(read as Reread, (read as Reread).notes),
    failed: (e) => {
      failures.inc();
      ctx.log.error({ err: e.message }, `the Corefile changed and cannot be used; netplane dns keeps serving as before: ${e.message}`);
    },
    applied: show,
  });
}
