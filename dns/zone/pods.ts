// Pods for `--pods verified` (CoreDNS's kubernetes plugin `pods verified`): `a-b-c-d.<ns>.pod.<zone>` answers only
// while a Pod of that namespace has that address. The store holds Pods only in this mode (the dns component asks for
// the kind only then), and the index keeps just their addresses by namespace.
import type { Pod } from '../../cluster/model/index.ts';
import type { Store } from '../../cluster/store.ts';
import type { RecordIndex } from './records.ts';

/**
 * The addresses a Pod answers for: none once it has finished (Succeeded or Failed), when its address may already be
 * another Pod's. (CoreDNS answers for finished Pods too; the Kubernetes source does not even read them.)
 */
export function podAddresses(pod: Pod | undefined): readonly string[] {
  if (pod === undefined || pod.status.phase === 'Succeeded' || pod.status.phase === 'Failed') return [];
  return pod.status.podIPs;
}

const sameAddresses = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((ip, i) => ip === b[i]);

/** Keeps the index's Pod addresses those of the store's Pods, now and on every change; returns a function that stops. */
export function followPods(store: Store, index: RecordIndex): () => void {
  const stop = store.subscribe((changes) => {
    for (const c of changes) {
      if (c.kind !== 'Pod') continue;
      const [before, after] = [podAddresses(c.old), podAddresses(c.object)];
      // Most updates of a running Pod leave its addresses as they were.
      if (c.old !== undefined && c.object !== undefined && c.old.metadata.namespace === c.object.metadata.namespace && sameAddresses(before, after)) continue;
      if (c.old !== undefined) index.countPodIPs(c.old.metadata.namespace, before, -1);
      if (c.object !== undefined) index.countPodIPs(c.object.metadata.namespace, after, 1);
    }
  });
  for (const pod of store.list('Pod')) index.countPodIPs(pod.metadata.namespace, podAddresses(pod), 1);
  return stop;
}
