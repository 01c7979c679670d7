// core/v1 Endpoints, accepted from manifests and converted to EndpointSlices, as the mirroring controller does.
import { isIP } from 'node:net';
import { z } from 'zod';
import { ipAddress, list, namespacedMeta, portNumber, protocol, struct } from './meta.ts';
import { serviceNameLabel, type EndpointSlice } from './endpointslice.ts';
import { canonicalIP, dns1123LabelError } from './names.ts';

const address = struct({
  // In standard form, as the slices made from EndpointSlices are (one address written two ways is one endpoint).
  ip: ipAddress.transform(canonicalIP),
  // The first label of the address's DNS name: a DNS-1123 label, as the API server's ValidateEndpoints requires.
  hostname: z
    .string()
    .optional()
    .superRefine((h, ctx) => {
      const why = h === undefined ? undefined : dns1123LabelError(h);
      if (why) ctx.addIssue({ code: 'custom', message: why });
    }),
  nodeName: z.string().optional(),
  targetRef: struct({ kind: z.string().optional(), namespace: z.string().optional(), name: z.string().optional() }).nullish(),
});

/** core/v1 Endpoints: subsets of ready and not-ready addresses sharing ports. */
export const endpointsSchema = struct({
  metadata: namespacedMeta,
  subsets: list(
    struct({
      addresses: list(address),
      notReadyAddresses: list(address),
      ports: list(struct({ name: z.string().default(''), port: portNumber, protocol, appProtocol: z.string().optional() })),
    }),
  ),
});

/** Validated core/v1 Endpoints. */
export type Endpoints = z.output<typeof endpointsSchema>;

/** The label value marking slices that netplane made from core/v1 Endpoints. */
export const convertedManagedBy = 'netplane.io/endpoints-conversion';

/**
 * Converts Endpoints to EndpointSlices: one slice per subset and address family, named
 * `<name>-<subset>-<ipv4|ipv6>`, labelled with the Service name. Never fails on validated input.
 */
export function endpointsToSlices(ep: Endpoints): EndpointSlice[] {
  const slices: EndpointSlice[] = [];
  ep.subsets.forEach((subset, i) => {
    for (const family of [4, 6] as const) {
      const rows = [
        ...subset.addresses.map((a) => ({ a, ready: true })),
        ...subset.notReadyAddresses.map((a) => ({ a, ready: false })),
      ].filter((r) => isIP(r.a.ip) === family);
      if (rows.length === 0) continue;
      slices.push({
        metadata: {
          name: `${ep.metadata.name}-${i}-ipv${family}`,
          namespace: ep.metadata.namespace,
          labels: {
            [serviceNameLabel]: ep.metadata.name,
            'endpointslice.kubernetes.io/managed-by': convertedManagedBy,
          },
          annotations: {},
        },
        addressType: family === 4 ? 'IPv4' : 'IPv6',
        endpoints: rows.map(({ a, ready }) => ({
          addresses: [a.ip],
          ready,
          serving: ready,
          terminating: false,
          hostname: a.hostname,
          nodeName: a.nodeName,
          zone: undefined,
          zoneHints: undefined,
          nodeHints: undefined,
          targetRef: a.targetRef?.name
            ? { kind: a.targetRef.kind ?? '', namespace: a.targetRef.namespace ?? '', name: a.targetRef.name }
            : undefined,
        })),
        ports: subset.ports.map((p) => ({ name: p.name, protocol: p.protocol, port: p.port, appProtocol: p.appProtocol })),
      });
    }
  });
  return slices;
}
