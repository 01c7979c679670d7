// Finds manifest files under a folder and parses them into documents the checks read; parse failures are kept
// as problems rather than thrown, so one bad file is reported next to the others.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import type { Doc, Problem } from './checks.ts';

/** The repository root, whatever the working directory. */
export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

const manifestFile = /\.(ya?ml|json)$/;

/** Manifest files under `dir` (relative to the repository root), recursively and sorted; none if it is missing. */
export function manifestFiles(dir: string): string[] {
  const abs = join(repoRoot, dir);
  if (!existsSync(abs)) return [];
  return readdirSync(abs, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && manifestFile.test(e.name))
    .map((e) => relative(repoRoot, join(e.parentPath, e.name)))
    .sort();
}

/** One file's documents (`raw` as written, `docs` with `List` items spread out) and its parse problems. */
export interface LoadedFile {
  raw: { at: string; body: unknown }[];
  docs: Doc[];
  problems: Problem[];
}

/**
 * Parses every YAML/JSON document in `text` with the options netplane's manifests source uses (no merge keys,
 * unique keys). Errors and warnings both count as problems; empty documents are skipped.
 */
export function parseText(file: string, text: string): LoadedFile {
  const out: LoadedFile = { raw: [], docs: [], problems: [] };
  const parsed = parseAllDocuments(text, { merge: false, uniqueKeys: true, prettyErrors: true });
  if (!Array.isArray(parsed)) return out;
  for (const [i, doc] of parsed.entries()) {
    const at = `${file}#${i + 1}`;
    for (const e of [...doc.errors, ...doc.warnings]) {
      out.problems.push({ rule: 'yaml', at, detail: e.message.split('\n')[0]!.trim() });
    }
    if (doc.errors.length > 0) continue;
    const body: unknown = doc.toJS({ maxAliasCount: 100 });
    if (body === null || body === undefined) continue;
    out.raw.push({ at, body });
    out.docs.push(...spreadLists(file, at, body));
  }
  return out;
}

// kubectl accepts `kind: List` (and `*List`) wrappers; the checks look at the items inside.
function spreadLists(file: string, at: string, body: unknown): Doc[] {
  const record = (typeof body === 'object' && body !== null && !Array.isArray(body) ? body : { value: body }) as Doc['body'];
  const kind = record.kind;
  if (typeof kind === 'string' && kind.endsWith('List') && Array.isArray(record.items)) {
    return record.items.flatMap((item, j) => spreadLists(file, `${at}.items[${j}]`, item));
  }
  return [{ file, at, body: record }];
}

/** Every manifest under `dir`, read and parsed; files are repository-relative paths. */
export function loadTree(dir: string): { files: string[] } & LoadedFile {
  const files = manifestFiles(dir);
  const all: LoadedFile = { raw: [], docs: [], problems: [] };
  for (const file of files) {
    const one = parseText(file, readFileSync(join(repoRoot, file), 'utf8'));
    all.raw.push(...one.raw);
    all.docs.push(...one.docs);
    all.problems.push(...one.problems);
  }
  return { files, ...all };
}
