// One UDP listener of the userspace proxy. Each client address gets a "flow": a socket connected to the endpoint
// picked for it, whose replies are sent back to the client from the Service port. Idle flows are closed; at the
// flow cap the least recently used flow makes room, so a new client is never dropped; at the cap across all ports
// (FlowBudget) the port's own least recently used flow makes room, and a port holding none refuses the client.
// Every datagram dropped is counted by reason, also those a flow held for its connect when it ends before the
// connect completes. (With an IP literal, Node binds and connects a UDP socket on process.nextTick, so the connect
// completes or fails before the next datagram, timer or sync: the flow holds only the datagram that opened it, and
// only a failed bind or connect ends it that early. Counting at the close keeps that true if Node ever defers it.)
// #flows is kept in least-recently-used order (a Map iterates in insertion order; a used flow is moved to the end).
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import type { Target } from '../plan/types.ts';
import type { FlowBudget, UdpDropReason } from './flow-budget.ts';
import type { ListenerSpec } from './listeners.ts';
import { ListenerPicker, targetKey } from './picker.ts';

/** How a UDP listener binds and how long its flows live. */
export interface UdpOptions {
  host: string;
  /** A flow with no datagram either way for this long is closed. */
  idleMs: number;
  /** At most this many flows at once (a bound on sockets held); a new client past it evicts the least recently used flow. */
  maxFlows: number;
  /** Called once per flow evicted to make room for a new client. */
  onEvict?: () => void;
  /** The cap on flows shared with the other UDP listeners; absent: this listener's maxFlows only. */
  budget?: FlowBudget;
  /** Called once per datagram dropped (either way), with why. */
  onDrop?: (reason: UdpDropReason) => void;
  /** Errors of the listening socket after it is open. */
  onError: (err: Error) => void;
  /** Called once per flow opened (a client's first datagram that found an endpoint). */
  onFlow?: () => void;
  /** Bind with SO_REUSEPORT, so that several processes share the port (the kernel spreads clients). */
  reusePort?: boolean;
  /**
   * Answers a flow carries per client datagram, as nginx's proxy_responses: once every datagram of the client is
   * sent and the endpoint has answered `responses` times each, the flow ends (0: once they are sent), and the
   * client's next datagram opens a new one. Absent: a flow ends only when idle.
   */
  responses?: number;
}

interface Flow {
  socket: Socket;
  target: Target;
  targetKey: string;
  clientAddress: string;
  clientPort: number;
  /** When a datagram last passed either way (performance.now() ms: a wall-clock step must not end or keep flows). */
  last: number;
  /** Datagrams received before the flow socket is connected (a few at most). */
  pending: Buffer[] | undefined;
  /** The send callback of datagrams to the endpoint: one function per flow, not one per datagram. */
  sent: (err: Error | null) => void;
  /** Datagrams of the client taken for the endpoint, those whose send has completed, and the endpoint's answers (for `responses`). */
  requests: number;
  forwarded: number;
  answers: number;
}

const maxPending = 64;
/**
 * Bytes a socket may have queued in this process. A send the kernel cannot take at once (its send buffer is full:
 * the path out is slower than what comes in) waits in libuv's queue, which has no bound of its own; past this one a
 * datagram is dropped, as a full kernel queue drops it, instead of piling up in memory.
 */
const maxQueuedBytes = 1 << 20;

/** Whether `socket` can take another datagram: its queue in this process is under maxQueuedBytes (false once closed). */
function canSend(socket: Socket): boolean {
  try {
    return socket.getSendQueueSize() < maxQueuedBytes;
  } catch {
    return false;
  }
}

/**
 * A UDP listener forwarding to the endpoints of one Service port. It is opened only while the port has endpoints
 * (listeners.ts): a bound socket cannot answer ICMP port unreachable, an unbound port gets it from the kernel.
 * Datagrams that find no endpoint meanwhile (the last one just left) are dropped.
 */
export class UdpListener {
  #spec: ListenerSpec;
  #options: UdpOptions;
  readonly #picker: ListenerPicker;
  readonly #socket: Socket;
  readonly #flows = new Map<string, Flow>();
  #sweeper?: NodeJS.Timeout;
  /** The send callback of replies to clients: one function, not one per datagram. */
  readonly #replySent = (err: Error | null) => {
    if (err) this.#drop('send_failed');
  };

  constructor(spec: ListenerSpec, options: UdpOptions) {
    this.#spec = spec;
    this.#options = options;
    this.#picker = new ListenerPicker(spec);
    this.#socket = createSocket({ type: isIPv6(options.host) ? 'udp6' : 'udp4', ...(options.reusePort ? { reusePort: true } : {}) });
    this.#socket.on('message', (msg, rinfo) => this.#receive(msg, rinfo));
  }

  get spec(): ListenerSpec {
    return this.#spec;
  }

  /** Flows open now. */
  get flows(): number {
    return this.#flows.size;
  }

  /** Binds the Service port; rejects with the bind error (EADDRINUSE, EACCES, ...). */
  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      const failed = (err: Error) => reject(err);
      this.#socket.once('error', failed);
      this.#socket.bind({ address: this.#options.host, port: this.#spec.port, exclusive: true }, () => {
        this.#socket.off('error', failed);
        this.#socket.on('error', this.#options.onError);
        resolve();
      });
    });
  }

  /**
   * Takes new endpoints and affinity in place. A flow to an endpoint that no longer serves is closed (kube-proxy
   * clears its conntrack entries too); one to an endpoint still serving but no longer chosen (terminating, or left
   * out by policy or topology) is kept, as the kernel modes keep its conntrack entry, so a client is not moved in the
   * middle of an exchange while its endpoint drains.
   */
  update(spec: ListenerSpec): void {
    this.#spec = spec;
    this.#picker.update(spec);
    const live = new Set([...this.#picker.endpoints, ...(spec.serving ?? [])].map(targetKey));
    for (const [key, flow] of this.#flows) if (!live.has(flow.targetKey)) this.#closeFlow(key, flow, 'no_endpoint');
  }

  /**
   * Takes a new idle time and `responses` in place: open flows end by them from now on (the sweeper runs at the new
   * pace), and a flow the new `responses` already has enough answers for ends at its next datagram or answer.
   */
  configure(changes: Partial<Pick<UdpOptions, 'idleMs' | 'responses'>>): void {
    this.#options = { ...this.#options, ...changes };
    if (this.#sweeper === undefined) return;
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    this.#startSweeper();
  }

  /** Closes the Service port and every flow. */
  async close(): Promise<void> {
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    for (const [key, flow] of this.#flows) this.#closeFlow(key, flow, 'no_endpoint');
    await new Promise<void>((resolve) => {
      try {
        this.#socket.close(() => resolve());
      } catch {
        resolve(); // never bound
      }
    });
  }

  #drop(reason: UdpDropReason, n = 1): void {
    for (let i = 0; i < n; i++) this.#options.onDrop?.(reason);
  }

  #receive(msg: Buffer, rinfo: RemoteInfo): void {
    const key = `${rinfo.address}|${rinfo.port}`;
    let flow = this.#flows.get(key);
    if (flow) this.#touch(key, flow);
    else flow = this.#open(key, rinfo);
    if (!flow) return;
    if (flow.pending) {
      if (flow.pending.length < maxPending) {
        flow.pending.push(msg);
        flow.requests++;
      } else this.#drop('queue_full');
    } else if (canSend(flow.socket)) {
      flow.requests++;
      flow.socket.send(msg, flow.sent);
    } else {
      this.#drop('queue_full');
    }
  }

  /** Marks a flow used now: it moves to the most recently used end. */
  #touch(key: string, flow: Flow): void {
    flow.last = performance.now();
    this.#flows.delete(key);
    this.#flows.set(key, flow);
  }

  /** Closes the least recently used flow to make room for a new one, and counts it. */
  #evictOldest(): void {
    const [oldKey, oldest] = this.#flows.entries().next().value!;
    this.#closeFlow(oldKey, oldest, 'flow_limit');
    this.#options.onEvict?.();
  }

  #open(key: string, rinfo: RemoteInfo): Flow | undefined {
    const target = this.#picker.pick(rinfo.address);
    if (!target) {
      this.#drop('no_endpoint');
      return undefined;
    }
    while (this.#flows.size >= this.#options.maxFlows) this.#evictOldest();
    const budget = this.#options.budget;
    if (budget && !budget.take()) {
      // Every port together holds the most flows allowed: this port gives up its own oldest, or refuses.
      if (this.#flows.size === 0) {
        this.#drop('flow_limit');
        return undefined;
      }
      this.#evictOldest();
      budget.take();
    }
    const socket = createSocket({ type: isIPv6(target.ip) ? 'udp6' : 'udp4' });
    const flow: Flow = {
      socket,
      target,
      targetKey: targetKey(target),
      clientAddress: rinfo.address,
      clientPort: rinfo.port,
      last: performance.now(),
      pending: [],
      sent: (err) => {
        if (err) this.#drop('send_failed');
        flow.forwarded++;
        this.#answered(key, flow);
      },
      requests: 0,
      forwarded: 0,
      answers: 0,
    };
    this.#flows.set(key, flow);
    this.#options.onFlow?.();
    if (!this.#sweeper) this.#startSweeper();
    socket.on('message', (reply) => {
      if (this.#flows.get(key) === flow) this.#touch(key, flow);
      if (canSend(this.#socket)) this.#socket.send(reply, flow.clientPort, flow.clientAddress, this.#replySent);
      else this.#drop('queue_full');
      flow.answers++;
      this.#answered(key, flow);
    });
    // A connected UDP socket reports the endpoint's ICMP port unreachable as ECONNREFUSED (sends have their own
    // callback, so only that comes here): a datagram was refused; end the flow, so the client's next datagram
    // picks again. Before the connect, it is the implicit bind failing (EMFILE): what waited is lost instead.
    socket.on('error', () => {
      if (!flow.pending) this.#drop('endpoint_unreachable');
      this.#closeFlow(key, flow, 'endpoint_unreachable');
    });
    // A failed connect (no route to the endpoint: ENETUNREACH, EACCES) comes to this callback, not as 'error':
    // end the flow (sending on the unconnected socket would throw out of the event loop); what waited is lost.
    const connected = (err?: Error | null): void => {
      if (err) return this.#closeFlow(key, flow, 'endpoint_unreachable');
      // Nothing waits once the flow was closed (counted there), and its socket takes no more sends.
      const pending = flow.pending ?? [];
      flow.pending = undefined;
      for (const m of pending) socket.send(m, flow.sent);
    };
    socket.connect(target.port, target.ip, connected as () => void);
    return flow;
  }

  /** The sweeper runs only while there are flows: a timer per idle port (8 wake-ups a second each at 250 ms) cost 1,000 idle UDP ports 2.7% of a core doing nothing. */
  #startSweeper(): void {
    this.#sweeper = setInterval(() => this.#sweep(), Math.max(10, Math.floor(this.#options.idleMs / 2)));
    this.#sweeper.unref();
  }

  /** With `responses`: ends a flow whose datagrams are all sent and answered as often as `responses` asks (nginx's test at each event). */
  #answered(key: string, flow: Flow): void {
    const n = this.#options.responses;
    if (n === undefined || this.#flows.get(key) !== flow || flow.forwarded < flow.requests || flow.answers < n * flow.requests) return;
    // Nothing is held for the connect any more (every datagram was sent): no drop is counted.
    this.#closeFlow(key, flow, 'no_endpoint');
  }

  /** Ends a flow; datagrams it still held for its connect are counted as dropped for `held`. */
  #closeFlow(key: string, flow: Flow, held: UdpDropReason): void {
    this.#drop(held, flow.pending?.length ?? 0);
    flow.pending = undefined;
    if (this.#flows.get(key) === flow) {
      this.#flows.delete(key);
      this.#options.budget?.release();
    }
    try {
      flow.socket.close();
    } catch {
      // already closed
    }
  }

  #sweep(): void {
    const cutoff = performance.now() - this.#options.idleMs;
    // Least recently used first: stop at the first flow still in use.
    for (const [key, flow] of this.#flows) {
      if (flow.last >= cutoff) break;
      // Still connecting after a whole idle time: the endpoint could not be reached.
      this.#closeFlow(key, flow, 'endpoint_unreachable');
    }
    if (this.#flows.size === 0) {
      clearInterval(this.#sweeper);
      this.#sweeper = undefined;
    }
  }
}
