// Ingress and IngressClass (networking.k8s.io/v1).
import { z } from 'zod';
import { clusterMeta, list, namespacedMeta, portNumber } from './meta.ts';

const serviceBackend = z
  .object({
    name: z.string().min(1),
    port: z
      .object({ name: z.string().min(1).optional(), number: portNumber.optional() })
      .refine((p) => (p.name === undefined) !== (p.number === undefined), 'must set exactly one of name and number'),
  });

const backend = z
  .object({
    service: serviceBackend.optional(),
    resource: z.object({ apiGroup: z.string().optional(), kind: z.string(), name: z.string() }).optional(),
  })
  .refine((b) => (b.service === undefined) !== (b.resource === undefined), 'must set exactly one of service and resource');

const path = z.object({
  path: z.string().optional(),
  pathType: z.enum(['Exact', 'Prefix', 'ImplementationSpecific'], { error: 'must be Exact, Prefix or ImplementationSpecific' }),
  backend,
});

/** An Ingress: class, default backend, TLS hosts and secrets, and host/path rules. */
export const ingressSchema = z.object({
  metadata: namespacedMeta,
  spec: z.object({
    ingressClassName: z.string().optional(),
    defaultBackend: backend.optional(),
    tls: list(z.object({ hosts: list(z.string()), secretName: z.string().optional() })),
    rules: list(
      z.object({
        host: z.string().optional(),
        http: z.object({ paths: z.array(path) }).optional(),
      }),
    ),
  }),
});

/** A validated Ingress. */
export type Ingress = z.output<typeof ingressSchema>;
/** The backend of an Ingress path or default backend. */
export type IngressBackend = z.output<typeof backend>;

/** An IngressClass: which controller serves it; the default-class annotation lives in metadata. */
export const ingressClassSchema = z.object({
  metadata: clusterMeta,
  spec: z.object({ controller: z.string().optional() }).default({}),
});

/** A validated IngressClass. */
export type IngressClass = z.output<typeof ingressClassSchema>;

/** The annotation that makes an IngressClass the default for Ingresses without a class. */
export const defaultClassAnnotation = 'ingressclass.kubernetes.io/is-default-class';
