// The proxy's desired state: what every backend (nftables, iptables, userspace) programs. It is a pure function
// of the service map and the proxy's configuration (see plan.ts); backends only render and apply it.

/** An IP family. */
export type Family = 4 | 6;

/** Where a connection is sent: an endpoint's address and port. */
export interface Target {
  ip: string;
  port: number;
  /**
   * False when the endpoint is known to run on another node. Only endpoints that may be local can be reached by
   * themselves through a Service without masquerade (hairpin): a remote pod's traffic to this node's external
   * addresses is masqueraded or short-circuited on its own node.
   */
  local?: boolean;
}

/** What happens to a new connection when a traffic class has no endpoint to use. */
export type NoEndpoints =
  /** The Service has no usable endpoint anywhere: refuse at once (TCP reset, ICMP port unreachable). */
  | 'reject'
  /** A Local traffic policy and no endpoint on this node, but some elsewhere: drop (kube-proxy does the same). */
  | 'drop';

/**
 * One Service port in one IP family. A dual-stack Service port gives two of these. All address lists hold only
 * addresses of `family`.
 */
export interface PortPlan {
  /** `namespace/name:portName/PROTOCOL/v4` (or `/v6`): the service map's port key plus the family. */
  key: string;
  /** The service map's port key (without family), for change tracking and conntrack clean-up. */
  portKey: string;
  namespace: string;
  name: string;
  portName: string;
  family: Family;
  protocol: 'TCP' | 'UDP' | 'SCTP';
  /** The Service port (on cluster IPs, external IPs and load-balancer IPs). */
  port: number;
  /** 0 or 1 cluster IP of this family. */
  clusterIPs: string[];
  /** spec.externalIPs of this family. */
  externalIPs: string[];
  /** status.loadBalancer.ingress IPs (VIP mode) of this family. */
  loadBalancerIPs: string[];
  /**
   * spec.loadBalancerSourceRanges of this family, plus the load-balancer IPs (as /32 or /128) when a range holds
   * this node's address (kube-proxy's allowFromNode); when non-empty, traffic to the load-balancer IPs from other
   * sources is dropped.
   */
  sourceRanges: string[];
  nodePort?: number;
  /**
   * Endpoints for traffic to the cluster IPs: this node's endpoints under internalTrafficPolicy Local, else the
   * same as `shortcutEndpoints`. Empty means `clusterNoEndpoints` applies.
   */
  clusterEndpoints: Target[];
  clusterNoEndpoints: NoEndpoints;
  /**
   * Endpoints for traffic from outside to nodePort, external IPs and load-balancer IPs: the same as
   * `shortcutEndpoints` under the Cluster policy; this node's endpoints under the Local policy. Empty means
   * `externalNoEndpoints`.
   */
  externalEndpoints: Target[];
  externalNoEndpoints: NoEndpoints;
  /**
   * The Cluster policy's endpoints (topology-filtered; neither traffic policy applies): what pods and this node
   * use to reach the external IPs, load-balancer IPs and nodePort under externalTrafficPolicy Local (kube-proxy's
   * short-circuit), also when internalTrafficPolicy is Local. Empty only when the Service has no usable endpoint
   * anywhere: reject.
   */
  shortcutEndpoints: Target[];
  /**
   * Every serving endpoint of the port in this family, on any node and whatever the topology (a superset of the
   * lists above): UDP and SCTP conntrack entries DNATed to one of these are kept, others to the port are deleted.
   */
  servingEndpoints: Target[];
  /** externalTrafficPolicy is Local: external traffic keeps its source address (no masquerade). */
  externalLocal: boolean;
  /** ClientIP affinity timeout in seconds; 0 without affinity. */
  affinitySeconds: number;
  /** Set for LoadBalancer Services with externalTrafficPolicy Local: the port the health check is served on. */
  healthCheckNodePort?: number;
  /** Number of this node's ready endpoints (serving-terminating ones do not count), for the health check. */
  localEndpoints: number;
}

/** A health-check node port: answers 200 when the Service has ready endpoints on this node (and the proxy is healthy), else 503. */
export interface HealthCheckPlan {
  port: number;
  namespace: string;
  name: string;
  localEndpoints: number;
}

/**
 * How traffic from this node's pods ("local" traffic) is told apart, as kube-proxy's --detect-local-mode: local
 * traffic to a cluster IP keeps its source while other traffic is masqueraded, and local traffic to a Local-policy
 * external address or NodePort may use every endpoint (the short-circuit); the node's own traffic is neither.
 */
export type LocalTraffic =
  /** Sources in these CIDRs, by family (ClusterCIDR: --cluster-cidr; NodeCIDR: the Node's spec.podCIDRs); a family without any has no local traffic. */
  | { by: 'cidr'; cidrs: Record<Family, string[]> }
  /** Packets that came in on the interface `name` (BridgeInterface), or with `prefix` on any whose name starts with it (InterfaceNamePrefix). */
  | { by: 'interface'; name: string; prefix: boolean };

/** Everything a backend programs. */
export interface ProxyPlan {
  /** Every Service port the proxy handles, sorted by key. */
  ports: PortPlan[];
  /**
   * Pod network CIDRs (--cluster-cidr) by family: traffic from outside them to a cluster IP is masqueraded (without
   * any, cluster-IP traffic is not); in the kernel modes `localTraffic` says which traffic that is. Traffic to
   * external addresses and NodePorts under the Cluster policy is always masqueraded (its endpoint may be on a third
   * node, whose reply must come back through this one), under the Local policy never from outside; and hairpin
   * traffic always.
   */
  clusterCIDRs: Record<Family, string[]>;
  /**
   * How the kernel modes tell traffic from this node's pods ("local") from other traffic (--detect-local-mode):
   * what `clusterCIDRs` above says of pod traffic holds for local traffic. Set by the planner; absent (a plan made
   * by hand) means by `clusterCIDRs`, as the default ClusterCIDR mode. Read it with plan/local.ts localTrafficOf.
   */
  localTraffic?: LocalTraffic;
  /** --masquerade-all: masquerade every connection to a Service. */
  masqueradeAll: boolean;
  /**
   * Where NodePorts are accepted, by family: CIDRs of local addresses (--nodeport-addresses), or `all` for every
   * local address of the node.
   */
  nodePortAddresses: Record<Family, string[] | 'all'>;
  /** Health-check node ports, sorted by port. */
  healthChecks: HealthCheckPlan[];
}
