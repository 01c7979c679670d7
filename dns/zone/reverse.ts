// The reverse zones of --reverse-cidr: which of them a reverse name is at or under, found by its suffixes.
import { reverseZones } from './parse.ts';

/** The reverse zones the cluster's ranges give (CoreDNS's kubernetes plugin serves each as a zone of its own). */
export class ReverseZones {
  readonly #zones: ReadonlySet<string>;

  /** `cidrs` must be valid CIDRs (the flag parser checked them). */
  constructor(cidrs: readonly string[]) {
    this.#zones = new Set(cidrs.flatMap(reverseZones));
  }

  /** The zone `lname` (lower case, no trailing dot) is at or under, if any. */
  zoneOf(lname: string): string | undefined {
    if (this.#zones.size === 0 || !lname.endsWith('.arpa')) return undefined;
    for (let at = 0; at >= 0; at = lname.indexOf('.', at) + 1 || -1) {
      const suffix = at === 0 ? lname : lname.slice(at);
      if (this.#zones.has(suffix)) return suffix;
    }
    return undefined;
  }
}
