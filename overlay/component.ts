// netplane overlay: Flannel's VXLAN job. Not built yet; see the overlay issue.
import { defineComponent } from '../runtime/component.ts';

/** The overlay component. */
export const overlayComponent = defineComponent({
  name: 'overlay',
  summary: "Connects the pod networks of all nodes through a VXLAN overlay programmed over netlink (Flannel's VXLAN job).",
  kinds: ['Node'],
  defaultAdmin: '127.0.0.1:10247',
  flags: {},
  notBuilt: 'issue 6, overlay',
});
