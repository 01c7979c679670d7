// Pure parsing of one manifest file's text into model objects, with errors that name the document and reason.
import { Composer, LineCounter, Parser, type CST } from 'yaml';
import { allKinds, parseObject, type AnyObject, type Kind } from '../model/index.ts';
import { repeatedJsonKey, repeatedKey, type RepeatedKey } from './keys.ts';

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
 * How deep YAML collections may nest. yaml composes documents recursively, so the stack would end it somewhere
 * past a thousand levels, at a depth that depends on the thread and on how warm the JIT is; this limit, checked on
 * the parser's tokens without recursion, refuses such a document the same way wherever it is parsed. Kubernetes
 * objects nest a few dozen levels at most.
 */
export const maxYamlDepth = 256;

/**
 * Parses a YAML or JSON file that may hold several documents (`---`) into the objects of the kinds in `read` (the
 * store's kinds; default every kind). Fails on the first document that does not parse, repeats a key in a map,
 * does not resolve (aliases) or, when of a kind in `read`, does not validate; never throws. Empty documents, and
 * documents of other kinds, are skipped: a kind a component does not read (a Pod in the proxy) is never validated,
 * so it cannot cost the file its other objects. Time and memory grow linearly with the text; the parsed YAML
 * (some 70 times the text in memory) is held for one document at a time.
 */
export function parseManifestText(file: string, text: string, read: ReadonlySet<Kind> = everyKind): ParsedFile {
  if (file.endsWith('.json')) {
    const parsed = parseJson(file, text, read);
    if (parsed !== undefined) return parsed;
  }
  const lines = new LineCounter();
  const at = (offset: number) => {
    const { line, col } = lines.linePos(offset);
    return `at line ${line}, column ${col}`;
  };
  // Keys such as "<<" must stay plain data: no merge keys, no custom tags, so nothing in a file is interpreted.
  // yaml's own duplicate check (uniqueKeys) compares each key with every earlier key of its map: quadratic in the
  // size of a map (40,000 keys took a minute), so keys are checked here instead, each map once with a Set.
  const composer = new Composer({ merge: false, uniqueKeys: false });
  const objects: AnyObject[] = [];
  // Documents are composed one at a time as the parser reaches their end, and dropped once converted.
  const docs = composer.compose(depthChecked(new Parser(lines.addNewLine).parse(text), at));
  for (let document = 1; ; document++) {
    try {
      const next = docs.next();
      if (next.done) break;
      const doc = next.value;
      const err = doc.errors[0];
      if (err) return { ok: false, problem: { file, document, reason: oneLine(`${err.message} ${at(err.pos[0])}`) } };
      const repeated = repeatedKey(doc);
      if (repeated) return { ok: false, problem: { file, document, reason: repeatedReason(repeated, at(repeated.offset)) } };
      // toJS throws for an alias to no anchor (`*nope`) and for more alias expansions than this (an alias bomb).
      const raw: unknown = doc.toJS({ maxAliasCount: 100 });
      if (raw === null || raw === undefined) continue;
      for (const object of parseObject(raw, read)) objects.push(object);
    } catch (e) {
      // Thrown while composing a document or converting it.
      return { ok: false, problem: { file, document: e instanceof NestingError ? e.document : document, reason: reasonOf(e) } };
    }
  }
  return { ok: true, objects };
}

/** A document nested deeper than maxYamlDepth: its number (the composer reads ahead, so its own count is behind). */
class NestingError extends Error {
  readonly document: number;
  constructor(document: number, message: string) {
    super(message);
    this.document = document;
  }
}

/** The parser's tokens, passed on; throws NestingError at a document whose collections nest deeper than maxYamlDepth. */
function* depthChecked(tokens: Generator<CST.Token>, at: (offset: number) => string): Generator<CST.Token> {
  let documents = 0;
  for (const token of tokens) {
    if (token.type === 'document') {
      documents++;
      const deep = tooDeep(token);
      if (deep !== undefined) throw new NestingError(documents, `collections nested more than ${maxYamlDepth} deep ${at(deep)}`);
    }
    yield token;
  }
}

/** The offset of the first collection deeper than maxYamlDepth in a document, or undefined; walks without recursion. */
function tooDeep(doc: CST.Document): number | undefined {
  const stack: Array<[CST.Token | null | undefined, number]> = [[doc.value, 0]];
  while (stack.length > 0) {
    const [token, depth] = stack.pop()!;
    if (!token || !('items' in token) || !Array.isArray(token.items)) continue;
    if (depth + 1 > maxYamlDepth) return token.offset;
    for (const item of token.items as Array<{ key?: CST.Token | null; value?: CST.Token }>) {
      stack.push([item.key, depth + 1], [item.value, depth + 1]);
    }
  }
  return undefined;
}

/** Why a map with a repeated key is refused; the key JSON-quoted, cut short when long. */
function repeatedReason({ key }: RepeatedKey, where: string): string {
  const q = JSON.stringify(key);
  return `Map keys must be unique: ${q.length > 60 ? `${q.slice(0, 56)}..."` : q} is repeated ${where}`;
}

/** Where `offset` is in `text`, as yaml says it: "at line 3, column 1". */
function lineColumn(text: string, offset: number): string {
  let line = 1;
  let start = 0;
  for (let nl = text.indexOf('\n'); nl !== -1 && nl < offset; nl = text.indexOf('\n', nl + 1)) {
    line++;
    start = nl + 1;
  }
  return `at line ${line}, column ${offset - start + 1}`;
}

/**
 * A .json file holding one JSON value, read with JSON.parse: about 50x faster than the YAML parser and without its
 * per-node garbage, which matters for clusters of thousands of objects; repeated keys are looked for in one more pass.
 * Undefined when the text is not one JSON value (several documents, comments): the YAML parser then reads it and
 * reports any error with line and column.
 */
function parseJson(file: string, text: string, read: ReadonlySet<Kind>): ParsedFile | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (raw === null) return { ok: true, objects: [] };
  // JSON.parse keeps the last of repeated keys; the YAML path refuses them, and so does this one.
  const repeated = repeatedJsonKey(text);
  if (repeated) return { ok: false, problem: { file, document: 1, reason: repeatedReason(repeated, lineColumn(text, repeated.offset)) } };
  try {
    return { ok: true, objects: parseObject(raw, read) };
  } catch (e) {
    return { ok: false, problem: { file, document: 1, reason: reasonOf(e) } };
  }
}

function oneLine(message: string): string {
  // yaml's messages may carry a source excerpt on further lines; the first line says what and where.
  return message.split('\n')[0]!.trim().replace(/:$/, '');
}

/** One line saying why: the message of what was thrown (deep nesting can throw a RangeError from the stack). */
function reasonOf(e: unknown): string {
  return oneLine(e instanceof Error ? e.message : String(e));
}
