// Benchmark of route matching in the ingress gateway: `table.match(host, path)` must cost the same with 10,000
// Ingress rules as with 10 (target: at most 1.5x). Both tables have the same shape: hosts of 5 paths each (Prefix
// `/api`, `/api/v1`, `/static`, `/appK`, Exact `/login`), 9 exact hosts to 1 wildcard host (`*.wN.example.com`), one
// Ingress per host; 10 rules are 1 exact host and 1 wildcard host, 10,000 rules are 1,800 exact and 200 wildcard
// hosts. Every Ingress is validated with parseObject as the store would, then compiled with compileRoutes.
// The queries are the same mix for both (hosts drawn at random from the table): 65% hits on exact hosts (longest
// prefix, Exact), 10% hits on wildcard hosts, 10% unknown hosts, 15% known hosts with a path that matches nothing
// (`/apix`: Prefix matches whole path elements only; `/login/x`: Exact). Each query's expected route is checked once
// before timing. Two controls separate the matcher's own cost from the memory cost of many hosts: the 10,000-rule
// table queried on 2 hosts only, and a floor (two Map.get calls per query, no prefix walk) over both query streams.
// Rounds rotate the order; the median ns per match is reported, with the compile time of 10,000 rules.
// Usage: npx node bench/ingress/routes.ts [--json] [--rounds 7] [--queries 200000] [--rules 10000]
import { parseObject, type Ingress, type IngressClass } from '../../cluster/model/index.ts';
import { compileRoutes } from '../../ingress/routes/compile.ts';
import type { Route, RouteTable } from '../../ingress/routes/types.ts';
import { benchArgs } from '../cli.ts';

const { args, opt, asJSON, log } = benchArgs();
const rounds = Number(opt('rounds', '7'));
const queryCount = Number(opt('queries', '200000'));
const bigRules = Number(opt('rules', '10000'));
const pathsPerHost = 5;

/** A deterministic generator (mulberry32), so both runs and both tables see the same kind of stream. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Shape {
  exact: string[];
  /** Wildcard hosts as written, `*.wN.example.com`. */
  wildcard: string[];
}

const hostPaths = (i: number) => [
  { path: '/api', pathType: 'Prefix' },
  { path: '/api/v1', pathType: 'Prefix' },
  { path: '/static', pathType: 'Prefix' },
  { path: `/app${i % 7}`, pathType: 'Prefix' },
  { path: '/login', pathType: 'Exact' },
];

/** `rules` rules as raw Ingress objects (one per host), validated with parseObject. */
function ingresses(rules: number): { shape: Shape; objects: Ingress[] } {
  const hosts = Math.max(2, Math.round(rules / pathsPerHost));
  const wildcards = Math.max(1, Math.round(hosts / 10));
  const shape: Shape = { exact: [], wildcard: [] };
  const objects: Ingress[] = [];
  for (let i = 0; i < hosts; i++) {
    const wild = i < wildcards;
    const host = wild ? `*.w${i}.example.com` : `h${i}.example.com`;
    (wild ? shape.wildcard : shape.exact).push(host);
    const raw = {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'Ingress',
      metadata: { name: `ing-${i}`, namespace: `ns${i % 50}` },
      spec: {
        ingressClassName: 'netplane',
        rules: [
          {
            host,
            http: {
              paths: hostPaths(i).map((p, k) => ({ ...p, backend: { service: { name: `svc-${i}-${k}`, port: { number: 80 } } } })),
            },
          },
        ],
      },
    };
    const [parsed] = parseObject(raw);
    if (parsed?.kind !== 'Ingress') throw new Error(`parseObject did not return an Ingress for ${host}`);
    objects.push(parsed.object);
  }
  return { shape, objects };
}

const classes: IngressClass[] = parseObject({
  apiVersion: 'networking.k8s.io/v1',
  kind: 'IngressClass',
  metadata: { name: 'netplane', annotations: { 'ingressclass.kubernetes.io/is-default-class': 'true' } },
  spec: { controller: 'netplane.io/ingress' },
}).map((o) => o.object as IngressClass);

function compile(objects: Ingress[]): RouteTable {
  const { table } = compileRoutes({ ingresses: objects, classes, className: 'netplane', lastGood: new Map(), defaults: { connectTimeoutMs: 5000, readTimeoutMs: 60000 } });
  return table;
}

interface Query {
  host: string;
  path: string;
  /** The route expected: `host path`, or undefined for a miss. */
  expect?: string;
}

/** The query mix over a table of this shape. */
function queries(shape: Shape, count: number, seed: number): Query[] {
  const rnd = random(seed);
  const pick = <T>(xs: T[]) => xs[Math.floor(rnd() * xs.length)]!;
  const hostIndex = (h: string) => Number(/^(?:\*\.w|h)(\d+)\./.exec(h)![1]);
  const out: Query[] = [];
  for (let n = 0; n < count; n++) {
    const r = rnd();
    if (r < 0.75) {
      const wild = r >= 0.65;
      const rule = wild ? pick(shape.wildcard) : pick(shape.exact);
      const host = wild ? `shop${n % 13}${rule.slice(1)}` : rule;
      const i = hostIndex(rule);
      const k = Math.floor(rnd() * 5);
      const [path, expect] = [
        [`/api/v1/users/${n % 1000}`, '/api/v1'],
        [`/api/items`, '/api'],
        [`/static/css/site-${n % 50}.css`, '/static'],
        [`/app${i % 7}/page/${n % 20}`, `/app${i % 7}`],
        ['/login', '/login'],
      ][k]!;
      out.push({ host, path: path!, expect: `${rule} ${expect}` });
    } else if (r < 0.85) {
      out.push({ host: `nohost${n % 5000}.example.org`, path: '/api/v1/x' });
    } else {
      out.push({ host: pick(shape.exact), path: pick(['/apix', '/login/x', '/nothing/here', '/']) });
    }
  }
  return out;
}

/** Checks every query's route once; throws naming the first that is wrong. */
function check(table: RouteTable, qs: Query[], label: string): void {
  for (const q of qs) {
    const route = table.match(q.host, q.path);
    const got = route ? `${route.host} ${route.path}` : undefined;
    if (got !== q.expect) throw new Error(`${label}: match(${q.host}, ${q.path}) gave ${got ?? 'no route'}, expected ${q.expect ?? 'no route'}`);
  }
}

/** What is timed: a RouteTable, or the floor (two Map lookups, see below). */
type Matcher = Pick<RouteTable, 'match'>;

/**
 * The floor: host → Map(path → rule) with two Map.get calls and no prefix walk, over the same queries. What it loses
 * between 10 and 10,000 rules is the memory cost of touching 2,000 hosts instead of 2, which any hash index pays.
 */
function floor(table: RouteTable, shape: Shape): Matcher {
  const hosts = new Map<string, Map<string, Route>>();
  for (const h of shape.exact) {
    const paths = new Map<string, Route>();
    for (const p of hostPaths(Number(h.slice(1, h.indexOf('.'))))) paths.set(p.path, table.match(h, p.path)!);
    hosts.set(h, paths);
  }
  return { match: (host, path) => hosts.get(host)?.get(path) };
}

/** ns per match over the whole query list. */
function time(table: Matcher, qs: Query[]): number {
  let hits = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < qs.length; i++) {
    const q = qs[i]!;
    if (table.match(q.host, q.path) !== undefined) hits++;
  }
  const ns = Number(process.hrtime.bigint() - t0);
  if (hits < 0) throw new Error('unreachable'); // keeps `hits` alive
  return ns / qs.length;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const small = ingresses(10);
const big = ingresses(bigRules);
const compileMs: number[] = [];
let bigTable: RouteTable | undefined;
for (let i = 0; i < 5; i++) {
  const t0 = performance.now();
  bigTable = compile(big.objects);
  compileMs.push(performance.now() - t0);
}
const tables = { small: compile(small.objects), big: bigTable! };
if (tables.small.size !== 10 || tables.big.size !== big.objects.length * pathsPerHost) {
  throw new Error(`tables have ${tables.small.size} and ${tables.big.size} rules; expected 10 and ${big.objects.length * pathsPerHost}`);
}
if (tables.big.problems.length > 0) throw new Error(`compile reported problems: ${JSON.stringify(tables.big.problems.slice(0, 3))}`);
const hot: Shape = { exact: big.shape.exact.slice(0, 1), wildcard: big.shape.wildcard.slice(0, 1) };
const qs = { small: queries(small.shape, queryCount, 1), big: queries(big.shape, queryCount, 1), hot: queries(hot, queryCount, 1) };
check(tables.small, qs.small, '10 rules');
check(tables.big, qs.big, `${tables.big.size} rules`);
check(tables.big, qs.hot, `${tables.big.size} rules, 2 hosts queried`);
log(`route matching: ${tables.small.size} rules vs ${tables.big.size} rules (${big.shape.exact.length} exact + ${big.shape.wildcard.length} wildcard hosts x ${pathsPerHost} paths); ${queryCount} queries a round, ${rounds} rounds; node ${process.version}`);

const runs = {
  small: { matcher: tables.small as Matcher, qs: qs.small, label: '10 rules' },
  big: { matcher: tables.big as Matcher, qs: qs.big, label: `${tables.big.size} rules` },
  hot: { matcher: tables.big as Matcher, qs: qs.hot, label: `${tables.big.size} rules, queries on 2 hosts` },
  floorSmall: { matcher: floor(tables.small, small.shape), qs: qs.small, label: 'floor, 10 rules' },
  floorBig: { matcher: floor(tables.big, big.shape), qs: qs.big, label: `floor, ${tables.big.size} rules` },
};
type Run = keyof typeof runs;
const names = Object.keys(runs) as Run[];
// Warm-up: the JIT settles on every matcher before anything is timed.
for (let i = 0; i < 3; i++) for (const k of names) time(runs[k].matcher, runs[k].qs);
const ns = Object.fromEntries(names.map((k) => [k, [] as number[]])) as Record<Run, number[]>;
for (let r = 0; r < rounds; r++) {
  // Rotate the order each round, so no matcher always runs first or last.
  const order = names.map((_, i, a) => a[(i + r) % a.length]!);
  for (const k of order) ns[k].push(time(runs[k].matcher, runs[k].qs));
  log(`  round ${r + 1}: ${names.map((k) => `${runs[k].label} ${ns[k].at(-1)!.toFixed(0)}`).join(', ')} ns/match`);
}
const med = Object.fromEntries(names.map((k) => [k, median(ns[k])])) as Record<Run, number>;
const result = {
  node: process.version,
  rounds,
  queries: queryCount,
  rules: { small: tables.small.size, big: tables.big.size },
  nsPerMatch: med,
  ratio: med.big / med.small,
  ratioHot: med.hot / med.small,
  ratioFloor: med.floorBig / med.floorSmall,
  compileMs: { big: median(compileMs), runs: compileMs },
  perRound: ns,
};
const flat = result.ratio <= 1.5;
if (asJSON) {
  process.stdout.write(`${JSON.stringify({ ...result, target: { ratioAtMost: 1.5, met: flat } }, null, 2)}\n`);
} else {
  process.stdout.write(
    [
      `route matching (median of ${rounds} rounds, ${queryCount} queries each; 75% hits, 25% misses):`,
      `  ${String(result.rules.small).padStart(6)} rules: ${result.nsPerMatch.small.toFixed(0)} ns per match`,
      `  ${String(result.rules.big).padStart(6)} rules: ${result.nsPerMatch.big.toFixed(0)} ns per match`,
      `  ratio ${result.ratio.toFixed(2)}x (target <= 1.5, flat in the number of rules: ${flat ? 'met' : 'MISSED'})`,
      `  ${String(result.rules.big).padStart(6)} rules, queries on 2 hosts only: ${med.hot.toFixed(0)} ns per match (${result.ratioHot.toFixed(2)}x the 10 rules: the matcher's own cost, without the memory cost of many hosts)`,
      `  floor (two Map.get, no prefix walk): ${med.floorSmall.toFixed(0)} ns with 10 rules, ${med.floorBig.toFixed(0)} ns with ${result.rules.big} (${result.ratioFloor.toFixed(2)}x: what touching ${big.objects.length} hosts costs any hash index)`,
      `  compile ${result.rules.big} rules (${big.objects.length} Ingresses): ${result.compileMs.big.toFixed(1)} ms (median of ${compileMs.length})`,
      '',
    ].join('\n'),
  );
}
