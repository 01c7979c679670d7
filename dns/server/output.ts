// Where a response goes: a UDP socket (to the client's address) or a TCP connection.
import type { Allocator } from '../wire/response.ts';

/** The sender of a query: a dgram rinfo serves as it is. */
export interface Client {
  address: string;
  port: number;
  /** "IPv4" or "IPv6". */
  family: string;
}

/** A transport's side of the query path. */
export interface Output extends Allocator {
  readonly transport: 'udp' | 'tcp';
  /** The `proto` slot of the metrics: 0 udp, 1 tcp. */
  readonly proto: 0 | 1;
  /** 2 when responses carry TCP's length prefix, else 0. */
  readonly prefix: 0 | 2;
  /** Whether a response can still be delivered (false once the socket or connection is closed). */
  readonly alive: boolean;
  /** Memory for one response, valid until the next call; `send` it before asking for more. */
  alloc(size: number): Buffer;
  /** Delivers one response to `to`, or null: the query gets none (UDP drops it, TCP closes the connection). */
  send(buf: Buffer | null, to: Client): void;
}
