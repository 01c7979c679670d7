// EndpointSlice (discovery.k8s.io/v1), with conditions resolved to booleans the way kube-proxy reads them.
import { z } from 'zod';
import { list, namespacedMeta, portNumber, protocol, struct } from './meta.ts';
import { canonicalIP, dns1123LabelError } from './names.ts';

/** The label that ties an EndpointSlice to its Service. */
export const serviceNameLabel = 'kubernetes.io/service-name';

const endpoint = struct({
  addresses: z.array(z.string().min(1)).min(1, 'must hold at least one address'),
  conditions: struct({
    ready: z.boolean().nullish(),
    serving: z.boolean().nullish(),
    terminating: z.boolean().nullish(),
  }).nullish(),
  hostname: z.string().optional(),
  nodeName: z.string().optional(),
  zone: z.string().optional(),
  hints: struct({
    forZones: list(struct({ name: z.string() })),
    forNodes: list(struct({ name: z.string() })),
  }).nullish(),
  targetRef: struct({ kind: z.string().optional(), namespace: z.string().optional(), name: z.string().optional() }).nullish(),
}).transform((e) => {
  // discovery/v1 EndpointConditions: "A nil value should be interpreted as "true"" for ready and for serving,
  // "false" for terminating; kube-proxy reads `Serving == nil || *Serving`. (Serving deferring to ready was the
  // v1beta1 rule.)
  const ready = e.conditions?.ready ?? true;
  return {
    addresses: e.addresses,
    ready,
    serving: e.conditions?.serving ?? true,
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

const slicePort = struct({
  name: z.string().nullish().transform((v) => v ?? ''),
  protocol,
  // A port left unset means "all ports"; kube-proxy cannot program that and skips it, so do we.
  port: portNumber.nullish().transform((v) => v ?? undefined),
  appProtocol: z.string().optional(),
});

/** An EndpointSlice: one address family, a list of endpoints and the ports they serve. */
export const endpointSliceSchema = struct({
  metadata: namespacedMeta,
  addressType: z.enum(['IPv4', 'IPv6', 'FQDN']),
  endpoints: list(endpoint),
  ports: list(slicePort),
}).superRefine((s, ctx) => {
  // An endpoint's hostname is the first label of its DNS name; the API server refuses the whole slice when one is
  // not a DNS-1123 label (ValidateEndpointSlice), and so do we.
  s.endpoints.forEach((e, i) => {
    const why = e.hostname === undefined ? undefined : dns1123LabelError(e.hostname);
    if (why) ctx.addIssue({ code: 'custom', path: ['endpoints', i, 'hostname'], message: why });
  });
  // Port names: DNS-1123 labels, as ValidateEndpointSlice checks them.
  s.ports.forEach((p, i) => {
    const why = p.name === '' ? undefined : dns1123LabelError(p.name);
    if (why) ctx.addIssue({ code: 'custom', path: ['ports', i, 'name'], message: why });
  });
  if (s.addressType === 'FQDN') return;
  const family = s.addressType === 'IPv4' ? z.ipv4() : z.ipv6();
  s.endpoints.forEach((e, i) => {
    e.addresses.forEach((a, j) => {
      if (!family.safeParse(a).success) {
        ctx.addIssue({ code: 'custom', path: ['endpoints', i, 'addresses', j], message: `"${a}" is not an ${s.addressType} address` });
      } else if (s.addressType === 'IPv6' && /^::ffff:/i.test(canonicalIP(a))) {
        // The API server refuses these (IPv4-mapped IPv6 is not allowed): the endpoint belongs in an IPv4 slice.
        ctx.addIssue({ code: 'custom', path: ['endpoints', i, 'addresses', j], message: `"${a}" is an IPv4-mapped IPv6 address, which an IPv6 slice may not hold` });
      }
    });
  });
}).transform((s) => {
  // One address written two ways (in two slices of one Service) must be one endpoint, not a backend weighted twice.
  if (s.addressType !== 'IPv6') return s;
  return { ...s, endpoints: s.endpoints.map((e) => ({ ...e, addresses: e.addresses.map(canonicalIP) })) };
});

/** A validated EndpointSlice. */
export type EndpointSlice = z.output<typeof endpointSliceSchema>;
/** One endpoint of a slice with ready/serving/terminating resolved. */
export type SliceEndpoint = EndpointSlice['endpoints'][number];
