// The cap on UDP flows across every Service port of the userspace proxy. Each flow holds a socket, a descriptor and
// an ephemeral port; the per-port cap (--udp-max-flows) alone let many UDP Service ports together hold any number.

/** Why a UDP datagram was dropped (the `reason` label of netplane_proxy_udp_datagrams_dropped_total). */
export const udpDropReasons = ['flow_limit', 'no_endpoint', 'endpoint_unreachable', 'queue_full', 'send_failed'] as const;
export type UdpDropReason = (typeof udpDropReasons)[number];

/** A count of flows open across listeners, with a cap: take() before opening a flow, release() once it is closed. */
export class FlowBudget {
  readonly max: number;
  #open = 0;

  /** `max` flows at most; Infinity for no cap. */
  constructor(max: number) {
    this.max = max;
  }

  /** Flows open now, over every listener sharing this budget. */
  get open(): number {
    return this.#open;
  }

  /** Takes a place for a new flow; false (nothing taken) when the cap is reached. */
  take(): boolean {
    if (this.#open >= this.max) return false;
    this.#open++;
    return true;
  }

  /** Gives back the place of a flow that was closed. */
  release(): void {
    if (this.#open > 0) this.#open--;
  }
}
