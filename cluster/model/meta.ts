// Shared pieces of the object model: metadata, addresses, and the helpers every kind's schema uses.
import { z } from 'zod';

/** Labels and annotations: string to string; anything else is rejected. */
export const stringMap = z.record(z.string(), z.string());

/** A DNS-1123 label or subdomain as Kubernetes allows for object names. */
const objectName = z
  .string()
  .min(1, 'must not be empty')
  .max(253, 'must be at most 253 characters')
  .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, 'must be lower-case letters, digits, "-" and "." (RFC 1123)');

/** Metadata of a namespaced object; a missing namespace means "default", as kubectl does. */
export const namespacedMeta = z.object({
  name: objectName,
  namespace: objectName.default('default'),
  labels: stringMap.default({}),
  annotations: stringMap.default({}),
});

/** Metadata of a cluster-scoped object (Node, IngressClass): a namespace is dropped. */
export const clusterMeta = z.object({
  name: objectName,
  labels: stringMap.default({}),
  annotations: stringMap.default({}),
});

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
