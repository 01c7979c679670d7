// Ingress and IngressClass (networking.k8s.io/v1).
import { z } from 'zod';
import { clusterMeta, creationTimestamp, list, namespacedMetaShape, portNumber, struct } from './meta.ts';

const serviceBackend = struct({
  name: z.string().min(1),
  port: struct({ name: z.string().min(1).optional(), number: portNumber.optional() }).refine(
    (p) => (p.name === undefined) !== (p.number === undefined),
    'must set exactly one of name and number',
  ),
});

const backend = struct({
  service: serviceBackend.optional(),
  resource: struct({ apiGroup: z.string().optional(), kind: z.string(), name: z.string() }).optional(),
}).refine((b) => (b.service === undefined) !== (b.resource === undefined), 'must set exactly one of service and resource');

const path = struct({
  path: z.string().optional(),
  pathType: z.enum(['Exact', 'Prefix', 'ImplementationSpecific'], { error: 'must be Exact, Prefix or ImplementationSpecific' }),
  backend,
});

/**
 * An Ingress: class, default backend, TLS hosts and secrets, and host/path rules. Its creationTimestamp is kept:
 * ingress-nginx settles conflicts between Ingresses by age (absent in manifests that do not write it).
 */
export const ingressSchema = struct({
  metadata: struct({ ...namespacedMetaShape, creationTimestamp: creationTimestamp.optional() }),
  spec: struct({
    ingressClassName: z.string().optional(),
    defaultBackend: backend.optional(),
    tls: list(struct({ hosts: list(z.string()), secretName: z.string().optional() })),
    rules: list(
      struct({
        host: z.string().optional(),
        http: struct({ paths: z.array(path) }).optional(),
      }),
    ),
  }),
});

/** A validated Ingress. */
export type Ingress = z.output<typeof ingressSchema>;
/** The backend of an Ingress path or default backend. */
export type IngressBackend = z.output<typeof backend>;

/** An IngressClass: which controller serves it; the default-class annotation lives in metadata. */
export const ingressClassSchema = struct({
  metadata: clusterMeta,
  spec: struct({ controller: z.string().optional() }).default({}),
});

/** A validated IngressClass. */
export type IngressClass = z.output<typeof ingressClassSchema>;

/** The annotation that makes an IngressClass the default for Ingresses without a class. */
export const defaultClassAnnotation = 'ingressclass.kubernetes.io/is-default-class';
