// Keys repeated in a map, found in time linear in the input: in a parsed YAML document, and in JSON text. Parsed
// into a JavaScript object, a repeated key keeps its last value and the others vanish without a word.
import { isMap, isScalar, isSeq, type Document, type Node, type YAMLMap } from 'yaml';

/** A key repeated in one map: the key as the object names it, and the offset of its second occurrence. */
export interface RepeatedKey {
  key: string;
  offset: number;
}

/**
 * The first repeated key (by position) in any map of `doc`, with its offset. Keys are compared as the object built
 * by toJS names them (`1` and `"1"` are the same key there, the later silently winning). Keys that are aliases or
 * collections are not compared, as yaml's own check did not either; Kubernetes objects have neither.
 */
export function repeatedKey(doc: Document.Parsed): RepeatedKey | undefined {
  let first: RepeatedKey | undefined;
  // An explicit stack, not recursion: the depth of a document is the file's to choose.
  const stack: unknown[] = [doc.contents];
  while (stack.length > 0) {
    const node = stack.pop();
    if (isMap(node)) {
      const found = repeatedIn(node as YAMLMap<Node, unknown>);
      if (found && (!first || found.offset < first.offset)) first = found;
      for (const pair of node.items) stack.push(pair.key, pair.value);
    } else if (isSeq(node)) {
      for (const item of node.items) stack.push(item);
    }
  }
  return first;
}

function repeatedIn(map: YAMLMap<Node, unknown>): RepeatedKey | undefined {
  const seen = new Set<string>();
  for (const { key } of map.items) {
    if (!isScalar(key)) continue;
    const value = key.value;
    if (typeof value === 'object' && value !== null) continue;
    const name = value === null ? '' : String(value);
    if (seen.has(name)) return { key: name, offset: key.range?.[0] ?? 0 };
    seen.add(name);
  }
  return undefined;
}

/**
 * The first repeated key (by position) in any object of `text`, which must be one JSON value that JSON.parse
 * accepts (it keeps the last of the repeats). One pass over the characters, each object's keys in a Set.
 */
export function repeatedJsonKey(text: string): RepeatedKey | undefined {
  // One entry per open object (its keys) or array (undefined), innermost last.
  const open: Array<Set<string> | undefined> = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      const start = i;
      let escaped = false;
      for (i++; text.charCodeAt(i) !== QUOTE; i++) {
        if (text.charCodeAt(i) === BACKSLASH) {
          escaped = true;
          i++;
        }
      }
      const keys = open.at(-1);
      if (keys === undefined) continue;
      let j = i + 1;
      while (isJsonSpace(text.charCodeAt(j))) j++;
      // A string in an object is a key when a colon follows it, else a value.
      if (text.charCodeAt(j) !== COLON) continue;
      const key = escaped ? (JSON.parse(text.slice(start, i + 1)) as string) : text.slice(start + 1, i);
      if (keys.has(key)) return { key, offset: start };
      keys.add(key);
    } else if (c === OPEN_BRACE) open.push(new Set());
    else if (c === OPEN_BRACKET) open.push(undefined);
    else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) open.pop();
  }
  return undefined;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

function isJsonSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}
