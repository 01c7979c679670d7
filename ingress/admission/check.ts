// The admission webhook's judgement of one Ingress write: the route table is compiled as it would be with the
// Ingress in it (the other Ingresses as the store holds them), and the write is refused when netplane would not
// serve it as written — an annotation value or spec it cannot honour, a snippet, a host and path (or TLS host,
// client-certificate check, canary) another Ingress already holds, or one it would take from another Ingress that
// serves it now (ingress-nginx refuses a host and path defined twice the same way). What does not stop it being
// served comes back as warnings, which kubectl prints: a value replaced by its default, a backend Service that does
// not exist (yet), a canary without its primary, a ConfigMap not read yet, annotations netplane ignores.
// Pure: compileRoutes over the input given.
import type { Ingress } from '../../cluster/model/ingress.ts';
import { classSelector, compileRoutes, type CompileInput } from '../routes/compile.ts';
import { readsNginxName } from '../routes/annotations.ts';
import { ingressKey } from '../routes/spec.ts';
import type { IngressProblem, RouteTable } from '../routes/types.ts';
import { ignoredAnnotations } from '../routes/unhonoured.ts';

/** The answer to one write. */
export interface Verdict {
  allowed: boolean;
  /** Why it is refused (allowed: false). */
  message?: string;
  /** What kubectl prints beside an allowed (or refused) write. */
  warnings: string[];
}

/** What a check needs besides the Ingress: compile's input as the gateway has it now, and the store's view of its objects. */
export interface CheckGround {
  input: CompileInput;
  /** The problems the store's Services and Secrets cause a table (missing backend Services, basic-auth Secrets). */
  objectProblems(table: RouteTable): IngressProblem[];
}

/**
 * Judges `ingress` as it would be written (a create, or an update replacing the version of the same name). Only the
 * Ingresses that name one of its hosts (in rules or TLS, with their www. counterparts; the empty host for rules
 * without one and for default backends) are compiled with it: what one Ingress holds is always a host's (a host and
 * path, a TLS host, a host's client-certificate check, a route's canary, the catch-all), so the others cannot change
 * the verdict, and a check costs what its hosts' Ingresses cost, not the whole table's (which the gateway's event
 * loop would wait for).
 */
export function checkIngress(written: Ingress, ground: CheckGround, now: Date = new Date()): Verdict {
  if (!classSelector(ground.input)(written)) return { allowed: true, warnings: [] };
  // One being created is the newest Ingress (the API server stamps its creation before asking, in any case).
  const ingress = written.metadata.creationTimestamp !== undefined ? written : { ...written, metadata: { ...written.metadata, creationTimestamp: now.toISOString() } };
  const key = ingressKey(ingress);
  const hosts = hostsOf(ingress);
  const input = { ...ground.input, ingresses: ground.input.ingresses.filter((i) => ingressKey(i) === key || sharesHost(hostsOf(i), hosts)) };
  const others = input.ingresses.filter((i) => ingressKey(i) !== key);
  // Its last good version is not what is asked for: judged as written.
  const lastGood = new Map(input.lastGood);
  lastGood.delete(key);
  const { table, served } = compileRoutes({ ...input, ingresses: [...others, ingress], lastGood });
  const own = table.problems.filter((p) => p.ingress === key);
  const refusals = own.filter((p) => !warnsOnly(p) && (p.partly !== true || p.conflict !== undefined)).map((p) => p.reason);
  const warnings = own.filter((p) => p.pending === true).map((p) => `not checked yet: ${p.reason}`);
  warnings.push(...own.filter((p) => p.pending !== true && (p.waitsForPrimary === true || (p.partly === true && p.conflict === undefined))).map((p) => p.reason));
  // What the write would take from Ingresses that hold it now: their problems with it that are new.
  const taken = table.problems.filter((p) => p.ingress !== key && p.conflict === key);
  if (taken.length > 0) {
    const before = new Set(compileRoutes(input).table.problems.map(problemText));
    for (const p of taken) if (!before.has(problemText(p))) refusals.push(`Ingress ${p.ingress} would lose what it serves now: ${p.reason}`);
  }
  if (served.has(key)) {
    warnings.push(...ground.objectProblems(table).filter((p) => p.ingress === key).map((p) => p.reason));
    const { tuning, unknown } = ignoredAnnotations(ingress.metadata.annotations, readsNginxName, { sslPassthrough: input.defaults.sslPassthrough });
    if (tuning.length > 0) warnings.push(`annotations netplane ignores (nginx tuning, or asking for nothing): ${tuning.join(', ')}`);
    if (unknown.length > 0) warnings.push(`annotations netplane does not know (misspelt, retired, or newer than netplane): ${unknown.join(', ')}`);
  }
  if (refusals.length === 0) return { allowed: true, warnings };
  return { allowed: false, message: `netplane would not serve Ingress ${key} as written: ${refusals.join('; ')}`, warnings };
}

/** The host names an Ingress can hold something of (lower-case; '' for rules without a host and default backends). */
function hostsOf(ingress: Ingress): Set<string> {
  const hosts = new Set<string>();
  const add = (host: string) => {
    const h = host.toLowerCase();
    hosts.add(h);
    // from-to-www-redirect takes the other name of each host.
    hosts.add(h.startsWith('www.') ? h.slice(4) : `www.${h}`);
  };
  for (const rule of ingress.spec.rules) add(rule.host ?? '');
  for (const tls of ingress.spec.tls) for (const host of tls.hosts) add(host);
  if (ingress.spec.defaultBackend !== undefined) hosts.add('');
  return hosts;
}

function sharesHost(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  for (const host of a) if (b.has(host)) return true;
  return false;
}

/** A problem that does not make a write wrong: waiting for a ConfigMap to be read, or for a canary's primary. */
const warnsOnly = (p: IngressProblem) => p.pending === true || p.waitsForPrimary === true;

const problemText = (p: IngressProblem) => `${p.ingress}\n${p.reason}`;
