// netplane dns: CoreDNS's job. Not built yet; see the dns issue.
import { defineComponent } from '../runtime/component.ts';

/** The dns component. */
export const dnsComponent = defineComponent({
  name: 'dns',
  summary: "Answers cluster DNS to the Kubernetes DNS specification and forwards the rest (CoreDNS's job).",
  kinds: ['Service', 'EndpointSlice'],
  // CoreDNS's metrics port.
  defaultAdmin: '127.0.0.1:9153',
  flags: {},
  notBuilt: 'issue 4, dns',
});
