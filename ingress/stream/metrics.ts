// Metrics of the TCP and UDP services (netplane_ingress_stream_*). Labels name the listening port and the entry's
// Service as the ConfigMap says it, so a series per entry: bounded by the ConfigMaps, not by clients.
import { Counter, Gauge, type Registry } from 'prom-client';
import type { StreamProtocol, StreamRefusal } from './entries.ts';

/**
 * What became of a TCP connection or UDP flow (the `result` label): relayed to an endpoint; reset at once because
 * the entry has no endpoint; every endpoint tried refused or timed out; its PROXY protocol header was missing,
 * broken, late or from a peer not allowed; the client left before an endpoint took it; cut by the shutdown.
 */
export type StreamResult = 'relayed' | 'no-endpoint' | 'connect-failed' | 'proxy-protocol' | 'client-gone' | 'shutdown';

const refusals: readonly StreamRefusal[] = ['bad-port', 'bad-value', 'reserved-port', 'cannot-bind'];

/** The labels of a connection's series. */
export interface StreamLabels {
  protocol: StreamProtocol;
  port: number;
  namespace: string;
  service: string;
}

/** The stream metrics, registered once per process. */
export class StreamMetrics {
  readonly connections: Counter<'protocol' | 'port' | 'namespace' | 'service' | 'result'>;
  readonly bytes: Counter<'protocol' | 'port' | 'namespace' | 'service' | 'direction'>;
  readonly dropped: Counter<'port' | 'namespace' | 'service' | 'reason'>;
  readonly refused: Gauge<'protocol' | 'reason'>;
  readonly listeners: Gauge<'protocol'>;
  readonly active: Gauge<'protocol'>;

  constructor(registry: Registry, active: () => Record<StreamProtocol, number>) {
    const registers = [registry];
    this.connections = new Counter({
      name: 'netplane_ingress_stream_connections_total',
      help: 'TCP connections and UDP flows accepted on the TCP and UDP services ports, by what became of them (result: relayed, no-endpoint, connect-failed, proxy-protocol, client-gone, shutdown).',
      labelNames: ['protocol', 'port', 'namespace', 'service', 'result'],
      registers,
    });
    this.bytes = new Counter({
      name: 'netplane_ingress_stream_bytes_total',
      help: 'Bytes relayed over TCP services connections, counted when a connection closes (direction "in": from clients to endpoints, PROXY headers included; "out": back).',
      labelNames: ['protocol', 'port', 'namespace', 'service', 'direction'],
      registers,
    });
    this.dropped = new Counter({
      name: 'netplane_ingress_stream_datagrams_dropped_total',
      help: 'UDP services datagrams dropped, by reason (no_endpoint, endpoint_unreachable, flow_limit, queue_full, send_failed).',
      labelNames: ['port', 'namespace', 'service', 'reason'],
      registers,
    });
    this.refused = new Gauge({
      name: 'netplane_ingress_stream_refused_entries',
      help: 'TCP and UDP services ConfigMap entries not served now, by reason (bad-port, bad-value, reserved-port, cannot-bind).',
      labelNames: ['protocol', 'reason'],
      registers,
    });
    this.listeners = new Gauge({ name: 'netplane_ingress_stream_listeners', help: 'TCP and UDP services ports listened on now.', labelNames: ['protocol'], registers });
    this.active = new Gauge({
      name: 'netplane_ingress_stream_active',
      help: 'TCP services connections and UDP services flows open now.',
      labelNames: ['protocol'],
      registers,
      collect() {
        const now = active();
        this.set({ protocol: 'TCP' }, now.TCP);
        this.set({ protocol: 'UDP' }, now.UDP);
      },
    });
  }

  /** Counts one TCP connection (with its bytes) or UDP flow. */
  counted(l: StreamLabels, result: StreamResult, bytes?: { sent: number; received: number }): void {
    const base = { protocol: l.protocol, port: String(l.port), namespace: l.namespace, service: l.service };
    this.connections.inc({ ...base, result });
    if (bytes === undefined) return;
    if (bytes.sent > 0) this.bytes.inc({ ...base, direction: 'in' }, bytes.sent);
    if (bytes.received > 0) this.bytes.inc({ ...base, direction: 'out' }, bytes.received);
  }

  /** Sets the refused entries gauge from the entries refused now. */
  setRefused(refused: ReadonlyArray<{ protocol: StreamProtocol; reason: StreamRefusal }>): void {
    // Every reason written, 0 included: an alert on the series sees it go back to 0.
    for (const protocol of ['TCP', 'UDP'] as const) for (const reason of refusals) this.refused.set({ protocol, reason }, 0);
    for (const r of refused) this.refused.inc({ protocol: r.protocol, reason: r.reason });
  }
}
