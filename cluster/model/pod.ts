// Pod (core/v1): only what DNS's `--pods verified` reads — name, namespace, phase and addresses. Everything else
// (spec, labels, conditions, container statuses) is dropped, so the many status updates of a running Pod that touch
// none of these are no change.
import { z } from 'zod';
import { ipAddress, list, namespacedNameMeta, struct } from './meta.ts';

/** A Pod: its phase ("" while unset) and addresses (`status.podIPs`, else `status.podIP`; none before it has one). */
export const podSchema = struct({
  metadata: namespacedNameMeta,
  status: struct({ phase: z.string().optional(), podIP: ipAddress.optional(), podIPs: list(struct({ ip: ipAddress })) })
    .nullish()
    .transform((st) => ({
      phase: st?.phase ?? '',
      podIPs: st && st.podIPs.length > 0 ? st.podIPs.map((p) => p.ip) : st?.podIP !== undefined ? [st.podIP] : [],
    })),
});

/** A validated Pod. */
export type Pod = z.output<typeof podSchema>;
