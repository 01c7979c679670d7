// Pure derivation of a Service's entry from its Service object and EndpointSlices.
import { objectKey, type EndpointSlice, type Service } from '../model/index.ts';
import type { EndpointAddress, EndpointInfo, ServiceCommon, ServiceInfo, ServicePortInfo } from './types.ts';

/** The label by which a Service asks to be handled by a different proxy. */
export const serviceProxyNameLabel = 'service.kubernetes.io/service-proxy-name';

/** The key of one Service port. */
export function servicePortKey(serviceKey: string, portName: string, protocol: string): string {
  return `${serviceKey}:${portName}/${protocol}`;
}

/** Builds a Service's entry for a node from the Service and every slice labelled with its name. */
export function buildServiceInfo(svc: Service, slices: Iterable<EndpointSlice>, nodeName: string): ServiceInfo {
  const common = buildCommon(svc);
  const usable = [...slices].filter((s) => s.addressType !== 'FQDN');
  const ports: ServicePortInfo[] = svc.spec.ports.map((p) => ({
    key: servicePortKey(common.key, p.name, p.protocol),
    service: common,
    portName: p.name,
    protocol: p.protocol,
    port: p.port,
    targetPort: p.targetPort,
    ...(p.nodePort !== undefined ? { nodePort: p.nodePort } : {}),
    ...(p.appProtocol !== undefined ? { appProtocol: p.appProtocol } : {}),
    endpoints: portEndpoints(usable, p.name, p.protocol, nodeName),
  }));
  return { ...common, ports, addresses: allAddresses(usable, nodeName) };
}

function buildCommon(svc: Service): ServiceCommon {
  const s = svc.spec;
  const common: ServiceCommon = {
    key: objectKey('Service', svc.metadata),
    namespace: svc.metadata.namespace,
    name: svc.metadata.name,
    type: s.type,
    clusterIPs: s.type === 'ExternalName' ? [] : s.clusterIPs,
    headless: s.headless,
    externalIPs: s.externalIPs,
    loadBalancerIPs: svc.status.loadBalancer.ingress.flatMap((i) => (i.ip && i.ipMode !== 'Proxy' ? [i.ip] : [])),
    loadBalancerIngressIPs: svc.status.loadBalancer.ingress.flatMap((i) => (i.ip ? [i.ip] : [])),
    loadBalancerSourceRanges: s.loadBalancerSourceRanges,
    sessionAffinity: s.sessionAffinity,
    sessionAffinityTimeoutSeconds: s.sessionAffinityTimeoutSeconds,
    externalTrafficPolicy: s.externalTrafficPolicy,
    internalTrafficPolicy: s.internalTrafficPolicy,
    publishNotReadyAddresses: s.publishNotReadyAddresses,
  };
  if (s.externalName !== undefined && s.type === 'ExternalName') common.externalName = s.externalName;
  if (s.healthCheckNodePort !== undefined) common.healthCheckNodePort = s.healthCheckNodePort;
  if (s.trafficDistribution !== undefined) common.trafficDistribution = s.trafficDistribution;
  // As the EndpointSlice controller's hintsEnabled: the older annotation first, then topology-mode; Auto or auto.
  const mode = svc.metadata.annotations['service.kubernetes.io/topology-aware-hints'] ?? svc.metadata.annotations['service.kubernetes.io/topology-mode'];
  if (mode === 'Auto' || mode === 'auto') common.topologyAuto = true;
  const proxyName = svc.metadata.labels[serviceProxyNameLabel];
  if (proxyName !== undefined) common.proxyName = proxyName;
  return common;
}

function address(slice: EndpointSlice, e: EndpointSlice['endpoints'][number], nodeName: string): EndpointAddress {
  // discovery/v1: consumers use the first address; the others are fungible copies.
  const a: EndpointAddress = {
    ip: e.addresses[0]!,
    family: slice.addressType === 'IPv6' ? 6 : 4,
    ready: e.ready,
    serving: e.serving,
    terminating: e.terminating,
    local: e.nodeName !== undefined && e.nodeName === nodeName,
  };
  if (e.hostname !== undefined) a.hostname = e.hostname;
  if (e.nodeName !== undefined) a.nodeName = e.nodeName;
  if (e.zone !== undefined) a.zone = e.zone;
  if (e.zoneHints !== undefined) a.zoneHints = e.zoneHints;
  if (e.nodeHints !== undefined) a.nodeHints = e.nodeHints;
  if (e.targetRef !== undefined) a.targetRef = e.targetRef;
  return a;
}

/** Keeps one entry per id; a ready duplicate replaces one that is not (slices overlap while they are rewritten). */
function dedupe<T extends EndpointAddress>(items: Iterable<[string, T]>): T[] {
  const out = new Map<string, T>();
  for (const [id, item] of items) {
    const prev = out.get(id);
    if (!prev || (!prev.ready && item.ready)) out.set(id, item);
  }
  return [...out.entries()].sort(([a], [b]) => compare(a, b)).map(([, v]) => v);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function* portRows(slices: EndpointSlice[], name: string, protocol: string, nodeName: string): Generator<[string, EndpointInfo]> {
  for (const slice of slices) {
    const port = slice.ports.find((p) => p.name === name && p.protocol === protocol)?.port;
    if (port === undefined) continue;
    for (const e of slice.endpoints) {
      const info: EndpointInfo = { ...address(slice, e, nodeName), port };
      yield [`${info.ip}|${port}`, info];
    }
  }
}

function portEndpoints(slices: EndpointSlice[], name: string, protocol: string, nodeName: string): EndpointInfo[] {
  return dedupe(portRows(slices, name, protocol, nodeName));
}

function allAddresses(slices: EndpointSlice[], nodeName: string): EndpointAddress[] {
  return dedupe(slices.flatMap((s) => s.endpoints.map((e): [string, EndpointAddress] => [e.addresses[0]!, address(s, e, nodeName)])));
}
