// The object model netplane reads, and the one function that turns raw JSON into it.
import { z } from 'zod';
import { endpointSliceSchema, type EndpointSlice } from './endpointslice.ts';
import { endpointsSchema, endpointsToSlices } from './endpoints.ts';
import { ingressClassSchema, ingressSchema, type Ingress, type IngressClass } from './ingress.ts';
import { namespaceSchema, type Namespace } from './namespace.ts';
import { nodeSchema, type Node } from './node.ts';
import { podSchema, type Pod } from './pod.ts';
import { secretSchema, type Secret } from './secret.ts';
import { configMapSchema, type ConfigMap } from './configmap.ts';
import { serviceSchema, type Service } from './service.ts';

export type { Service, ServicePort } from './service.ts';
export type { EndpointSlice, SliceEndpoint } from './endpointslice.ts';
export type { Ingress, IngressBackend, IngressClass } from './ingress.ts';
export type { Secret } from './secret.ts';
export type { ConfigMap } from './configmap.ts';
export type { Node } from './node.ts';
export type { Namespace } from './namespace.ts';
export type { Pod } from './pod.ts';
export { serviceNameLabel } from './endpointslice.ts';
export { defaultClassAnnotation } from './ingress.ts';
export { zoneLabel } from './node.ts';
export { secretValue } from './secret.ts';

/** The kinds kept in the store, each with its API group/version and whether it lives in a namespace. */
export const kinds = {
  Service: { apiVersion: 'v1', namespaced: true },
  EndpointSlice: { apiVersion: 'discovery.k8s.io/v1', namespaced: true },
  Ingress: { apiVersion: 'networking.k8s.io/v1', namespaced: true },
  IngressClass: { apiVersion: 'networking.k8s.io/v1', namespaced: false },
  Secret: { apiVersion: 'v1', namespaced: true },
  ConfigMap: { apiVersion: 'v1', namespaced: true },
  Node: { apiVersion: 'v1', namespaced: false },
  Namespace: { apiVersion: 'v1', namespaced: false },
  Pod: { apiVersion: 'v1', namespaced: true },
} as const;

/** A kind kept in the store. */
export type Kind = keyof typeof kinds;
/** Every kind, in a fixed order. */
export const allKinds = Object.keys(kinds) as Kind[];

/** The object type of each kind. */
export interface ObjectOf {
  Service: Service;
  EndpointSlice: EndpointSlice;
  Ingress: Ingress;
  IngressClass: IngressClass;
  Secret: Secret;
  ConfigMap: ConfigMap;
  Node: Node;
  Namespace: Namespace;
  Pod: Pod;
}

/** Any stored object, tagged with its kind. */
export type AnyObject = { [K in Kind]: { kind: K; object: ObjectOf[K] } }[Kind];

const schemas: { [K in Kind]: z.ZodType<ObjectOf[K]> } = {
  Service: serviceSchema,
  EndpointSlice: endpointSliceSchema,
  Ingress: ingressSchema,
  IngressClass: ingressClassSchema,
  Secret: secretSchema,
  ConfigMap: configMapSchema,
  Node: nodeSchema,
  Namespace: namespaceSchema,
  Pod: podSchema,
};

/** The store key of an object: `namespace/name`, or `name` for cluster-scoped kinds. */
export function objectKey(kind: Kind, metadata: { name: string; namespace?: string }): string {
  return kinds[kind].namespaced ? `${metadata.namespace}/${metadata.name}` : metadata.name;
}

/** Bad input in one object: names the field path and what is wrong with it. */
export class InvalidObjectError extends Error {
  override readonly name = 'InvalidObjectError';
  readonly code = 'NETPLANE_INVALID_OBJECT';
  constructor(message: string) {
    super(message);
  }
}

function explain(error: z.ZodError): string {
  return error.issues
    .slice(0, 3)
    .map((i) => (i.path.length > 0 ? `${formatPath(i.path)}: ${i.message}` : i.message))
    .join('; ');
}

function formatPath(path: readonly PropertyKey[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`)).join('');
}

function validate<K extends Kind>(kind: K, raw: unknown): ObjectOf[K] {
  const result = schemas[kind].safeParse(raw);
  if (!result.success) throw new InvalidObjectError(`${kind}: ${explain(result.error)}`);
  return result.data;
}

/** How deep Lists may be nested in Lists. */
export const maxListDepth = 8;

/** Every kind: what parseObject reads when not told which kinds are wanted. */
const everyKind: ReadonlySet<Kind> = new Set(allKinds);

/**
 * Validates one raw object (parsed JSON or YAML) and returns what the store keeps of it: zero objects for kinds
 * not in `read` (those netplane does not know, and known ones a component does not read, skipped without being
 * validated), several for a core/v1 Endpoints (converted to slices, when EndpointSlices are read) or a `List`.
 * Throws InvalidObjectError naming the field and the reason; an object without apiVersion and kind is always one.
 * Lists may hold Lists, as kubectl flattens them, up to maxListDepth deep.
 */
export function parseObject(raw: unknown, read: ReadonlySet<Kind> = everyKind, depth = 0): AnyObject[] {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new InvalidObjectError('not an object with apiVersion and kind');
  }
  const { apiVersion, kind } = raw as { apiVersion?: unknown; kind?: unknown };
  if (typeof kind !== 'string' || typeof apiVersion !== 'string') {
    throw new InvalidObjectError('apiVersion and kind must both be set');
  }
  if (kind === 'List' || kind.endsWith('List')) {
    // A typed list (ServiceList) holds only its kind: one this reader does not keep, or a custom resource whose name
    // ends in List (IPAllowList), is skipped as any other kind is, without being read.
    if (kind !== 'List' && !keeps(kind.slice(0, -4), apiVersion, read)) return [];
    const items = (raw as { items?: unknown }).items;
    if (!Array.isArray(items)) throw new InvalidObjectError(`${kind}: items must be a list`);
    // Deeper is no manifest anyone writes; refused before the reason (items[0]: ... per level) grows with it.
    if (depth >= maxListDepth) throw new InvalidObjectError(`${kind}: Lists nested more than ${maxListDepth} deep`);
    return items.flatMap((item, i) => {
      try {
        return parseObject(item, read, depth + 1);
      } catch (e) {
        throw new InvalidObjectError(`items[${i}]: ${(e as Error).message}`);
      }
    });
  }
  if (kind === 'Endpoints' && apiVersion === 'v1') {
    if (!read.has('EndpointSlice')) return [];
    const ep = endpointsSchema.safeParse(raw);
    if (!ep.success) throw new InvalidObjectError(`Endpoints: ${explain(ep.error)}`);
    return endpointsToSlices(ep.data).map((object) => ({ kind: 'EndpointSlice', object }));
  }
  if (kind in kinds && read.has(kind as Kind)) {
    const k = kind as Kind;
    if (kinds[k].apiVersion !== apiVersion) {
      throw new InvalidObjectError(`${kind}: apiVersion "${apiVersion}" is not supported; use "${kinds[k].apiVersion}"`);
    }
    return [{ kind: k, object: validate(k, raw) } as AnyObject];
  }
  // Other kinds (Deployments, and known ones this reader does not keep) may share the directory.
  return [];
}

/** Whether parseObject keeps objects of this kind and apiVersion (core/v1 Endpoints: as EndpointSlices). */
function keeps(kind: string, apiVersion: string, read: ReadonlySet<Kind>): boolean {
  if (kind === 'Endpoints' && apiVersion === 'v1') return read.has('EndpointSlice');
  return kind in kinds && read.has(kind as Kind);
}

/** Validates a raw object of a known kind, as delivered by the API server. Throws InvalidObjectError. */
export function parseKind<K extends Kind>(kind: K, raw: unknown): ObjectOf[K] {
  return validate(kind, raw);
}
