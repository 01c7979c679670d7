// Listing a manifest directory: every manifest file under it, each real directory read once (symlinks followed,
// loops cut), and the subdirectories that could not be read, so that their files are not taken for deleted.
import { open, readdir, realpath, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** What one listing of a manifest directory found. */
export interface Listing {
  /** Manifest files (`*.yaml`, `*.yml`, `*.json`), by the path they were reached through, sorted. */
  files: string[];
  /** The real path of every directory read, the top one first. */
  dirs: string[];
  /** Directories reached a second time through a symlink (a loop such as `ln -s . loop`): not read again. */
  repeats: Array<{ path: string; real: string }>;
  /** Subdirectories that exist but could not be read; what was under them is unknown, not gone. */
  unreadable: Array<{ path: string; reason: string }>;
}

const manifestFile = /\.(ya?ml|json)$/i;

/**
 * Lists `dir` recursively, skipping hidden entries (editor swap files, Kubernetes' `..data` links) and following
 * symlinks, each real directory once. Rejects when `dir` itself cannot be read; a subdirectory that cannot be read
 * is reported in `unreadable` instead.
 */
export async function listManifests(dir: string): Promise<Listing> {
  const listing: Listing = { files: [], dirs: [], repeats: [], unreadable: [] };
  const seen = new Set<string>();
  await walk(dir, true, seen, listing);
  listing.files.sort();
  return listing;
}

async function walk(dir: string, top: boolean, seen: Set<string>, out: Listing): Promise<void> {
  let real: string;
  let entries;
  try {
    real = await realpath(dir);
    if (seen.has(real)) {
      out.repeats.push({ path: dir, real });
      return;
    }
    seen.add(real);
    entries = await readdir(dir, { withFileTypes: true });
  } catch (e) {
    if (top) throw e;
    // Removed while being listed: simply gone. Anything else (EACCES, EIO) leaves its files unknown.
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') out.unreadable.push({ path: dir, reason: (e as Error).message });
    return;
  }
  out.dirs.push(real);
  for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    if (entry.name.startsWith('.')) continue;
    const path = join(dir, entry.name);
    let isDir = entry.isDirectory();
    let isFile = entry.isFile();
    if (entry.isSymbolicLink()) {
      const st = await stat(path).catch(() => undefined);
      isDir = st?.isDirectory() ?? false;
      isFile = st?.isFile() ?? false;
    }
    if (isDir) await walk(path, false, seen, out);
    else if (isFile && manifestFile.test(entry.name)) out.files.push(path);
  }
}

/** What readManifest found: the file's identity, and its bytes unless it is over the size limit. */
export interface ManifestRead {
  /** Inode, size and modification time, from the descriptor the text is read through. */
  fingerprint: string;
  /** The size in bytes: at the stat, or what was read past the limit when the file grew while read. */
  size: number;
  /** Absent when the file is the same as `unless` (not read), or larger than the limit (read no further). */
  bytes?: Buffer;
}

/**
 * Reads a manifest file unless its fingerprint is `unless`, and never more than `maxBytes` + 1 bytes: a larger
 * file, or one that grows past the limit while read, gets no bytes. Rejects as `open` and `read` do.
 */
export async function readManifest(path: string, maxBytes: number, unless?: string): Promise<ManifestRead> {
  const fh = await open(path, 'r');
  try {
    const st = await fh.stat();
    const fingerprint = `${st.ino}:${st.size}:${st.mtimeMs}`;
    if (fingerprint === unless || st.size > maxBytes) return { fingerprint, size: st.size };
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of fh.createReadStream({ start: 0, end: maxBytes, autoClose: false }) as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      size += chunk.length;
    }
    if (size > maxBytes) return { fingerprint, size };
    return { fingerprint, size, bytes: Buffer.concat(chunks, size) };
  } finally {
    await fh.close();
  }
}
