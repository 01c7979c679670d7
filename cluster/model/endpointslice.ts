// EndpointSlice (discovery.k8s.io/v1), with conditions resolved to booleans the way kube-proxy reads them.
import { z } from 'zod';
import { list, namespacedMeta, portNumber, protocol } from './meta.ts';

/** The label that ties an EndpointSlice to its Service. */
export const serviceNameLabel = 'kubernetes.io/service-name';

const endpoint = z
  .object({
    addresses: z.array(z.string().min(1)).min(1, 'must hold at least one address'),
    conditions: z
      .object({
        ready: z.boolean().nullish(),
        serving: z.boolean().nullish(),
        terminating: z.boolean().nullish(),
      })
      .nullish(),
    hostname: z.string().optional(),
    nodeName: z.string().optional(),
    zone: z.string().optional(),
    hints: z
      .object({
        forZones: list(z.object({ name: z.string() })),
        forNodes: list(z.object({ name: z.string() })),
      })
      .nullish(),
    targetRef: z
      .object({ kind: z.string().optional(), namespace: z.string().optional(), name: z.string().optional() })
      .nullish(),
  })
  .transform((e) => {
    // discovery/v1: an unset ready or serving means "unknown" and is read as true; terminating as false.
    const ready = e.conditions?.ready ?? true;
    return {
      addresses: e.addresses,
      ready,
      serving: e.conditions?.serving ?? ready,
      terminating: e.conditions?.terminating ?? false,
      hostname: e.hostname,
      nodeName: e.nodeName,
      zone: e.zone,
      zoneHints: e.hints ? e.hints.forZones.map((z) => z.name) : undefined,
      nodeHints: e.hints ? e.hints.forNodes.map((n) => n.name) : undefined,
      targetRef: e.targetRef?.name
        ? { kind: e.targetRef.kind ?? '', namespace: e.targetRef.namespace ?? '', name: e.targetRef.name }
        : undefined,
    };
  });

const slicePort = z.object({
  name: z.string().nullish().transform((v) => v ?? ''),
  protocol,
  // A port left unset means "all ports"; kube-proxy cannot program that and skips it, so do we.
  port: portNumber.nullish().transform((v) => v ?? undefined),
  appProtocol: z.string().optional(),
});

/** An EndpointSlice: one address family, a list of endpoints and the ports they serve. */
export const endpointSliceSchema = z
  .object({
    metadata: namespacedMeta,
    addressType: z.enum(['IPv4', 'IPv6', 'FQDN']),
    endpoints: list(endpoint),
    ports: list(slicePort),
  })
  .superRefine((s, ctx) => {
    if (s.addressType === 'FQDN') return;
    const family = s.addressType === 'IPv4' ? z.ipv4() : z.ipv6();
    s.endpoints.forEach((e, i) => {
      e.addresses.forEach((a, j) => {
        if (!family.safeParse(a).success) {
          ctx.addIssue({ code: 'custom', path: ['endpoints', i, 'addresses', j], message: `"${a}" is not an ${s.addressType} address` });
        }
      });
    });
  });

/** A validated EndpointSlice. */
export type EndpointSlice = z.output<typeof endpointSliceSchema>;
/** One endpoint of a slice with ready/serving/terminating resolved. */
export type SliceEndpoint = EndpointSlice['endpoints'][number];
