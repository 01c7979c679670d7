// netplane proxy: kube-proxy's job. Not built yet; see the proxy issue.
import { defineComponent } from '../runtime/component.ts';

/** The proxy component. */
export const proxyComponent = defineComponent({
  name: 'proxy',
  summary: "Makes every Service reachable at its virtual IPs on this node (kube-proxy's job): nftables, iptables or userspace.",
  kinds: ['Service', 'EndpointSlice', 'Node'],
  // kube-proxy's metrics port, so scrape configs written for it keep working.
  defaultAdmin: '127.0.0.1:10249',
  flags: {},
  notBuilt: 'issue 3, the proxy',
});
