// UDP answers to a wildcard listen address leave from the address the query went to.
//
// A UDP socket bound to 0.0.0.0 (or ::) sends its replies from whatever source address the kernel's route to the
// client prefers. On a host with several addresses (a secondary address, a VIP, a node-local address on a dummy
// link) a query to one of the others is answered from the wrong address, and resolvers drop that reply. CoreDNS
// and dnsmasq read the query's destination with IP_PKTINFO; Node's dgram has no ancillary data. So beside the
// wildcard socket, each local address of the family gets a socket of its own on the same port ("pinned"): the
// kernel delivers a datagram to the socket bound to its exact destination before the wildcard one, and that socket
// answers from its own address. Both set SO_REUSEADDR, which lets them share the port. The set follows the
// interfaces' addresses, read again every few seconds; an address new since the last read is served by the
// wildcard socket in the meantime, as before.
import type { NetworkInterfaceInfo } from 'node:os';

/** Local addresses pinned per wildcard listen address at most (a host with kube-proxy's IPVS dummy link holds every ClusterIP). */
export const maxPinned = 64;

/** One wildcard listen address's pinned addresses, as `pinnedAddresses` chooses them. */
export interface PinnedChoice {
  addresses: string[];
  /** Addresses left out because there were more than `limit`. */
  leftOut: number;
}

/**
 * The local addresses to pin for a wildcard listen host: for 0.0.0.0 every IPv4 address of the interfaces, for ::
 * every IPv6 one and every IPv4 one too (a :: socket also receives IPv4). IPv6 link-local addresses are left out:
 * they need a scope, and an answer to one leaves from it anyway; so are 127.0.0.1 and ::1. `ipv4: false` leaves IPv4 out of a :: choice (when
 * 0.0.0.0 on the same port pins them). Sorted, without repeats, at most `limit` (default maxPinned).
 */
export function pinnedAddresses(wildcard: '0.0.0.0' | '::', interfaces: NodeJS.Dict<NetworkInterfaceInfo[]>, options: { limit?: number; ipv4?: boolean } = {}): PinnedChoice {
  const limit = options.limit ?? maxPinned;
  const ipv4 = options.ipv4 ?? true;
  const found = new Set<string>();
  for (const infos of Object.values(interfaces)) {
    for (const info of infos ?? []) {
      if (info.family === 'IPv6' && (wildcard === '0.0.0.0' || /^fe[89ab]/i.test(info.address))) continue;
      if (info.family === 'IPv4' && !ipv4) continue;
      // The wildcard socket answers these from the right address already, and checks its own path by a datagram
      // to them (udp.ts): a pinned socket would take that datagram.
      if (info.address === '127.0.0.1' || info.address === '::1') continue;
      found.add(info.address);
    }
  }
  const all = [...found].sort();
  return { addresses: all.slice(0, limit), leftOut: Math.max(0, all.length - limit) };
}

/** Whether a listen host is a wildcard whose UDP answers need pinned sockets. */
export function isWildcard(host: string): host is '0.0.0.0' | '::' {
  return host === '0.0.0.0' || host === '::';
}

/** A bound pinned socket: closing it releases the address. */
export interface PinnedSocket {
  close(): Promise<void>;
}

/** The part of the server that binds pinned sockets (rejects with the bind error) and reports. */
export interface PinnedHost {
  bind(address: string, port: number): Promise<PinnedSocket>;
  interfaces(): NodeJS.Dict<NetworkInterfaceInfo[]>;
  /** A pinned address could not be bound (it stays served by the wildcard socket), or some were left out. */
  warn(fields: object, msg: string): void;
}

/** The pinned sockets of one wildcard listen address, kept equal to the interfaces' addresses by `refresh()`. */
export class PinnedSet {
  readonly #wildcard: '0.0.0.0' | '::';
  readonly #port: number;
  readonly #host: PinnedHost;
  readonly #sockets = new Map<string, PinnedSocket>();
  /** Addresses whose bind failed, warned about once each until they bind or go away. */
  readonly #failed = new Set<string>();
  #leftOutWarned = false;
  #running: Promise<void> = Promise.resolve();

  readonly #ipv4: boolean;

  /** `ipv4: false`: a :: listen address pins IPv6 addresses only. */
  constructor(wildcard: '0.0.0.0' | '::', port: number, host: PinnedHost, options: { ipv4?: boolean } = {}) {
    this.#wildcard = wildcard;
    this.#port = port;
    this.#host = host;
    this.#ipv4 = options.ipv4 ?? true;
  }

  /** The addresses bound now. */
  get addresses(): string[] {
    return [...this.#sockets.keys()].sort();
  }

  /** Binds the new addresses and closes the gone ones; never rejects (a failed bind is warned about once). */
  refresh(): Promise<void> {
    this.#running = this.#running.then(() => this.#refresh());
    return this.#running;
  }

  /** Closes every pinned socket. */
  async close(): Promise<void> {
    await this.#running;
    await Promise.all([...this.#sockets.values()].map((s) => s.close()));
    this.#sockets.clear();
  }

  async #refresh(): Promise<void> {
    const choice = pinnedAddresses(this.#wildcard, this.#host.interfaces(), { ipv4: this.#ipv4 });
    if (choice.leftOut > 0 && !this.#leftOutWarned) {
      this.#leftOutWarned = true;
      this.#host.warn({ listen: this.#wildcard, pinned: maxPinned, leftOut: choice.leftOut }, 'more local addresses than UDP sockets pinned to them: answers to the others leave from the address the route prefers');
    }
    const want = new Set(choice.addresses);
    for (const [address, socket] of this.#sockets) {
      if (want.has(address)) continue;
      this.#sockets.delete(address);
      await socket.close();
    }
    for (const address of [...this.#failed]) if (!want.has(address)) this.#failed.delete(address);
    for (const address of choice.addresses) {
      if (this.#sockets.has(address)) continue;
      try {
        this.#sockets.set(address, await this.#host.bind(address, this.#port));
        this.#failed.delete(address);
      } catch (e) {
        if (this.#failed.has(address)) continue;
        this.#failed.add(address);
        this.#host.warn({ address, port: this.#port, err: e }, 'cannot bind a UDP socket to this local address: its answers leave from the address the route prefers');
      }
    }
  }
}
