// TLS passthrough (ingress-nginx --enable-ssl-passthrough with the ssl-passthrough annotation): which TLS server
// names are not terminated here but passed whole, as TCP, to an Ingress's backend, and where to. As in
// ingress-nginx, a name is passed through when it is one of an Ingress's own rule hosts (not a server-alias name,
// nor the other name of a from-to-www-redirect, which stay on the terminating server) and that Ingress, as the
// table serves it, has the rule for that host and path `/` and asks for ssl-passthrough; the connection goes to
// that rule's backend. Safer than ingress-nginx: the Ingress's source ranges and limit-connections apply to each
// passed-through connection (routes/policy.ts refuses what cannot apply to an unterminated stream: auth, client
// certificates, request rates), and a host whose client certificates another Ingress checks is terminated.
import { addressSetOf } from '../limits/client-ip.ts';
import type { RateLimiter } from '../limits/rate.ts';
import type { Endpoint } from '../upstream/upstreams.ts';
import type { BackendRef, IngressPolicy, RateLimitPolicy, RouteTable } from '../routes/types.ts';

/** Where a passed-through name goes. */
export interface PassthroughChoice {
  /** The Ingress, `namespace/name`. */
  ingress: string;
  backend: BackendRef;
  /** The served Ingress's policy: its source ranges and limit-connections apply to each connection. */
  policy: IngressPolicy;
}

/**
 * The passthrough choice for a TLS server name (lower-case), or undefined to terminate TLS here: the table's route
 * for the name and path `/` must be a rule for `/` with a host (exact or wildcard, not a rule without host or a
 * default backend) that is one of its Ingress's own rule hosts, of a served version asking for ssl-passthrough,
 * and no Ingress may check client certificates for the name (they are asked for only in a handshake netplane makes).
 */
export function passthroughChoice(serverName: string, table: Pick<RouteTable, 'match' | 'clientCert'>): PassthroughChoice | undefined {
  const route = table.match(serverName, '/');
  if (route === undefined || route.host === '' || route.path !== '/') return undefined;
  if (route.policy.sslPassthrough?.hosts.includes(route.host) !== true) return undefined;
  if (table.clientCert(serverName) !== undefined) return undefined;
  return { ingress: route.ingress, backend: route.backend, policy: route.policy };
}

/** Why a passed-through connection was closed before it reached the backend (netplane_ingress_rejected_total). */
export type PassthroughRefusal = 'source-range' | 'connection-limit';

/**
 * Whether `policy` lets client `ip` in: outside its allowlist-source-range or inside its denylist-source-range is
 * refused, as the HTTP path answers 403.
 */
export function sourceAllowed(policy: Pick<IngressPolicy, 'sourceRange'>, ip: string): boolean {
  const p = policy.sourceRange;
  if (p === undefined) return true;
  return (p.allow === undefined || addressSetOf(p.allow).has(ip)) && (p.deny === undefined || !addressSetOf(p.deny).has(ip));
}

/** A passthrough choice with the endpoints to try, in order. */
export interface PassthroughTarget extends PassthroughChoice {
  endpoints: Endpoint[];
}

/** What Passthrough reads, each time a connection asks. */
export interface PassthroughSources {
  /** The served table: the version of each Ingress that is served decides, never one that was refused. */
  table: () => Pick<RouteTable, 'match' | 'clientCert'>;
  /**
   * The endpoints of a backend: its Service's ready ones. (The Ingress's other annotations, service-upstream
   * included, are about HTTP and do not apply to a passed-through connection, as in ingress-nginx.)
   */
  endpoints: (backend: BackendRef) => Endpoint[];
  /** The per-client limiter of an Ingress (the one its HTTP requests use), for limit-connections. */
  limiter: (ingress: string, policy: RateLimitPolicy) => RateLimiter;
}

/** Decides passthrough per server name against the current routes, and spreads each backend's connections round robin. */
export class Passthrough {
  readonly #s: PassthroughSources;
  readonly #next = new Map<string, number>();

  constructor(sources: PassthroughSources) {
    this.#s = sources;
  }

  /** The target for `serverName`, its endpoints starting at the next in turn; undefined: terminate TLS here. */
  target(serverName: string): PassthroughTarget | undefined {
    const choice = passthroughChoice(serverName, this.#s.table());
    if (choice === undefined) return undefined;
    const endpoints = this.#s.endpoints(choice.backend);
    const start = this.#next.get(choice.backend.key) ?? 0;
    // Bounded by the backends in use: one entry per backend ever passed through, reset when it has no endpoints.
    if (endpoints.length === 0) this.#next.delete(choice.backend.key);
    else this.#next.set(choice.backend.key, (start + 1) % endpoints.length);
    const from = endpoints.length === 0 ? 0 : start % endpoints.length;
    return { ...choice, endpoints: [...endpoints.slice(from), ...endpoints.slice(0, from)] };
  }

  /**
   * Lets client `ip` pass through to `target` as its Ingress's source ranges and limit-connections (open passed-through
   * connections per client IP, those in limit-whitelist not counted) allow: a release to call once the connection
   * has closed, or why it is refused.
   */
  admit(target: PassthroughChoice, ip: string): { release: () => void } | { refused: PassthroughRefusal } {
    if (!sourceAllowed(target.policy, ip)) return { refused: 'source-range' };
    const limit = target.policy.rateLimit;
    if (limit?.connections === undefined || (limit.exempt !== undefined && addressSetOf(limit.exempt).has(ip))) return { release: noop };
    const release = this.#s.limiter(target.ingress, limit).acquire(ip);
    return release === undefined ? { refused: 'connection-limit' } : { release };
  }
}

const noop = (): void => {};
