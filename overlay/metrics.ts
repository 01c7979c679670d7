// The overlay's metrics: what is known, what is programmed, what failed, and how long a Node change takes to
// reach the kernel.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

// From 1 ms: a change is normally programmed within a few milliseconds of being seen.
const programmingBuckets = [0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const syncBuckets = [0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048];

/** Every metric the overlay records. */
export interface OverlayMetrics {
  nodes: Gauge<'state'>;
  entries: Gauge<'kind'>;
  /** Entries on the IPv6 device (--ipv6-device). */
  entries6: Gauge<'kind'>;
  programmingErrors: Counter<'kind'>;
  programmingDuration: Histogram;
  syncDuration: Histogram<'full'>;
  lastSync: Gauge;
  /** Manifest files never read (ClusterSource.neverRead): while above 0, entries of nodes not in the view stay. */
  unread: Gauge;
}

/** Registers the overlay's metrics. */
export function registerOverlayMetrics(registry: Registry): OverlayMetrics {
  const registers = [registry];
  return {
    nodes: new Gauge({ name: 'netplane_overlay_nodes', help: 'Nodes in the cluster view, this one included: usable (programmed: for this node its device is up with its addresses, for another its entries are in the kernel), unprogrammed (planned, but not in the kernel: failed or pending), or unusable (left out for a problem, see the log).', labelNames: ['state'], registers }),
    entries: new Gauge({ name: 'netplane_overlay_entries', help: 'Entries programmed, by kind: on the VXLAN device (address, neighbour, fdb, route), and direct routes through the underlay (direct, --direct-routing).', labelNames: ['kind'], registers }),
    entries6: new Gauge({ name: 'netplane_overlay_ipv6_device_entries', help: 'Entries programmed on the IPv6 VXLAN device (--ipv6-device auto), by kind (address, neighbour, fdb, route); 0 while it does not exist.', labelNames: ['kind'], registers }),
    programmingErrors: new Counter({ name: 'netplane_overlay_programming_errors_total', help: 'Kernel operations that failed, by kind (link, address, neighbour, fdb, route, direct, nftables, iptables, read); a full resync follows.', labelNames: ['kind'], registers }),
    programmingDuration: new Histogram({ name: 'netplane_overlay_programming_duration_seconds', help: 'Time from seeing a Node change to its entries being in the kernel, in seconds.', buckets: programmingBuckets, registers }),
    syncDuration: new Histogram({ name: 'netplane_overlay_sync_duration_seconds', help: 'Latency of one sync (full: the kernel re-read), in seconds.', labelNames: ['full'], buckets: syncBuckets, registers }),
    lastSync: new Gauge({ name: 'netplane_overlay_last_sync_timestamp_seconds', help: 'When the overlay was last programmed completely (Unix time).', registers }),
    unread: new Gauge({ name: 'netplane_overlay_unread_sources', help: 'Manifest files rejected since they were first seen (never read): while above 0 the overlay removes no entries of nodes that are not in the view, as they may be the nodes of those files.', registers }),
  };
}
