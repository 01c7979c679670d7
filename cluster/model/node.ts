// Node (core/v1): pod CIDRs, addresses, and the labels and annotations netplane reads.
import { z } from 'zod';
import { cidr, clusterMetaShape, creationTimestamp, list, struct } from './meta.ts';

/** A Node: podCIDRs (filled from podCIDR when only that is set), the keys of its taints, and status addresses. */
export const nodeSchema = struct({
  // Set when the Node is being deleted: kube-proxy's /healthz then says the node is not eligible for load balancers.
  // creationTimestamp: the overlay gives a podCIDR, address or MAC two Nodes claim to the older one, on every node alike.
  metadata: struct({ ...clusterMetaShape, deletionTimestamp: z.string().optional(), creationTimestamp: creationTimestamp.optional() }),
  spec: struct({ podCIDR: cidr.optional(), podCIDRs: list(cidr), unschedulable: z.boolean().default(false), taints: list(struct({ key: z.string(), effect: z.string().optional() })) })
    .default({ podCIDRs: [], unschedulable: false, taints: [] })
    .transform((s) => ({
      podCIDRs: s.podCIDRs.length > 0 ? s.podCIDRs : s.podCIDR ? [s.podCIDR] : [],
      unschedulable: s.unschedulable,
      taints: s.taints.map((t) => t.key),
    })),
  status: struct({ addresses: list(struct({ type: z.string(), address: z.string() })) })
    .nullish()
    .transform((st) => ({ addresses: st?.addresses ?? [] })),
});

/** A validated Node. */
export type Node = z.output<typeof nodeSchema>;

/** The well-known label holding a node's zone. */
export const zoneLabel = 'topology.kubernetes.io/zone';
