// Where the connections of a TCP or UDP services entry go: the ready endpoints of its Service port, found as the
// gateway's HTTP backends find theirs (state.ts endpointsOf: by port number or name, at the endpoints' own port, the
// serving terminating ones when none is ready). An ExternalName Service is reached at its external name and target
// port, as ingress-nginx reaches it; the name is looked up at each connect. Pure.
import type { ServiceMap } from '../../cluster/servicemap/index.ts';
import { endpointsOf } from '../state.ts';
import type { Endpoint } from '../upstream/upstreams.ts';
import type { StreamEntry } from './entries.ts';

/** An entry's endpoints now, and why there are none. */
export interface StreamTarget {
  /** `ip` may be a DNS name (ExternalName), resolved at each connect. */
  endpoints: Endpoint[];
  /** Set when `endpoints` is empty: the Service, its port or its endpoints are missing. */
  problem?: string;
}

/** The endpoints of `entry` in `map`; none, with the reason, when the Service, its port or a ready endpoint is missing. */
export function streamTarget(entry: StreamEntry, map: ServiceMap): StreamTarget {
  const { namespace, service, servicePort, protocol } = entry;
  const svc = map.services.get(`${namespace}/${service}`);
  if (svc === undefined) return { endpoints: [], problem: `Service ${namespace}/${service} does not exist` };
  const port = svc.ports.find((p) => p.protocol === protocol && (typeof servicePort === 'number' ? p.port === servicePort : p.portName === servicePort));
  if (port === undefined) {
    return { endpoints: [], problem: `Service ${namespace}/${service} has no ${protocol} port ${typeof servicePort === 'number' ? servicePort : `named ${JSON.stringify(servicePort)}`}` };
  }
  if (svc.type === 'ExternalName') {
    // No EndpointSlice names the port of an ExternalName Service: only a number can be connected to.
    if (typeof port.targetPort !== 'number') return { endpoints: [], problem: `ExternalName Service ${namespace}/${service} names its targetPort (${JSON.stringify(port.targetPort)}); it must be a number` };
    return { endpoints: [{ ip: (svc.externalName ?? '').replace(/\.$/, ''), port: port.targetPort }] };
  }
  const endpoints = endpointsOf(map, { namespace, service, port: servicePort }, false, protocol);
  return endpoints.length > 0 ? { endpoints } : { endpoints, problem: `Service ${namespace}/${service} has no ready endpoint for ${protocol} port ${servicePort}` };
}
