// Namespace (core/v1): only its metadata. DNS answers pod names only in namespaces that exist, as CoreDNS does.
import type { z } from 'zod';
import { clusterMeta, struct } from './meta.ts';
import { dns1123LabelError } from './names.ts';

/** A Namespace: its metadata; spec and status (phase, finalizers) are not read. Its name is a DNS-1123 label (ValidateNamespaceName). */
export const namespaceSchema = struct({
  metadata: clusterMeta.superRefine((m, ctx) => {
    const why = dns1123LabelError(m.name);
    if (why) ctx.addIssue({ code: 'custom', path: ['name'], message: why });
  }),
});

/** A validated Namespace. */
export type Namespace = z.output<typeof namespaceSchema>;
