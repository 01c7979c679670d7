// What proxy and dns read about Services: one entry per Service and per Service port, endpoints included.
import type { Protocol } from '../model/meta.ts';

/** One endpoint address of a Service, from the first address of an EndpointSlice endpoint. */
export interface EndpointAddress {
  ip: string;
  family: 4 | 6;
  ready: boolean;
  serving: boolean;
  terminating: boolean;
  hostname?: string;
  nodeName?: string;
  zone?: string;
  /** Zones this endpoint is meant for (topology hints); absent when the slice gives none. */
  zoneHints?: string[];
  /** Nodes this endpoint is meant for; absent when the slice gives none. */
  nodeHints?: string[];
  /** The endpoint runs on the node this map was built for. */
  local: boolean;
  targetRef?: { kind: string; namespace: string; name: string };
}

/** An endpoint of one Service port: an address and the port number the slice gives for that port's name. */
export interface EndpointInfo extends EndpointAddress {
  port: number;
}

/** Service-wide facts that every port of the Service shares. */
export interface ServiceCommon {
  /** `namespace/name`. */
  key: string;
  namespace: string;
  name: string;
  type: 'ClusterIP' | 'NodePort' | 'LoadBalancer' | 'ExternalName';
  /** Cluster IPs, primary family first; empty for headless and ExternalName Services. */
  clusterIPs: string[];
  headless: boolean;
  externalName?: string;
  externalIPs: string[];
  /** Load-balancer ingress IPs whose ipMode is VIP (Proxy-mode IPs are not delivered to the node as such). */
  loadBalancerIPs: string[];
  /** Every load-balancer ingress IP, whatever its ipMode: the addresses DNS names (CoreDNS k8s_external). */
  loadBalancerIngressIPs: string[];
  loadBalancerSourceRanges: string[];
  sessionAffinity: 'None' | 'ClientIP';
  /** Affinity timeout in seconds; 0 without ClientIP affinity. */
  sessionAffinityTimeoutSeconds: number;
  externalTrafficPolicy: 'Cluster' | 'Local';
  internalTrafficPolicy: 'Cluster' | 'Local';
  healthCheckNodePort?: number;
  trafficDistribution?: string;
  /**
   * The `service.kubernetes.io/topology-mode` (or older `topology-aware-hints`) annotation is Auto: the EndpointSlice
   * controller writes hints by its own allocation, or none when it decides not to, and trafficDistribution is ignored.
   */
  topologyAuto?: true;
  publishNotReadyAddresses: boolean;
  /** The `service.kubernetes.io/service-proxy-name` label: set means another proxy owns this Service. */
  proxyName?: string;
}

/** One port of a Service with its endpoints. */
export interface ServicePortInfo {
  /** `namespace/name:portName/PROTOCOL`; portName is empty for an unnamed single port. */
  key: string;
  service: ServiceCommon;
  portName: string;
  protocol: Protocol;
  port: number;
  targetPort: number | string;
  nodePort?: number;
  appProtocol?: string;
  /** Endpoints serving this port, sorted by address then port, one per address and port. */
  endpoints: EndpointInfo[];
}

/** A Service with its ports and every endpoint address behind it (for DNS, which answers without ports). */
export interface ServiceInfo extends ServiceCommon {
  ports: ServicePortInfo[];
  /** Every endpoint address of the Service, one per IP, sorted. */
  addresses: EndpointAddress[];
}

/** What changed since a tracker was last read. */
export interface ServiceMapChanges {
  /** Services (namespace/name) whose entry was added, removed or changed. */
  services: ReadonlySet<string>;
  /** Service ports (ServicePortInfo.key) that were added, removed or changed. */
  ports: ReadonlySet<string>;
  /** For each changed Service, when its first unread change was seen (performance.now() ms, a monotonic clock). */
  since: ReadonlyMap<string, number>;
  /**
   * Services of `since` that are there only because they existed when the tracker was made (the first view), not
   * because they changed since: no change to measure programming latency from (kube-proxy skips changes older than
   * its own start).
   */
  initial: ReadonlySet<string>;
}
