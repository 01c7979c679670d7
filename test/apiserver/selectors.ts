// Label and field selectors as the API server parses them from `labelSelector` and `fieldSelector`.
import type { KubeObject, Resource } from './resources.ts';

/** A selector the server cannot parse; the server answers 400 BadRequest with this message. */
export class SelectorError extends Error {
  override readonly name = 'SelectorError';
  readonly code = 'APISERVER_INVALID_SELECTOR';
}

/** Decides whether an object is selected. */
export type Matcher = (obj: KubeObject) => boolean;

const KEY = String.raw`(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?\/)?[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?`;
const VALUE = String.raw`(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)?`;
const EXISTS = new RegExp(`^(${KEY})$`);
const NOT_EXISTS = new RegExp(`^!\\s*(${KEY})$`);
const EQUALITY = new RegExp(`^(${KEY})\\s*(==|!=|=)\\s*(${VALUE})$`);
const SET = new RegExp(`^(${KEY})\\s+(in|notin)\\s*\\(([^()]*)\\)$`);

/** Splits on commas outside parentheses, so `a in (x,y),b` gives two terms. */
function terms(selector: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < selector.length; i++) {
    const c = selector[i];
    if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === ',' && depth === 0) {
      out.push(selector.slice(start, i));
      start = i + 1;
    }
  }
  out.push(selector.slice(start));
  return out.map((t) => t.trim());
}

/** One label requirement: `a`, `!a`, `a=b`, `a==b`, `a!=b`, `a in (b,c)`, `a notin (b,c)`; throws SelectorError otherwise. */
function labelRequirement(term: string): (labels: Record<string, string>) => boolean {
  let m: RegExpMatchArray | null;
  if ((m = term.match(EXISTS))) {
    const key = m[1]!;
    return (labels) => key in labels;
  }
  if ((m = term.match(NOT_EXISTS))) {
    const key = m[1]!;
    return (labels) => !(key in labels);
  }
  if ((m = term.match(EQUALITY))) {
    const [, key, op, value] = m as unknown as [string, string, string, string];
    // As in Kubernetes, `a!=b` also selects objects without label a.
    return op === '!=' ? (labels) => labels[key] !== value : (labels) => labels[key] === value;
  }
  if ((m = term.match(SET))) {
    const [, key, op, list] = m as unknown as [string, string, string, string];
    const values = new Set(list.split(',').map((v) => v.trim()));
    if ([...values].some((v) => !new RegExp(`^${VALUE}$`).test(v))) throw new SelectorError(`unable to parse requirement: invalid values in ${JSON.stringify(term)}`);
    return op === 'in' ? (labels) => key in labels && values.has(labels[key]!) : (labels) => !values.has(labels[key] ?? '\0');
  }
  throw new SelectorError(`unable to parse requirement: ${JSON.stringify(term)} is not a valid label requirement`);
}

/** Parses a label selector; the empty selector matches everything. Throws SelectorError for a malformed one. */
export function parseLabelSelector(selector: string | undefined): Matcher {
  if (!selector?.trim()) return () => true;
  const requirements = terms(selector).map(labelRequirement);
  return (obj) => {
    const labels = obj.metadata.labels ?? {};
    return requirements.every((r) => r(labels));
  };
}

/** Parses `field=value`, `field==value`, `field!=value` terms; throws SelectorError for bad syntax or an unsupported field. */
export function parseFieldSelector(selector: string | undefined, resource: Resource): Matcher {
  if (!selector?.trim()) return () => true;
  const fields: Record<string, (obj: KubeObject) => string> = {
    'metadata.name': (o) => o.metadata.name,
    'metadata.namespace': (o) => o.metadata.namespace ?? '',
    ...resource.fields,
  };
  const requirements = terms(selector).map((term) => {
    const m = term.match(/^([^=!]+?)\s*(==|!=|=)\s*(.*)$/);
    if (!m) throw new SelectorError(`invalid selector: '${selector}'; can't understand '${term}'`);
    const [, field, op, value] = m as unknown as [string, string, string, string];
    const get = fields[field];
    if (!get) throw new SelectorError(`field label not supported: ${field}`);
    return op === '!=' ? (o: KubeObject) => get(o) !== value : (o: KubeObject) => get(o) === value;
  });
  return (obj) => requirements.every((r) => r(obj));
}
