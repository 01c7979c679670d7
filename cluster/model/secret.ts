// Secret (core/v1): data as base64 text, with stringData folded in as the API server does on write.
import { z } from 'zod';
import { namespacedMeta, stringMap, struct } from './meta.ts';

const base64 = z.base64('must be base64');

/** A Secret: its type and base64-encoded data; stringData entries win over data entries of the same key. */
export const secretSchema = struct({
  metadata: namespacedMeta,
  type: z.string().default('Opaque'),
  // A null value in a map decodes to empty bytes, as Go's decoder fills []byte.
  data: z.record(z.string(), base64.nullable().transform((v) => v ?? '')).nullish(),
  stringData: stringMap.nullish(),
}).transform((s) => {
  const data: Record<string, string> = { ...(s.data ?? {}) };
  for (const [k, v] of Object.entries(s.stringData ?? {})) data[k] = Buffer.from(v, 'utf8').toString('base64');
  return { metadata: s.metadata, type: s.type, data };
});

/** A validated Secret. */
export type Secret = z.output<typeof secretSchema>;

/** Decodes one key of a Secret's data; undefined when the key is absent. */
export function secretValue(secret: Secret, key: string): Buffer | undefined {
  const v = secret.data[key];
  return v === undefined ? undefined : Buffer.from(v, 'base64');
}
