// Namespace (core/v1): only its metadata. DNS answers pod names only in namespaces that exist, as CoreDNS does.
import type { z } from 'zod';
import { clusterMeta, struct } from './meta.ts';

/** A Namespace: its metadata; spec and status (phase, finalizers) are not read. */
export const namespaceSchema = struct({ metadata: clusterMeta });

/** A validated Namespace. */
export type Namespace = z.output<typeof namespaceSchema>;
