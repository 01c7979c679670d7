// Service (core/v1), defaulted the way the API server defaults it, so that manifests and the API give equal objects.
import { z } from 'zod';
import { cidr, ipAddress, list, namespacedMeta, portNumber, protocol, stringMap, struct } from './meta.ts';
import { canonicalIP, dns1035LabelError, dns1123LabelError, dns1123SubdomainError } from './names.ts';

/** An address of the Service (cluster, external, load balancer), IPv6 in its standard form. */
const serviceIP = ipAddress.transform(canonicalIP);

const servicePort = struct({
  name: z.string().default(''),
  protocol,
  port: portNumber,
  targetPort: z.union([portNumber, z.string().min(1)]).optional(),
  nodePort: portNumber.optional(),
  appProtocol: z.string().optional(),
}).transform((p) => ({ ...p, targetPort: p.targetPort ?? p.port }));

const serviceSpec = struct({
  type: z.enum(['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName']).default('ClusterIP'),
  clusterIP: z.union([serviceIP, z.literal('None'), z.literal('')], { error: 'must be an IPv4 or IPv6 address, "None" or empty' }).optional(),
  clusterIPs: list(z.union([serviceIP, z.literal('None')], { error: 'must be an IPv4 or IPv6 address or "None"' })),
  ipFamilies: list(z.enum(['IPv4', 'IPv6'])),
  ports: list(servicePort),
  selector: stringMap.nullish(),
  sessionAffinity: z.enum(['None', 'ClientIP']).default('None'),
  sessionAffinityConfig: struct({
    clientIP: struct({ timeoutSeconds: z.int().min(1).max(86400).optional() }).nullish(),
  }).nullish(),
  externalIPs: list(serviceIP),
  loadBalancerSourceRanges: list(cidr),
  externalTrafficPolicy: z.enum(['Cluster', 'Local']).optional(),
  internalTrafficPolicy: z.enum(['Cluster', 'Local']).optional(),
  healthCheckNodePort: portNumber.optional(),
  externalName: z.string().optional(),
  publishNotReadyAddresses: z.boolean().default(false),
  trafficDistribution: z.string().optional(),
})
  .transform((s) => {
    // The API server fills clusterIPs from clusterIP; "None" marks a headless Service.
    const clusterIPs = s.clusterIPs.length > 0 ? s.clusterIPs : s.clusterIP ? [s.clusterIP] : [];
    const headless = clusterIPs[0] === 'None';
    const ips = headless ? [] : clusterIPs.filter((ip): ip is string => ip !== 'None');
    const clientIPTimeout = s.sessionAffinityConfig?.clientIP?.timeoutSeconds;
    return {
      type: s.type,
      clusterIPs: ips,
      headless,
      ports: s.ports,
      selector: s.selector ?? undefined,
      sessionAffinity: s.sessionAffinity,
      // 10800 s (three hours) is the API server's default for ClientIP affinity.
      sessionAffinityTimeoutSeconds: s.sessionAffinity === 'ClientIP' ? (clientIPTimeout ?? 10800) : 0,
      externalIPs: s.externalIPs,
      loadBalancerSourceRanges: s.loadBalancerSourceRanges,
      externalTrafficPolicy: s.externalTrafficPolicy ?? 'Cluster',
      internalTrafficPolicy: s.internalTrafficPolicy ?? 'Cluster',
      healthCheckNodePort: s.healthCheckNodePort,
      externalName: s.externalName,
      publishNotReadyAddresses: s.publishNotReadyAddresses,
      trafficDistribution: s.trafficDistribution,
    };
  })
  .superRefine((s, ctx) => {
    // The API server checks externalName only for ExternalName Services, with one final dot allowed (fully qualified).
    const cname = s.type === 'ExternalName' ? (s.externalName ?? '').replace(/\.$/, '') : '';
    if (s.type === 'ExternalName' && !cname) {
      ctx.addIssue({ code: 'custom', path: ['externalName'], message: 'is required when type is ExternalName' });
    } else if (cname) {
      const why = dns1123SubdomainError(cname);
      if (why) ctx.addIssue({ code: 'custom', path: ['externalName'], message: why });
    }
    const names = new Set<string>();
    s.ports.forEach((p, i) => {
      if (s.ports.length > 1 && p.name === '') {
        ctx.addIssue({ code: 'custom', path: ['ports', i, 'name'], message: 'is required when a Service has more than one port' });
      }
      // As the API server's validateServicePort: a name is a DNS-1123 label, once per Service whatever the protocol.
      const why = p.name === '' ? undefined : dns1123LabelError(p.name);
      if (why) ctx.addIssue({ code: 'custom', path: ['ports', i, 'name'], message: why });
      if (names.has(p.name)) {
        ctx.addIssue({ code: 'custom', path: ['ports', i, 'name'], message: `duplicates port name "${p.name}"` });
      }
      names.add(p.name);
    });
  });

const loadBalancerIngress = struct({
  ip: serviceIP.optional(),
  hostname: z.string().optional(),
  // "Proxy" means the load balancer does not deliver packets with the VIP as destination.
  ipMode: z.enum(['VIP', 'Proxy']).optional(),
});

/** A Service: metadata, defaulted spec, and the load-balancer ingress from its status. */
export const serviceSchema = struct({
  metadata: namespacedMeta,
  spec: serviceSpec,
  status: struct({ loadBalancer: struct({ ingress: list(loadBalancerIngress) }).nullish() })
    .nullish()
    .transform((st) => ({ loadBalancer: { ingress: st?.loadBalancer?.ingress ?? [] } })),
}).superRefine((s, ctx) => {
  // A Service's name and namespace are labels of its DNS names (the API server's ValidateServiceName and
  // ValidateNamespaceName): longer or other names could not be written in a DNS message.
  const name = dns1035LabelError(s.metadata.name);
  if (name) ctx.addIssue({ code: 'custom', path: ['metadata', 'name'], message: name });
  const namespace = dns1123LabelError(s.metadata.namespace);
  if (namespace) ctx.addIssue({ code: 'custom', path: ['metadata', 'namespace'], message: namespace });
});

/** A validated, defaulted Service. */
export type Service = z.output<typeof serviceSchema>;
/** One port of a Service spec, with targetPort defaulted to port. */
export type ServicePort = Service['spec']['ports'][number];
