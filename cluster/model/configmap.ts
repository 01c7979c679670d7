// ConfigMap (core/v1): its text data. binaryData is not read (nothing netplane reads a ConfigMap for is binary).
import { namespacedMeta, optionalStringMap, struct } from './meta.ts';
import type { z } from 'zod';

/** A ConfigMap: its `data`, string to string (a null value is the empty string, as the API server stores it). */
export const configMapSchema = struct({
  metadata: namespacedMeta,
  data: optionalStringMap,
}).transform((c) => ({ metadata: c.metadata, data: c.data }));

/** A validated ConfigMap. */
export type ConfigMap = z.output<typeof configMapSchema>;
