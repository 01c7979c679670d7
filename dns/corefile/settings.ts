// A Corefile's server blocks mapped onto netplane dns's flags, plugin by plugin, so that the `coredns` ConfigMap of
// a cluster (kubeadm's default Corefile and the usual edits to it: stub domains, hosts, rewrite, autopath, log) can
// be given as it is: the root zone's block is the server (kubernetes, forward, cache, health, ready, prometheus,
// loadbalance, hosts, rewrite, autopath, log, bind), another zone's block with a `forward` a stub domain. What
// netplane does not do (a plugin it has not, an option it ignores) is said in a note, a warning at start; what
// cannot be read is a usage error naming the line.
import { createHash } from 'node:crypto';
import { globSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { isIP } from 'node:net';
import { UsageError } from '../../runtime/errors.ts';
import { hostPortText, parseDuration } from '../../runtime/flags.ts';
import { readSettingsFile, type FileSettings, type Setting } from '../../runtime/settings.ts';
import { CorefileError, parseCorefile, type Directive, type ImportReader, type ParseOptions, type ServerBlock } from './parse.ts';

// Plugins that change nothing netplane does differently: no note.
const quiet = new Set(['errors', 'loop', 'debug', 'cancel']);
// Options of the plugins read here that netplane does without, and why.
const unhonoured: Record<string, string> = {
  'kubernetes.labels': 'every Service is answered',
  'kubernetes.namespace_labels': 'every namespace is answered',
  'kubernetes.noendpoints': 'endpoint records are answered',
  'kubernetes.endpoint': 'the cluster is read through --kubeconfig or in-cluster',
  'kubernetes.tls': 'the cluster is read through --kubeconfig or in-cluster',
  'kubernetes.multicluster': 'no multicluster zone is served',
  'kubernetes.startup_timeout': 'not used',
  'forward.next': 'not supported',
  'hosts.reload': 'the file is read again when it changes',
};

/**
 * Reads FILE and returns its settings, its imports read from disk, with a fingerprint of everything read (the file
 * and each imported one, by name and text); a file that cannot be read or used is a UsageError.
 */
export async function readCorefile(file: string, env: NodeJS.ProcessEnv = process.env, port = 53, placeholders: readonly Placeholder[] = []): Promise<FileSettings> {
  const text = await readSettingsFile('netplane dns', 'conf', file);
  const hash = createHash('sha512').update(text);
  const read = importsFrom(dirname(file));
  const imports: ImportReader = (pattern) => {
    const files = read(pattern);
    for (const f of files) hash.update(`\0${f.file}\0${f.text}`);
    return files;
  };
  const settings = corefileSettings(text, file, { env, imports, port, placeholders });
  return { ...settings, fingerprint: hash.digest('hex') };
}

/**
 * Reads the files an import names: a path or a glob, relative to the Corefile's directory, in name order (CoreDNS's
 * order); a glob that matches nothing is no error (k3s imports custom/*.server whether there are any).
 */
export function importsFrom(dir: string): ImportReader {
  return (pattern) => {
    const path = isAbsolute(pattern) ? pattern : join(dir, pattern);
    const files = /[*?[]/.test(pattern) ? globSync(path).sort() : [path];
    return files.map((f) => {
      try {
        return { file: f, text: readFileSync(f, 'utf8') };
      } catch (e) {
        throw new CorefileError(1, `cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, f);
      }
    });
  };
}

/** A word of the Corefile's text replaced by a value before it is read (--corefile-placeholder). */
export interface Placeholder {
  name: string;
  value: string;
}

/** What fills each of NodeLocal DNSCache's placeholders. */
const pillarSources: Record<string, string> = {
  __PILLAR__CLUSTER__DNS__: "started as node-cache, netplane fills it with the cluster IP of -upstreamsvc's Service (kube-dns unless given) from the Service's <NAME>_SERVICE_HOST variable, which Kubernetes sets in pods started after the Service exists",
  __PILLAR__UPSTREAM__SERVERS__: 'started as node-cache, netplane fills it with /etc/resolv.conf',
  __PILLAR__LOCAL__DNS__: "started as node-cache, netplane fills it with -localip's addresses",
  __PILLAR__DNS__SERVER__: 'started as node-cache, netplane fills it with nothing, as node-cache does',
  __PILLAR__DNS__DOMAIN__: "NodeLocal DNSCache's documentation has it replaced by the cluster domain (sed) before the ConfigMap is applied",
};

/** NodeLocal DNSCache's placeholders, which node-cache fills: one left in a Corefile names nothing CoreDNS knows. */
const pillar = /__PILLAR__[A-Z0-9_]*__/;

/**
 * The settings of a Corefile's text; `port` is that of a server block written without one (CoreDNS's -dns.port, 53);
 * each of `placeholders` is replaced in the text first. Pure, but for the environment and the imports given. Throws
 * UsageError naming the line.
 */
export function corefileSettings(text: string, file: string, options: ParseOptions & { port?: number; placeholders?: readonly Placeholder[] } = {}): FileSettings {
  let blocks: ServerBlock[];
  const filled = (options.placeholders ?? []).reduce((t, p) => t.replaceAll(p.name, p.value), text);
  const left = filled.split('\n').findIndex((l) => pillar.test(l.replace(/#.*$/, '')));
  if (left >= 0) {
    const name = pillar.exec(filled.split('\n')[left]!.replace(/#.*$/, ''))![0];
    const from = pillarSources[name] ?? 'node-cache fills it';
    throw new UsageError(`netplane dns: --conf ${file}: line ${left + 1}: ${name} is a placeholder of NodeLocal DNSCache's Corefile, and nothing filled it (${from}; else give --corefile-placeholder ${name}=VALUE)`);
  }
  text = filled;
  try {
    blocks = parseCorefile(text, options);
  } catch (e) {
    if (e instanceof CorefileError) throw new UsageError(`netplane dns: --conf ${file}: ${e.message}`, { cause: e });
    throw e;
  }
  const settings: Setting[] = [];
  const notes: string[] = [];
  const at: At = (node, what) => `${node.source ?? file}:${node.line}: ${what}`;
  const fail: Fail = (node, why) => new UsageError(`netplane dns: --conf ${file}: ${node.source === undefined ? '' : `${node.source} `}line ${node.line}: ${why}`);
  const set: SetFlag = (node, what, flag, value) => settings.push({ flag, value, from: at(node, what) });

  const keyed = blocks.map((b) => ({ block: b, keys: b.keys.map((k) => serverKey(k, b, fail, options.port ?? 53)) }));
  const roots = keyed.filter((k) => k.keys.some((key) => key.zone === '.'));
  if (roots.length !== 1) throw fail(roots[1]?.block ?? { line: 1 }, roots.length === 0 ? 'no server block for the root zone (.:53): netplane reads the block that serves every name' : 'a second server block for the root zone: netplane serves one');
  const root = roots[0]!;
  const port = root.keys.find((k) => k.zone === '.')!.port;
  for (const k of root.keys) if (k.zone !== '.') notes.push(at(root.block, `the zone ${k.zone} beside . in one block: its names are served as the root block serves every name`));

  const kube = root.block.directives.find((d) => d.name === 'kubernetes');
  const clusterZone = kube?.args.map((z) => z.toLowerCase().replace(/\.$/, '')).find((z) => !isReverseZone(z));
  const seen = new Set<string>();
  let cache = false;
  let loadbalance = false;
  for (const d of root.block.directives) {
    const what = d.name;
    if (seen.has(what) && what !== 'rewrite') notes.push(at(d, `a second ${what}: only the first is read`));
    if (seen.has(what) && what !== 'rewrite') continue;
    seen.add(what);
    const sub = (prefix: string, o: Directive) => {
      const why = unhonoured[`${prefix}.${o.name}`];
      notes.push(at(o, `${prefix} ${o.name}: ${why ?? 'not an option netplane reads; ignored'}`));
    };
    switch (what) {
      case 'bind': {
        const hosts = d.args.filter((a) => isIP(a) !== 0);
        for (const a of d.args) if (isIP(a) === 0) notes.push(at(d, `bind ${a}: only addresses are bound, not interfaces by name`));
        for (const h of hosts) set(d, `bind ${h}`, 'listen', hostPortText(h, port));
        break;
      }
      case 'health': {
        set(d, 'health', 'health', listenAddress(d.args[0] ?? ':8080'));
        for (const o of d.block) {
          if (o.name === 'lameduck' && o.args.length === 1) set(o, 'health lameduck', 'lameduck', o.args[0]!);
          else sub('health', o);
        }
        break;
      }
      case 'ready':
        set(d, 'ready', 'ready', listenAddress(d.args[0] ?? ':8181'));
        break;
      case 'prometheus':
        set(d, 'prometheus', 'admin', listenAddress(d.args[0] ?? 'localhost:9153'));
        break;
      case 'kubernetes':
        kubernetes(d, set, sub, notes, at, fail);
        break;
      case 'forward': {
        if (d.args[0] !== '.') throw fail(d, `forward ${d.args[0] ?? ''}: the root block forwards . (every name it does not answer); a zone of its own goes in a server block of its own`);
        for (const to of upstreams(d, fail, notes, at)) set(d, 'forward', 'upstream', to);
        for (const o of d.block) {
          const one = o.args[0];
          if (o.name === 'force_tcp' || o.name === 'prefer_udp') continue; // upstreams() read them
          if (o.name === 'max_concurrent' && one) set(o, 'forward max_concurrent', 'max-concurrent', one);
          else if (o.name === 'policy' && one) set(o, 'forward policy', 'forward-policy', one);
          else if (o.name === 'max_fails' && one) set(o, 'forward max_fails', 'max-fails', one);
          else if (o.name === 'except' && o.args.length > 0) for (const z of o.args) set(o, 'forward except', 'forward-except', z.toLowerCase().replace(/\.$/, ''));
          else if (o.name === 'failfast_all_unhealthy_upstreams') set(o, 'forward failfast_all_unhealthy_upstreams', 'failfast-all-unhealthy', true);
          else if (o.name === 'health_check' && one) {
            set(o, 'forward health_check', 'health-check', one);
            if (o.args.length > 1 || o.block.length > 0) notes.push(at(o, `forward health_check ${o.args.slice(1).join(' ')}: probes ask ". IN NS" over the upstream's own transport; only the interval is read`));
          }
          else if (o.name === 'tls_servername' && one) set(o, 'forward tls_servername', 'upstream-tls-servername', one);
          else if (o.name === 'expire' && one) set(o, 'forward expire', 'upstream-expire', one);
          else if (o.name === 'tls' && o.args.length === 1) set(o, 'forward tls', 'upstream-tls-ca', one!);
          else if (o.name === 'tls' && o.args.length === 3) {
            set(o, 'forward tls', 'upstream-tls-ca', o.args[2]!);
            notes.push(at(o, 'forward tls: no client certificate is presented to upstreams; only the CA is read'));
          } else sub('forward', o);
        }
        break;
      }
      case 'cache':
        cache = true;
        cacheSettings(d, clusterZone, set, sub, notes, at);
        break;
      case 'loadbalance':
        loadbalance = true;
        if ((d.args[0] ?? 'round_robin') !== 'round_robin') notes.push(at(d, `loadbalance ${d.args.join(' ')}: netplane rotates round_robin only`));
        break;
      case 'hosts': {
        set(d, 'hosts', 'hosts', d.args[0] ?? '/etc/hosts');
        if (d.args.length > 1) notes.push(at(d, `hosts ${d.args.slice(1).join(' ')}: the file's names are answered in every zone`));
        for (const o of d.block) {
          if (o.name === 'ttl' && o.args.length === 1) set(o, 'hosts ttl', 'hosts-ttl', o.args[0]!);
          else if (o.name === 'fallthrough') {
            // Names the file does not have go on to the cluster zone and the forwarder, as with fallthrough.
          } else if (isIP(o.name) !== 0) set(o, 'hosts entry', 'hosts-entry', [o.name, ...o.args].join(' '));
          else if (o.name === 'no_reverse') set(o, 'hosts no_reverse', 'hosts-no-reverse', true);
          else sub('hosts', o);
        }
        break;
      }
      case 'rewrite':
        rewrite(d, set, notes, at);
        break;
      case 'autopath':
        if (d.args[0] === '@kubernetes') set(d, 'autopath', 'autopath', true);
        else notes.push(at(d, `autopath ${d.args.join(' ')}: netplane's autopath takes the search path of its own /etc/resolv.conf (autopath @kubernetes)`));
        break;
      case 'log': {
        set(d, 'log', 'log-queries', true);
        const classes = d.block.filter((o) => o.name === 'class').flatMap((o) => o.args);
        if (classes.length > 0) set(d, 'log class', 'log-class', classes.join(','));
        if (d.args.length > 0) notes.push(at(d, `log ${d.args.join(' ')}: every name is logged, in netplane's JSON fields`));
        break;
      }
      case 'reload':
        set(d, 'reload', 'reload', reloadSetting(d, fail));
        break;
      case 'k8s_external': {
        const zones = d.args.map((z) => z.toLowerCase().replace(/\.$/, '')).filter((z) => z !== '' && z !== '.');
        if (zones.length === 0) notes.push(at(d, "k8s_external without a zone: CoreDNS would answer every name as external; write the zone (k8s_external example.org)"));
        for (const z of zones) set(d, 'k8s_external', 'external-zone', z);
        for (const o of d.block) {
          const one = o.args[0];
          if (o.name === 'apex' && one) set(o, 'k8s_external apex', 'external-apex', one);
          else if (o.name === 'ttl' && one) set(o, 'k8s_external ttl', 'external-ttl', one);
          else if (o.name === 'headless') notes.push(at(o, "k8s_external headless: headless Services' endpoints are not answered in the external zone"));
          else sub('k8s_external', o);
        }
        break;
      }
      default:
        if (!quiet.has(what)) notes.push(at(d, `the plugin ${what} is not one netplane has; ignored`));
    }
  }
  if (!seen.has('bind') && port !== 53) set(root.block, `the port ${port}`, 'listen', `0.0.0.0:${port}`);
  // Without a kubernetes plugin CoreDNS answers no cluster zone: its names are forwarded as any other (NodeLocal
  // DNSCache's Corefile sends them to the cluster's DNS in a block of their own).
  if (!blocks.some((b) => b.directives.some((d) => d.name === 'kubernetes'))) set(root.block, 'no kubernetes plugin', 'forward-only', true);
  // Without these plugins CoreDNS neither caches nor rotates: so here too.
  if (!cache) set(root.block, 'no cache plugin', 'cache-size', '0');
  if (!loadbalance) set(root.block, 'no loadbalance plugin', 'loadbalance', 'off');

  for (const { block, keys } of keyed) {
    if (block === root.block) continue;
    const forward = block.directives.find((d) => d.name === 'forward');
    const zones = keys.map((k) => k.zone);
    if (!forward) {
      notes.push(at(block, `the server block ${zones.join(' ')} has no forward: not served (netplane serves other zones only as stub domains)`));
      continue;
    }
    if (keys.some((k) => k.port !== port)) notes.push(at(block, `the server block ${block.keys.join(' ')}: served on the root block's port ${port}`));
    const servername = forward.block.find((o) => o.name === 'tls_servername')?.args[0]?.toLowerCase();
    // A stub domain's upstreams carry its TLS name themselves (tls://ADDR#NAME), as --stub-domain writes it.
    const to = upstreams(forward, fail, notes, at).map((u) => (servername !== undefined && u.startsWith('tls://') && !u.includes('#') ? `${u}#${servername}` : u));
    for (const zone of zones) set(forward, `${zone} forward`, 'stub-domain', `${zone}=${to.join(',')}`);
    for (const o of forward.block) {
      if (o.name === 'force_tcp' || o.name === 'prefer_udp' || o.name === 'tls_servername') continue;
      notes.push(at(o, `forward ${o.name} in the server block ${zones.join(' ')}: ${unhonoured[`forward.${o.name}`] ?? 'a stub domain takes its upstreams from its forward line, and force_tcp and tls_servername; ignored'}`));
    }
    for (const d of block.directives) {
      if (d.name === 'forward' || d.name === 'cache' || quiet.has(d.name)) continue;
      const where = `${d.name} in the server block ${zones.join(' ')}`;
      const wide = serverWide(d, fail);
      if (wide !== undefined) {
        // One process serves every block: the first block that says it (the root block first) says it for all.
        const had = settings.find((x) => x.flag === wide.flag);
        if (had === undefined) {
          set(d, where, wide.flag, wide.value);
          for (const o of d.block) if (d.name === 'health' && o.name === 'lameduck' && o.args.length === 1) set(o, `${where} lameduck`, 'lameduck', o.args[0]!);
        } else if (had.value !== wide.value) notes.push(at(d, `${where}: one process serves every block; ${had.from.split(': ')[0]} says how`));
        continue;
      }
      // The root block's addresses serve every zone: the same ones again need no word.
      const rootBind = root.block.directives.find((x) => x.name === 'bind')?.args;
      if (d.name === 'bind' && rootBind !== undefined && [...d.args].sort().join() === [...rootBind].sort().join()) continue;
      notes.push(at(d, `${where}: ${d.name === 'bind' ? "every zone is answered on the root block's addresses" : 'a stub domain only forwards (with its own cache)'}`));
    }
  }
  return { settings, notes };
}

/** A server block key: `[dns://]ZONE[:PORT]` (without a port, `port`); `:53` alone is the root. */
function serverKey(key: string, line: Place, fail: Fail, port: number): { zone: string; port: number } {
  let k = key;
  const scheme = /^([a-z]+):\/\//.exec(k);
  if (scheme) {
    if (scheme[1] !== 'dns') throw fail(line, `${key}: netplane serves plain DNS (dns://) only, not ${scheme[1]}://`);
    k = k.slice(scheme[0].length);
  }
  const m = /^([^:]*)(?::(\d{1,5}))?$/.exec(k);
  if (!m) throw fail(line, `${key} is not a zone with an optional port such as .:53`);
  const zone = m[1] === '' || m[1] === '.' ? '.' : m[1]!.toLowerCase().replace(/\.$/, '');
  const at = m[2] === undefined ? port : Number(m[2]);
  if (at < 1 || at > 65535) throw fail(line, `${key}: the port must be from 1 to 65535`);
  return { zone, port: at };
}

/** A plugin's listen address: `:8080` is every IPv4 address, `localhost` loopback. */
function listenAddress(raw: string): string {
  const m = /^(.*):(\d+)$/.exec(raw);
  if (!m) return raw;
  const host = m[1] === '' ? '0.0.0.0' : m[1] === 'localhost' ? '127.0.0.1' : m[1]!.replace(/^\[(.*)\]$/, '$1');
  return hostPortText(host, Number(m[2]));
}

/**
 * The upstreams of a forward line, as --upstream writes them; /etc/resolv.conf is netplane's default (none written).
 * With `force_tcp` plain ones are asked over TCP only (tcp://); `prefer_udp` is how netplane asks them anyway (UDP,
 * and TCP for a truncated answer).
 */
function upstreams(d: Directive, fail: Fail, notes: string[], at: At): string[] {
  const out: string[] = [];
  const forceTcp = d.block.find((o) => o.name === 'force_tcp');
  for (const raw of d.args.slice(1)) {
    if (raw.startsWith('/')) {
      if (raw !== '/etc/resolv.conf') throw fail(d, `forward ${raw}: netplane forwards to the nameservers of /etc/resolv.conf (its default) or to addresses; give the addresses`);
      if (forceTcp) notes.push(at(forceTcp, 'forward force_tcp: the nameservers of /etc/resolv.conf are asked over UDP (TCP for a truncated answer); write their addresses for TCP only'));
      continue;
    }
    const tls = raw.startsWith('tls://');
    const bare = raw.replace(/^(dns|tls):\/\//, '');
    const withPort = isIP(bare) === 0 ? bare : hostPortText(bare, tls ? 853 : 53);
    out.push(tls ? `tls://${withPort}` : forceTcp ? `tcp://${withPort}` : withPort);
  }
  return out;
}

/** Where a directive or block is: its line, and its file when imported. */
type Place = { line: number; source?: string };
type SetFlag = (node: Place, what: string, flag: string, value: string | true) => void;
type At = (node: Place, what: string) => string;
type Fail = (node: Place, why: string) => Error;

/** kubernetes ZONES... { pods, ttl, endpoint_pod_names, fallthrough, kubeconfig, ... }. */
function kubernetes(d: Directive, set: SetFlag, sub: (prefix: string, o: Directive) => void, notes: string[], at: At, fail: Fail): void {
  const zones = d.args.map((z) => z.toLowerCase().replace(/\.$/, ''));
  const reverse = zones.filter(isReverseZone);
  const forwardZones = zones.filter((z) => !isReverseZone(z));
  if (forwardZones.length === 0) throw fail(d, 'kubernetes without a cluster zone (such as cluster.local)');
  set(d, 'kubernetes', 'zone', forwardZones[0]!);
  if (forwardZones.length > 1) notes.push(at(d, `kubernetes ${forwardZones.slice(1).join(' ')}: netplane serves one cluster zone, ${forwardZones[0]}`));
  let fallthrough: string[] | undefined;
  for (const o of d.block) {
    const one = o.args[0];
    if (o.name === 'pods' && one) set(o, 'kubernetes pods', 'pods', one);
    else if (o.name === 'ttl' && one) set(o, 'kubernetes ttl', 'ttl', one);
    else if (o.name === 'endpoint_pod_names') set(o, 'kubernetes endpoint_pod_names', 'endpoint-pod-names', true);
    else if (o.name === 'namespaces' && o.args.length > 0) set(o, 'kubernetes namespaces', 'namespaces', o.args.join(','));
    else if (o.name === 'ignore' && o.args.length === 1 && one === 'empty_service') set(o, 'kubernetes ignore empty_service', 'ignore-empty-service', true);
    else if (o.name === 'fallthrough') fallthrough = o.args.map((z) => z.toLowerCase().replace(/\.$/, ''));
    else if (o.name === 'kubeconfig' && one) {
      set(o, 'kubernetes kubeconfig', 'kubeconfig', one);
      if (o.args.length > 1) notes.push(at(o, `kubernetes kubeconfig ${one} ${o.args[1]}: the kubeconfig's current context is used`));
    } else sub('kubernetes', o);
  }
  // A reverse zone the plugin serves without falling through is answered here (NXDOMAIN when unknown).
  const through = (z: string) => fallthrough !== undefined && (fallthrough.length === 0 || fallthrough.includes(z));
  for (const z of reverse) {
    if (through(z)) continue;
    const cidr = reverseCIDR(z);
    if (cidr === undefined) notes.push(at(d, `kubernetes ${z}: a reverse zone netplane cannot turn into a range; its unknown names are forwarded`));
    else set(d, `kubernetes ${z}`, 'reverse-cidr', cidr);
  }
}

function isReverseZone(z: string): boolean {
  return z.endsWith('in-addr.arpa') || z.endsWith('ip6.arpa') || z.includes('/');
}

/** The range of a reverse zone (`10.in-addr.arpa` is 10.0.0.0/8, `in-addr.arpa` 0.0.0.0/0) or a CIDR as written. */
function reverseCIDR(z: string): string | undefined {
  if (z.includes('/')) return z;
  if (z.endsWith('in-addr.arpa')) {
    const labels = z === 'in-addr.arpa' ? [] : z.slice(0, -'.in-addr.arpa'.length).split('.').reverse();
    if (labels.length > 4 || labels.some((l) => !/^\d{1,3}$/.test(l) || Number(l) > 255)) return undefined;
    return `${[...labels, '0', '0', '0', '0'].slice(0, 4).join('.')}/${labels.length * 8}`;
  }
  const nibbles = z === 'ip6.arpa' ? [] : z.slice(0, -'.ip6.arpa'.length).split('.').reverse();
  if (nibbles.length > 32 || nibbles.some((n) => !/^[0-9a-f]$/.test(n))) return undefined;
  const hex = [...nibbles, ...Array<string>(32 - nibbles.length).fill('0')].join('');
  const groups = hex.match(/.{4}/g)!.join(':');
  return `${groups}/${nibbles.length * 4}`;
}

/** cache [TTL] [ZONES] { success, denial, prefetch, servfail, serve_stale, disable }. */
function cacheSettings(d: Directive, clusterZone: string | undefined, set: SetFlag, sub: (prefix: string, o: Directive) => void, notes: string[], at: At): void {
  if (d.args[0] !== undefined && /^\d+$/.test(d.args[0])) set(d, 'cache', 'cache-ttl', d.args[0]);
  const zones = d.args.filter((a) => !/^\d+$/.test(a));
  if (zones.length > 0 && !(zones.length === 1 && zones[0] === '.')) notes.push(at(d, `cache ${zones.join(' ')}: every forwarded answer is cached, whatever its zone`));
  let capacity = 0;
  for (const o of d.block) {
    const [a, b, c] = o.args;
    if ((o.name === 'success' || o.name === 'denial') && a) {
      capacity += Number(a);
      if (b) set(o, `cache ${o.name}`, o.name === 'success' ? 'cache-success-ttl' : 'cache-denial-ttl', c === undefined ? b : `${b}:${c}`);
    } else if (o.name === 'prefetch' && a) {
      const seconds = b === undefined ? undefined : durationSeconds(b);
      const percent = c?.replace(/%$/, '');
      set(o, 'cache prefetch', 'prefetch', [a, seconds ?? (percent ? '60' : undefined), percent].filter((x) => x !== undefined).join(':'));
    } else if (o.name === 'servfail' && a) {
      const seconds = durationSeconds(a);
      if (seconds !== undefined) set(o, 'cache servfail', 'cache-servfail-ttl', seconds);
      else notes.push(at(o, `cache servfail ${a}: not a duration; netplane's default is kept`));
    } else if (o.name === 'keepttl') {
      set(o, 'cache keepttl', 'cache-keep-ttl', true);
    } else if (o.name === 'serve_stale') {
      // netplane serves a stale answer while it refreshes, as serve_stale does.
    } else if (o.name === 'disable') {
      // The cluster zone and its reverse zones are never cached (they are answered from memory); others are noted.
      const zones = o.args.slice(1).map((z) => z.toLowerCase().replace(/\.$/, ''));
      const answeredHere = (z: string) => isReverseZone(z) || (clusterZone !== undefined && (z === clusterZone || z.endsWith(`.${clusterZone}`)));
      if (zones.length === 0 || !zones.every(answeredHere)) notes.push(at(o, `cache disable ${o.args.join(' ')}: netplane caches every forwarded answer (cluster names are never cached)`));
    } else sub('cache', o);
  }
  if (capacity > 0) set(d, 'cache success and denial', 'cache-size', String(capacity));
}

/** A Go duration in whole seconds, as a string; undefined when it is not one. */
/** `reload [INTERVAL] [JITTER]` as the --reload value: CoreDNS's defaults (30s, 15s) when absent. */
/** The flag and value of a plugin that is about the whole server wherever it is written (health, prometheus, reload). */
function serverWide(d: Directive, fail: Fail): { flag: string; value: string } | undefined {
  if (d.name === 'health') return { flag: 'health', value: listenAddress(d.args[0] ?? ':8080') };
  if (d.name === 'prometheus') return { flag: 'admin', value: listenAddress(d.args[0] ?? 'localhost:9153') };
  if (d.name === 'reload') return { flag: 'reload', value: reloadSetting(d, fail) };
  return undefined;
}

function reloadSetting(d: Directive, fail: Fail): string {
  if (d.args.length > 2) throw fail(d, 'reload takes at most an INTERVAL and a JITTER');
  return d.args.length === 0 ? '30s,15s' : d.args.join(',');
}

function durationSeconds(raw: string): string | undefined {
  try {
    return String(Math.round(parseDuration(raw) / 1000));
  } catch {
    return undefined;
  }
}

/** rewrite [continue|stop] name [exact|suffix] FROM TO [answer auto]. */
function rewrite(d: Directive, set: SetFlag, notes: string[], at: At): void {
  const args = d.args[0] === 'stop' || d.args[0] === 'continue' ? d.args.slice(1) : d.args;
  if (args[0] !== 'name') {
    notes.push(at(d, `rewrite ${d.args.join(' ')}: netplane rewrites names only (rewrite name exact|suffix)`));
    return;
  }
  const kinds = ['exact', 'suffix', 'prefix', 'substring', 'regex'];
  const [kind, from, to] = kinds.includes(args[1]!) ? [args[1]!, args[2], args[3]] : ['exact', args[1], args[2]];
  if (kind !== 'exact' && kind !== 'suffix') {
    notes.push(at(d, `rewrite name ${kind}: netplane rewrites exact names and suffixes only; ignored`));
    return;
  }
  if (from === undefined || to === undefined) {
    notes.push(at(d, `rewrite ${d.args.join(' ')}: no FROM and TO; ignored`));
    return;
  }
  set(d, `rewrite name ${kind}`, 'rewrite-name', `${kind}:${from}:${to}`);
}
