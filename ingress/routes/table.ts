// The compiled routing table and its indexes. Matching costs the same with 10 rules as with 10,000: one Map lookup
// for the host (exact, then the wildcard of the parent domain, then any host), then, in that host's one Map, one
// for the whole path and one per path element, from the longest element prefix a Prefix rule could match down to
// `/`. Nothing in a match reads a route until it is returned, and keys shared by many hosts are one string. Only
// the regex rules of a host (Ingresses with use-regex or a rewrite-target) are tried one by one, in ingress-nginx's
// location order, each a comparison of its fixed start (routes/pattern.ts).
import type { Ingress } from '../../cluster/model/ingress.ts';
import { locationBefore, regexMatches } from './pattern.ts';
import type { BackendRef, ClientCertPolicy, IngressPolicy, IngressProblem, Route, RouteTable, TlsChoice } from './types.ts';

/**
 * The rules of one host (or of the wildcard, or of any host) in one Map, keyed so that a key's last character tells
 * its path type and a match never has to look into a route: a Prefix rule under its path and "/" (`/aaa/`; `/` for
 * the root), an Exact rule under its path. Exact paths ending in "/" would take a Prefix key, so they live apart,
 * in `slashExact` (rare). One table per host is one thing to bring into cache, whatever the number of hosts.
 */
export class PathSet extends Map<string, Route> {
  /** Length of the longest Prefix key: candidates longer than this are skipped without a lookup. */
  maxKey = 0;
  /** Exact rules whose path ends in "/". */
  slashExact: Map<string, Route> | undefined;
  /** The host's client-certificate check, and the Ingress (`namespace/name`) that set it. */
  clientCert: { policy: ClientCertPolicy; ingress: string } | undefined;
  /** Rules with Route.regex, in ingress-nginx's location order once the index is frozen. */
  regex: Route[] | undefined;
  /** The same rules by the path as written. */
  regexBySource: Map<string, Route> | undefined;
}

/** The key of a Prefix rule's path (stored without trailing slash): `/aaa` → `/aaa/`; `/` stays `/`. */
function prefixKey(path: string): string {
  return path === '/' ? path : `${path}/`;
}

/** Host → rules, built up while compiling; `*.example.com` rules are kept under `example.com`. */
export class RouteIndex {
  readonly #hosts = new Map<string, PathSet>();
  readonly #wildcards = new Map<string, PathSet>();
  #anyHost: PathSet | undefined;
  #size = 0;
  // One string per distinct key: hosts share paths such as `/` and `/api/`, and a lookup that compares against a
  // shared key reads one hot string instead of one per host.
  readonly #keys = new Map<string, string>();

  #intern(key: string): string {
    const known = this.#keys.get(key);
    if (known !== undefined) return known;
    this.#keys.set(key, key);
    return key;
  }

  /** The route for exactly this host, path and type; undefined when there is none. */
  get(host: string, path: string, pathType: Route['pathType']): Route | undefined {
    const set = this.#set(host, false);
    if (set === undefined) return undefined;
    if (pathType === 'Prefix') return set.get(prefixKey(path));
    return path.endsWith('/') ? set.slashExact?.get(path) : set.get(path);
  }

  /** The regex rule (Route.regex) for exactly this host and path as written; undefined when there is none. */
  getRegex(host: string, source: string): Route | undefined {
    return this.#set(host, false)?.regexBySource?.get(source);
  }

  /** The rules of exactly this host (`*.foo.com` for a wildcard), without falling back; undefined when it has none. */
  hostSet(host: string): PathSet | undefined {
    return host === '' ? undefined : this.#set(host, false);
  }

  /** Adds a route; the caller has checked with get() (getRegex() for a regex rule) that its host and path are free. */
  add(route: Route): void {
    const set = this.#set(route.host, true)!;
    if (route.regex !== undefined) {
      (set.regex ??= []).push(route);
      (set.regexBySource ??= new Map()).set(route.regex.source, route);
    } else if (route.pathType === 'Prefix') {
      const key = this.#intern(prefixKey(route.path));
      set.set(key, route);
      if (key.length > set.maxKey) set.maxKey = key.length;
    } else if (route.path.endsWith('/')) {
      (set.slashExact ??= new Map()).set(this.#intern(route.path), route);
    } else {
      set.set(this.#intern(route.path), route);
    }
    this.#size++;
  }

  /** Freezes every route with its canary and backends; call once, when the index is complete. */
  freeze(): void {
    this.#keys.clear();
    const sets = [...this.#hosts.values(), ...this.#wildcards.values(), ...(this.#anyHost === undefined ? [] : [this.#anyHost])];
    for (const set of sets) {
      for (const route of set.values()) deepFreeze(route);
      for (const route of set.slashExact?.values() ?? []) deepFreeze(route);
      set.regex?.sort((a, b) => (a.regex!.source === b.regex!.source ? 0 : locationBefore(a.regex!.source, b.regex!.source) ? -1 : 1));
      for (const route of set.regex ?? []) deepFreeze(route);
      deepFreeze(set.clientCert);
    }
  }

  /** Number of routes added. */
  get size(): number {
    return this.#size;
  }

  /** The rules without a host (nginx's catch-all server `_`); undefined when there are none. */
  get anyHost(): PathSet | undefined {
    return this.#anyHost;
  }

  /** The rules a request for `host` (lower-case) is matched against: exact host, wildcard, then any host. */
  setFor(host: string): PathSet | undefined {
    const exact = this.#hosts.get(host);
    if (exact !== undefined) return exact;
    const dot = host.indexOf('.');
    // `*.foo.com` covers exactly one label: bar.foo.com, not foo.com and not baz.bar.foo.com.
    const wild = dot > 0 ? this.#wildcards.get(host.slice(dot + 1)) : undefined;
    return wild ?? this.#anyHost;
  }

  #set(host: string, create: boolean): PathSet | undefined {
    if (host === '') {
      if (create) this.#anyHost ??= new PathSet();
      return this.#anyHost;
    }
    const [map, key] = host.startsWith('*.') ? [this.#wildcards, host.slice(2)] : [this.#hosts, host];
    let set = map.get(key);
    if (set === undefined && create) map.set(key, (set = new PathSet()));
    return set;
  }
}

/**
 * The route of `path` within one host's rules: an Exact rule equal to the path, else the Prefix rule with the most
 * path elements in common (`/aaa/bbb` matches `/aaa/bbb`, `/aaa/bbb/` and `/aaa/bbb/ccc`, never `/aaa/bbbxyz`).
 * Costs one lookup per path element at most, none for elements longer than the longest Prefix rule. A host with
 * regex rules: see matchRegex.
 */
export function matchPath(set: PathSet, path: string): Route | undefined {
  const plain = matchPlain(set, path);
  return set.regex === undefined ? plain : matchRegex(set.regex, path, plain);
}

/**
 * The first regex rule, in ingress-nginx's location order, that matches `path` — unless the plain rule found
 * (`plain`) stands before it in that order, where ingress-nginx would write it: `/p/` for a request below Prefix
 * `/p`, `/p` for `/p` itself and for Exact `/p` (at a tie, the plain rule). ingress-nginx, once a host has a regex
 * location, writes each of its locations as a regex and takes the first that matches, the longest written path
 * first; netplane keeps the plain rules' own matching (by path element, case-sensitive) and their place in that order.
 */
function matchRegex(rules: readonly Route[], path: string, plain: Route | undefined): Route | undefined {
  const key = plain === undefined ? undefined : locationKey(plain, path);
  for (const route of rules) {
    const regex = route.regex!;
    if (key !== undefined && !locationBefore(regex.source, key)) return plain;
    if (regexMatches(regex, path)) return route;
  }
  return plain;
}

/** Where ingress-nginx writes the location of plain rule `route` that a request for `path` matches. */
function locationKey(route: Route, path: string): string {
  if (route.pathType === 'Exact' || route.path === '/' || path === route.path) return route.path;
  return `${route.path}/`;
}

/** The plain (not regex) rule of `path`: see matchPath. */
function matchPlain(set: PathSet, path: string): Route | undefined {
  if (set.slashExact !== undefined) {
    const exact = set.slashExact.get(path);
    if (exact !== undefined) return exact;
  }
  // Under the whole path sits an Exact rule (key without trailing "/") or a Prefix rule equal to the path up to
  // its trailing "/" (`/aaa/` for request `/aaa/`); either matches, and no Prefix rule can be longer.
  const whole = set.get(path);
  if (whole !== undefined || path.charCodeAt(0) !== 0x2f) return whole;
  const max = set.maxKey;
  // Request `/aaa` is matched by Prefix `/aaa`, whose key `/aaa/` is not a slice of the path.
  if (path.length < max && path.charCodeAt(path.length - 1) !== 0x2f) {
    const route = set.get(`${path}/`);
    if (route !== undefined) return route;
  }
  // Then every element prefix ending in "/", longest first: `/aaa/bbb/ccc` tries `/aaa/bbb/`, `/aaa/`, `/`.
  for (let i = path.lastIndexOf('/', path.length - 2); i >= 0; i = i === 0 ? -1 : path.lastIndexOf('/', i - 1)) {
    if (i < max) {
      const route = set.get(path.slice(0, i + 1));
      if (route !== undefined) return route;
    }
  }
  return undefined;
}

/** The parts a RouteTable is made of. */
export interface TableParts {
  index: RouteIndex;
  defaultRoute: Route | undefined;
  /** The controller-wide default backend's route (--default-backend-service), matched when nothing else is. */
  fallbackRoute?: Route;
  /** TLS by exact host and by the parent domain of a wildcard (`*.foo.com` → `foo.com`). */
  tlsExact: Map<string, TlsChoice>;
  tlsWildcard: Map<string, TlsChoice>;
  secrets: Set<string>;
  clientCas: Set<string>;
  /** Upstreams by BackendRef.key (see compile.ts addBackend). */
  backends: Map<string, BackendRef>;
  ingresses: Map<string, IngressPolicy>;
  problems: IngressProblem[];
  /** The version of each Ingress compiled (by `namespace/name`), for conflict messages; not kept by the table. */
  versions: Map<string, Ingress>;
  /** The Ingresses something of which is served (a route, a TLS host, a default backend); not kept by the table. */
  contributors: Set<string>;
  /** The Ingresses (`namespace/name`) that use each backend, by BackendRef.key. */
  users: Map<string, Set<string>>;
}

/** A RouteTable over compiled parts; the routes, policies and problems it is given are frozen. */
export class CompiledRouteTable implements RouteTable {
  readonly #index: RouteIndex;
  readonly #defaultRoute: Route | undefined;
  readonly #fallbackRoute: Route | undefined;
  readonly #tlsExact: Map<string, TlsChoice>;
  readonly #tlsWildcard: Map<string, TlsChoice>;
  readonly secrets: ReadonlySet<string>;
  readonly clientCas: ReadonlySet<string>;
  readonly backends: ReadonlyMap<string, BackendRef>;
  readonly backendUsers: ReadonlyMap<string, ReadonlySet<string>>;
  readonly defaultBackend: BackendRef | undefined;
  readonly ingresses: ReadonlyMap<string, IngressPolicy>;
  readonly problems: readonly IngressProblem[];

  constructor(parts: TableParts) {
    parts.index.freeze();
    this.#index = parts.index;
    this.#defaultRoute = deepFreeze(parts.defaultRoute);
    this.#fallbackRoute = deepFreeze(parts.fallbackRoute);
    this.defaultBackend = this.#fallbackRoute?.backend;
    this.#tlsExact = parts.tlsExact;
    this.#tlsWildcard = parts.tlsWildcard;
    this.secrets = parts.secrets;
    this.clientCas = parts.clientCas;
    this.backends = parts.backends;
    this.backendUsers = parts.users;
    this.ingresses = parts.ingresses;
    this.problems = deepFreeze(parts.problems);
  }

  /** Number of host/path rules, default backends not counted. */
  get size(): number {
    return this.#index.size;
  }

  /**
   * The route for a request; `host` is lower-cased here too, since a case slip would pick another host's rules. The
   * default backend of an Ingress without rules stands in only for the catch-all server (a host no rule names, or
   * the rules without a host), as in ingress-nginx: a host with rules of its own that match nothing gets undefined
   * (404), unless an Ingress of that host has a defaultBackend (compiled as that host's `/`). Whatever none of these
   * takes goes to the controller-wide default backend when there is one (--default-backend-service), as ingress-nginx
   * gives every server a root location of upstream-default-backend unless an Ingress sets another.
   */
  match(host: string, path: string): Route | undefined {
    const set = this.#index.setFor(host.toLowerCase());
    if (set === undefined) return this.#defaultRoute ?? this.#fallbackRoute;
    return matchPath(set, path) ?? (set === this.#index.anyHost ? this.#defaultRoute : undefined) ?? this.#fallbackRoute;
  }

  /** The client-certificate check of the rules a request for `host` is matched against (exact host, else wildcard). */
  clientCert(host: string): ClientCertPolicy | undefined {
    return this.#index.setFor(host.toLowerCase())?.clientCert?.policy;
  }

  *tlsHosts(): Iterable<[string, TlsChoice]> {
    yield* this.#tlsExact;
    for (const [parent, choice] of this.#tlsWildcard) yield [`*.${parent}`, choice];
  }

  /** TLS for a host: exact, then the wildcard of its parent domain. */
  tls(host: string): TlsChoice | undefined {
    const h = host.toLowerCase();
    const exact = this.#tlsExact.get(h);
    if (exact !== undefined) return exact;
    const dot = h.indexOf('.');
    return dot > 0 ? this.#tlsWildcard.get(h.slice(dot + 1)) : undefined;
  }
}

/** Freezes an object graph of plain objects and arrays; returns it. */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
