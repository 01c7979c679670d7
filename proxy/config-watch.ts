// --config FILE read again while the proxy runs. kube-proxy watches its file and exits when it is written, for its
// Pod to be restarted with the new settings (an fsnotify watch of the file, which a ConfigMap's update, made by
// swapping a symlinked directory, can slip past). netplane reads the file every few seconds and compares what it
// says, merged with the command line as at start, with the settings it runs with: a difference restarts the process
// in place (the same PID; the rules stay programmed and the new run reconciles with them), a file that cannot be
// used is logged once and changes nothing, where kube-proxy would exit and fail to start again.
import type { ComponentContext } from '../runtime/component.ts';
import { changedFlags, Reloader, restartInPlace } from '../runtime/reloader.ts';
import type { Reread } from '../runtime/settings.ts';

/** How often the file is read again. */
export const configCheckMs = 5000;

/** Starts reading the configuration file again; a change restarts the process in place (`restart`, for tests). */
export function watchConfigFile(ctx: ComponentContext, file: string, running: Record<string, unknown>, o: { check?: (next: Record<string, unknown>) => void; everyMs?: number; restart?: () => void } = {}): void {
  const settingsFile = ctx.settingsFile;
  if (settingsFile === undefined) return;
  const reloader = new Reloader({
    every: () => ({ intervalMs: o.everyMs ?? configCheckMs, jitterMs: 0 }),
    fingerprint: settingsFile.fingerprint,
    reread: () => settingsFile.reread(),
    apply: async (read) => {
      const next = (read as Reread).flags;
      // What the next run would refuse at start is refused here, while this one runs.
      o.check?.(next);
      const changed = changedFlags(running, next);
      if (changed.length === 0) {
        ctx.log.info({ file }, `--config ${file} was rewritten; the settings it gives are the ones running`);
        return;
      }
      reloader.stop();
      ctx.log.warn({ file, changed }, `--config ${file} changed (${changed.map((k) => `--${k}`).join(', ')}): netplane proxy restarts in place to apply it, keeping what is programmed`);
      void ctx.shutdown.run(0, o.restart ?? restartInPlace);
    },
    failed: (e) => ctx.log.error({ file, err: e.message }, `--config ${file} changed and cannot be used; netplane proxy keeps running as it started: ${e.message}`),
    applied: () => {},
  });
  reloader.start();
  ctx.shutdown.add('config watch', () => reloader.stop());
}
