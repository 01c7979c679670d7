// Forwarding-loop detection after CoreDNS's loop plugin: at start each upstream is asked a random name under a
// private label; when that very name reaches this server, the upstream (directly or through others) forwards back
// to us — resolv.conf's 127.0.0.53 in a pod is the pod's own :53 — and every query through it would go round until
// its budget ran out.
import { randomBytes } from 'node:crypto';

/** The private label loop probes are asked under: `<random>.netplane-loop-check.` */
export const loopCheckLabel = 'netplane-loop-check';
const suffix = `.${loopCheckLabel}`;

/** The probe names this server sent, and what to do when one of them comes back. */
export class LoopDetector {
  #sent = new Map<string, () => void>();

  /** A fresh probe name (lower case, no trailing dot); `onLoop` is called once if this server is asked it. */
  probeName(onLoop: () => void): string {
    const name = `${randomBytes(8).toString('hex')}${suffix}`;
    this.#sent.set(name, onLoop);
    return name;
  }

  /** Whether `lname` is one of our probes come back (its onLoop is then called). Cheap for any other name. */
  heard(lname: string): boolean {
    if (!lname.endsWith(suffix)) return false;
    const onLoop = this.#sent.get(lname);
    if (!onLoop) return false;
    this.#sent.delete(lname);
    onLoop();
    return true;
  }
}
