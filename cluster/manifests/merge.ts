// Pure merge of per-file object sets into one desired set, and the diff that turns one set into the next.
import { isDeepStrictEqual } from 'node:util';
import { objectKey, type AnyObject } from '../model/index.ts';
import type { StoreWrite } from '../store.ts';

/** The desired objects by `kind|key`, each with the file it came from. */
export type Desired = Map<string, { object: AnyObject; file: string }>;

/** One object defined in two files: the first file (in sorted order) wins. */
export interface Conflict {
  id: string;
  kept: string;
  ignored: string;
}

/** Merges files' objects in sorted file order; later duplicates are reported, not applied. */
export function mergeFiles(files: ReadonlyMap<string, readonly AnyObject[]>): { desired: Desired; conflicts: Conflict[] } {
  const desired: Desired = new Map();
  const conflicts: Conflict[] = [];
  for (const file of [...files.keys()].sort()) {
    for (const object of files.get(file)!) {
      const id = `${object.kind}|${objectKey(object.kind, object.object.metadata)}`;
      const prev = desired.get(id);
      if (prev) {
        if (prev.file !== file || !isDeepStrictEqual(prev.object, object)) conflicts.push({ id, kept: prev.file, ignored: file });
        continue;
      }
      desired.set(id, { object, file });
    }
  }
  return { desired, conflicts };
}

/** The store writes that turn `prev` into `next`: puts for new or changed objects, deletes for vanished ones. */
export function diffDesired(prev: Desired, next: Desired): StoreWrite[] {
  const writes: StoreWrite[] = [];
  for (const [id, { object }] of next) {
    const old = prev.get(id);
    if (!old || !isDeepStrictEqual(old.object, object)) writes.push(object);
  }
  for (const [id, { object }] of prev) {
    if (!next.has(id)) writes.push({ kind: object.kind, key: objectKey(object.kind, object.object.metadata), object: undefined });
  }
  return writes;
}
