// Shared pieces of the object model: metadata, addresses, and the helpers every kind's schema uses.
import { z } from 'zod';

/**
 * Drops the null-valued keys of a plain object: the API server decodes a null field as unset (Go's JSON decoder
 * leaves the zero value), so `labels:` or `selector:` with nothing after it is the same as leaving it out.
 */
function dropNullKeys(value: unknown): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  if (!Object.values(value).includes(null)) return value;
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== null));
}

/**
 * An object schema (a Go struct in the API) whose null fields count as unset, so they take their default or stay
 * absent. Maps (`z.record`) are not structs: a null map value decodes to the empty string, as `stringMap` does.
 */
export function struct<S extends z.ZodRawShape>(shape: S) {
  return z.preprocess(dropNullKeys, z.object(shape));
}

/** Labels, annotations, selectors: string to string (a null value is the empty string); anything else is rejected. */
export const stringMap = z.record(z.string(), z.string().nullable().transform((v) => v ?? ''));

/** A map that may be written as null or left out; always an object after parsing. */
export const optionalStringMap = stringMap.nullish().transform((v) => v ?? {});

/** A DNS-1123 label or subdomain as Kubernetes allows for object names. */
const objectName = z
  .string()
  .min(1, 'must not be empty')
  .max(253, 'must be at most 253 characters')
  .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, 'must be lower-case letters, digits, "-" and "." (RFC 1123)');

/** The fields of a namespaced object's metadata, for kinds that read more of it. */
export const namespacedMetaShape = {
  name: objectName,
  namespace: objectName.default('default'),
  labels: optionalStringMap,
  annotations: optionalStringMap,
};

/** Metadata of a namespaced object; a missing namespace means "default", as kubectl does. */
export const namespacedMeta = struct(namespacedMetaShape);

/** metadata.creationTimestamp as the API server writes it (RFC 3339, `2024-01-01T00:00:00Z`). */
export const creationTimestamp = z.iso.datetime({ offset: true, error: 'must be an RFC 3339 time such as "2024-01-01T00:00:00Z"' });

/** Metadata of a namespaced object read for its name and namespace alone (a Pod): labels and annotations dropped. */
export const namespacedNameMeta = struct({ name: objectName, namespace: objectName.default('default') });

/** The fields of a cluster-scoped object's metadata, for kinds that read more of it. */
export const clusterMetaShape = {
  name: objectName,
  labels: optionalStringMap,
  annotations: optionalStringMap,
};

/** Metadata of a cluster-scoped object (Node, IngressClass): a namespace is dropped. */
export const clusterMeta = struct(clusterMetaShape);

/** An IPv4 or IPv6 address in canonical-enough text form. */
export const ipAddress = z.union([z.ipv4(), z.ipv6()], { error: 'must be an IPv4 or IPv6 address' });

/** An IPv4 or IPv6 CIDR such as 10.0.0.0/8 or fd00::/64. */
export const cidr = z.union([z.cidrv4(), z.cidrv6()], { error: 'must be an IPv4 or IPv6 CIDR' });

/** A TCP/UDP/SCTP port number. */
export const portNumber = z.int('must be an integer').min(1, 'must be 1 to 65535').max(65535, 'must be 1 to 65535');

/** The transport protocols a Service or EndpointSlice port may name; TCP when absent. */
export const protocol = z.enum(['TCP', 'UDP', 'SCTP']).default('TCP');
export type Protocol = 'TCP' | 'UDP' | 'SCTP';

/** A list that may be written as null or left out; always an array after parsing. */
export function list<T extends z.ZodType>(item: T) {
  return z
    .array(item)
    .nullish()
    .transform((v) => v ?? []);
}
