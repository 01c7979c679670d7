// TLS passthrough (ingress-nginx --enable-ssl-passthrough with the ssl-passthrough annotation): which TLS server
// names are not terminated here but passed whole, as TCP, to an Ingress's backend, and where to. As in
// ingress-nginx, a name is passed through when the Ingress that has the rule for that host and path `/` asks for
// ssl-passthrough; the connection goes to that rule's backend. Every other connection is terminated as usual.
import type { Endpoint } from '../upstream/upstreams.ts';
import type { BackendRef, RouteTable } from '../routes/types.ts';

/** The ingress-nginx annotation that asks for passthrough. */
export const sslPassthroughAnnotation = 'nginx.ingress.kubernetes.io/ssl-passthrough';

// Go's strconv.ParseBool true words, as ingress-nginx reads the annotation. Other values are refused by
// routes/unhonoured.ts, so such an Ingress is not served at all.
const goTrue: ReadonlySet<string> = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);

/** Where a passed-through name goes. */
export interface PassthroughChoice {
  /** The Ingress, `namespace/name`. */
  ingress: string;
  backend: BackendRef;
}

/**
 * The passthrough choice for a TLS server name (lower-case), or undefined to terminate TLS here: the table's route
 * for the name and path `/` must be a rule for `/` with a host (exact or wildcard, not a rule without host or a
 * default backend), of an Ingress whose annotations ask for ssl-passthrough.
 */
export function passthroughChoice(serverName: string, table: Pick<RouteTable, 'match'>, annotationsOf: (ingress: string) => Readonly<Record<string, string>> | undefined): PassthroughChoice | undefined {
  const route = table.match(serverName, '/');
  if (route === undefined || route.host === '' || route.path !== '/') return undefined;
  const value = annotationsOf(route.ingress)?.[sslPassthroughAnnotation];
  if (value === undefined || !goTrue.has(value.trim())) return undefined;
  return { ingress: route.ingress, backend: route.backend };
}

/** A passthrough choice with the endpoints to try, in order. */
export interface PassthroughTarget extends PassthroughChoice {
  endpoints: Endpoint[];
}

/** What Passthrough reads, each time a connection asks. */
export interface PassthroughSources {
  table: () => Pick<RouteTable, 'match'>;
  /** The annotations of an Ingress (`namespace/name`) as the cluster has it now. */
  annotationsOf: (ingress: string) => Readonly<Record<string, string>> | undefined;
  /**
   * The endpoints of a backend: its Service's ready ones. (The Ingress's other annotations, service-upstream
   * included, are about HTTP and do not apply to a passed-through connection, as in ingress-nginx.)
   */
  endpoints: (backend: BackendRef) => Endpoint[];
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
    const choice = passthroughChoice(serverName, this.#s.table(), this.#s.annotationsOf);
    if (choice === undefined) return undefined;
    const endpoints = this.#s.endpoints(choice.backend);
    const start = this.#next.get(choice.backend.key) ?? 0;
    // Bounded by the backends in use: one entry per backend ever passed through, reset when it has no endpoints.
    if (endpoints.length === 0) this.#next.delete(choice.backend.key);
    else this.#next.set(choice.backend.key, (start + 1) % endpoints.length);
    const from = endpoints.length === 0 ? 0 : start % endpoints.length;
    return { ...choice, endpoints: [...endpoints.slice(from), ...endpoints.slice(0, from)] };
  }
}
