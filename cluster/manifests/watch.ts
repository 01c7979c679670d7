// File-system watches of a manifest tree: one plain (non-recursive) watch per directory, re-armed when a directory
// is replaced, and a watch of the top directory's parent for the top directory itself coming and going.
import { watch, type FSWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import type { Logger } from '../../runtime/logger.ts';

/**
 * Keeps one non-recursive watch per directory of a manifest tree and calls `onChange` on any event. Node's recursive
 * watch on Linux goes deaf in a subdirectory after a file there is replaced by rename, and every watch stays on the
 * inode it was made for: a directory deleted and created again, or a new one renamed into place, is watched anew
 * by `sync`. Never throws: a directory that cannot be watched is logged once and left to the periodic rescan.
 */
export class TreeWatch {
  #root: string;
  #onChange: () => void;
  #log: Logger;
  /** Each watched directory with the identity of the inode its watch is on. */
  #dirs = new Map<string, { id: string; watcher: FSWatcher }>();
  #parent?: FSWatcher;
  #warned = new Set<string>();
  #closed = false;

  constructor(root: string, onChange: () => void, log: Logger) {
    this.#root = resolve(root);
    this.#onChange = onChange;
    this.#log = log;
    // The top directory removed, created again, or swapped by rename shows up as an entry of its parent.
    const name = basename(this.#root);
    this.#parent = this.#watch(dirname(this.#root), (file) => {
      if (file === null || file === name) this.#onChange();
    });
  }

  /**
   * Watches exactly these directories (real paths): new ones and replaced ones (another inode at the path) get a
   * fresh watch, the others are closed. A directory is known by inode and birth time, as a directory deleted and
   * made again often gets the same inode number. Resolves to whether any watch was made, after which the caller should
   * look once more, as a file written between its listing and the new watch would otherwise wait for a rescan.
   */
  async sync(dirs: readonly string[]): Promise<boolean> {
    if (this.#closed) return false;
    const wanted = new Set(dirs);
    for (const [dir, w] of this.#dirs) {
      if (wanted.has(dir)) continue;
      w.watcher.close();
      this.#dirs.delete(dir);
    }
    let added = false;
    for (const dir of wanted) {
      const id = await stat(dir).then(
        (s) => `${s.ino}:${s.birthtimeMs}`,
        () => undefined,
      );
      const current = this.#dirs.get(dir);
      if (id === undefined || this.#closed || current?.id === id) continue;
      current?.watcher.close();
      this.#dirs.delete(dir);
      const name = basename(dir);
      const watcher = this.#watch(dir, (file) => {
        // An event about the directory itself (deleted, moved away) carries its own name: its watch is dead, so the
        // next sync makes a new one even where the file system gives no birth time. A child of the same name
        // only costs a new watch.
        const entry = this.#dirs.get(dir);
        if (file === name && entry && entry.watcher === watcher) entry.id = '';
        this.#onChange();
      });
      if (!watcher) continue;
      this.#dirs.set(dir, { id, watcher });
      added = true;
    }
    return added;
  }

  /** Closes every watch. */
  close(): void {
    this.#closed = true;
    this.#parent?.close();
    for (const w of this.#dirs.values()) w.watcher.close();
    this.#dirs.clear();
  }

  #watch(dir: string, onEvent: (file: string | null) => void): FSWatcher | undefined {
    try {
      const w = watch(dir, (_event, file) => onEvent(file));
      w.on('error', (e) => {
        // A failed watch is dropped so that the next sync makes a new one.
        this.#warnOnce(dir, e);
        w.close();
        if (this.#dirs.get(dir)?.watcher === w) this.#dirs.delete(dir);
      });
      return w;
    } catch (e) {
      this.#warnOnce(dir, e);
      return undefined;
    }
  }

  #warnOnce(dir: string, err: unknown): void {
    if (this.#warned.has(dir)) return;
    this.#warned.add(dir);
    this.#log.warn({ dir, err }, `cannot watch ${dir}; its changes are seen by the periodic rescan`);
  }
}
