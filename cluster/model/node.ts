// Node (core/v1): pod CIDRs, addresses, and the labels and annotations netplane reads.
import { z } from 'zod';
import { cidr, clusterMeta, list } from './meta.ts';

/** A Node: podCIDRs (filled from podCIDR when only that is set) and status addresses. */
export const nodeSchema = z.object({
  metadata: clusterMeta,
  spec: z
    .object({ podCIDR: cidr.optional(), podCIDRs: list(cidr), unschedulable: z.boolean().default(false) })
    .default({ podCIDRs: [], unschedulable: false })
    .transform((s) => ({
      podCIDRs: s.podCIDRs.length > 0 ? s.podCIDRs : s.podCIDR ? [s.podCIDR] : [],
      unschedulable: s.unschedulable,
    })),
  status: z
    .object({ addresses: list(z.object({ type: z.string(), address: z.string() })) })
    .nullish()
    .transform((st) => ({ addresses: st?.addresses ?? [] })),
});

/** A validated Node. */
export type Node = z.output<typeof nodeSchema>;

/** The well-known label holding a node's zone. */
export const zoneLabel = 'topology.kubernetes.io/zone';
