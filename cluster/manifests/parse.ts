// Pure parsing of one manifest file's text into model objects, with errors that name the document and reason.
import { parseAllDocuments } from 'yaml';
import { allKinds, parseObject, type AnyObject, type Kind } from '../model/index.ts';

/** What went wrong in one file: the 1-based document number (absent for whole-file problems) and why. */
export interface ManifestProblem {
  file: string;
  document?: number;
  reason: string;
}

/** The outcome of parsing one file: every object it holds, or the first problem found. */
export type ParsedFile = { ok: true; objects: AnyObject[] } | { ok: false; problem: ManifestProblem };

const everyKind: ReadonlySet<Kind> = new Set(allKinds);

/**
 * Parses a YAML or JSON file that may hold several documents (`---`) into the objects of the kinds in `read` (the
 * store's kinds; default every kind). Fails on the first document that does not parse, resolve (aliases) or, when
 * of a kind in `read`, validate; never throws. Empty documents, and documents of other kinds, are skipped: a kind a
 * component does not read (a Pod in the proxy) is never validated, so it cannot cost the file its other objects.
 */
export function parseManifestText(file: string, text: string, read: ReadonlySet<Kind> = everyKind): ParsedFile {
  if (file.endsWith('.json')) {
    const parsed = parseJson(file, text, read);
    if (parsed !== undefined) return parsed;
  }
  let docs;
  try {
    // Keys such as "<<" must stay plain data: no merge keys, no custom tags, so nothing in a file is interpreted.
    docs = parseAllDocuments(text, { merge: false, prettyErrors: true, uniqueKeys: true });
  } catch (e) {
    return { ok: false, problem: { file, reason: reasonOf(e) } };
  }
  if (!Array.isArray(docs)) return { ok: true, objects: [] };
  const objects: AnyObject[] = [];
  for (const [i, doc] of docs.entries()) {
    const document = i + 1;
    try {
      const err = doc.errors[0];
      if (err) return { ok: false, problem: { file, document, reason: oneLine(err.message) } };
      // toJS throws for an alias to no anchor (`*nope`) and for more alias expansions than this (an alias bomb).
      const raw: unknown = doc.toJS({ maxAliasCount: 100 });
      if (raw === null || raw === undefined) continue;
      objects.push(...parseObject(raw, read));
    } catch (e) {
      return { ok: false, problem: { file, document, reason: reasonOf(e) } };
    }
  }
  return { ok: true, objects };
}

/**
 * A .json file holding one JSON value, read with JSON.parse: about 50x faster than the YAML parser and without its
 * per-node garbage, which matters for clusters of thousands of objects. Undefined when the text is not one JSON value
 * (several documents, comments): the YAML parser then reads it and reports any error with line and column.
 */
function parseJson(file: string, text: string, read: ReadonlySet<Kind>): ParsedFile | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (raw === null) return { ok: true, objects: [] };
  try {
    return { ok: true, objects: parseObject(raw, read) };
  } catch (e) {
    return { ok: false, problem: { file, document: 1, reason: reasonOf(e) } };
  }
}

function oneLine(message: string): string {
  // yaml's pretty errors append a source excerpt on further lines; the first line carries line and column.
  return message.split('\n')[0]!.trim().replace(/:$/, '');
}

/** One line saying why: the message of what was thrown (deep nesting can throw a RangeError from the stack). */
function reasonOf(e: unknown): string {
  return oneLine(e instanceof Error ? e.message : String(e));
}
