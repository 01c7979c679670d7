// For the descriptor-exhaustion scripts run under `prlimit --nofile=N`: takes every descriptor the process has left.
import { closeSync, openSync } from 'node:fs';

/** Opens /dev/null until the process is out of descriptors; returns them, for release() once the scenario is done. */
export function exhaustDescriptors(): number[] {
  const taken: number[] = [];
  for (;;) {
    try {
      taken.push(openSync('/dev/null', 'r'));
    } catch {
      return taken;
    }
  }
}

/** Closes descriptors taken by exhaustDescriptors(). */
export function release(fds: number[]): void {
  for (const fd of fds.splice(0)) closeSync(fd);
}
