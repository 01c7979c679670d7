// netplane ingress: the ingress gateway. Not built yet; see the ingress issue.
import { defineComponent } from '../runtime/component.ts';

/** The ingress component. */
export const ingressComponent = defineComponent({
  name: 'ingress',
  summary: 'Serves HTTP(S) at the edge from Ingress objects: host/path routing, TLS, rate limits and auth.',
  kinds: ['Ingress', 'IngressClass', 'Service', 'EndpointSlice', 'Secret'],
  // ingress-nginx's metrics port.
  defaultAdmin: '127.0.0.1:10254',
  flags: {},
  notBuilt: 'issue 5, ingress',
});
