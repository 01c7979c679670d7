// Large manifest files: the size limit per file, keys checked in linear time, and parsing off the main thread so
// that a large file does not stop the process's other work (DNS answers, /healthz) while it parses.
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { maxYamlDepth, parseManifestText } from '../../cluster/manifests/parse.ts';
import { ManifestParser } from '../../cluster/manifests/parser.ts';
import { defaultMaxFileBytes, ManifestsSource } from '../../cluster/manifests/source.ts';
import { Store } from '../../cluster/store.ts';
import { captureLogger, waitFor } from '../helpers/wait.ts';

const svc = (name: string, ip: string) => `apiVersion: v1
kind: Service
metadata: { name: ${name} }
spec: { clusterIP: ${ip}, ports: [{ port: 80 }] }
`;

/** `n` Services, each with an EndpointSlice, as documents; Service `dupAt` gets a label written twice. */
function services(n: number, options: { port?: number; dupAt?: number } = {}): string {
  const docs: string[] = [];
  for (let i = 0; i < n; i++) {
    const dup = i === options.dupAt ? '    tier: again\n' : '';
    docs.push(`apiVersion: v1
kind: Service
metadata:
  name: svc-${i}
  labels:
    app: app-${i}
    tier: backend
${dup}  annotations: { note: "grüße ☃ ${i}" }
spec:
  clusterIP: 10.96.${i >> 8}.${i & 255}
  ports:
    - { name: http, port: ${options.port ?? 80}, targetPort: 8080 }
`, `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: svc-${i}-a
  labels: { kubernetes.io/service-name: svc-${i} }
addressType: IPv4
endpoints:
  - { addresses: [10.244.1.${i & 255}], conditions: { ready: true } }
  - { addresses: [10.244.2.${i & 255}], conditions: { ready: true } }
ports: [{ name: http, port: 8080 }]
`);
  }
  return docs.join('---\n');
}

/** The line of the first occurrence of `needle` in `text`, 1-based. */
const lineOf = (text: string, needle: string) => text.slice(0, text.indexOf(needle)).split('\n').length;

const kinds = new Set(['Service', 'EndpointSlice'] as const);

describe('parseManifestText on large input', () => {
  it('finds a key repeated at the end of a map of 20,000 keys, with its line', () => {
    const keys = Array.from({ length: 20_000 }, (_, i) => `  key-${i}: v\n`).join('');
    const text = `apiVersion: v1\nkind: ConfigMap\nmetadata: { name: big }\ndata:\n${keys}  key-7: again\n`;
    const r = parseManifestText('big.yaml', text);
    expect(r).toEqual({ ok: false, problem: { file: 'big.yaml', document: 1, reason: `Map keys must be unique: "key-7" is repeated at line ${4 + 20_000 + 1}, column 3` } });
  });

  it('reads a List of 2,000 items, and names the item whose labels repeat a key', () => {
    const docs = services(1000, { dupAt: 900 }).split('---\n');
    const items = docs.map((d) => d.trimEnd().split('\n').map((l, k) => (k === 0 ? `  - ${l}` : `    ${l}`)).join('\n')).join('\n');
    const text = `apiVersion: v1\nkind: List\nitems:\n${items}\n`;
    const r = parseManifestText('list.yaml', text);
    expect(r).toEqual({ ok: false, problem: { file: 'list.yaml', document: 1, reason: `Map keys must be unique: "tier" is repeated at line ${lineOf(text, 'tier: again')}, column 9` } });
    const fine = parseManifestText('list.yaml', text.replace('tier: again', 'role: again'));
    expect(fine.ok && fine.objects.length).toBe(2000);
  });
});

describe('ManifestParser', () => {
  let parser: ManifestParser | undefined;
  afterEach(async () => {
    await parser?.close();
    parser = undefined;
  });

  it('parses a large file on its thread to what parseManifestText gives, while the event loop keeps turning', async () => {
    parser = new ManifestParser({ idleMs: 100 });
    const text = services(1000);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    const parsed = await parser.parse('big.yaml', Buffer.from(text), kinds);
    clearInterval(timer);
    // Parsed in place, the file would have kept every timer waiting until it was done.
    expect(ticks).toBeGreaterThan(0);
    expect(parsed).toEqual(parseManifestText('big.yaml', text, kinds));
    expect(parsed.ok && parsed.objects.length).toBe(2000);
    expect(parsed.ok && parsed.objects[1998]!.object.metadata).toMatchObject({ name: 'svc-999', annotations: { note: 'grüße ☃ 999' } });
    // A problem comes back like an outcome, with its document and line.
    const bad = services(1000, { dupAt: 400 });
    expect(await parser.parse('big.yaml', Buffer.from(bad), kinds)).toEqual({ ok: false, problem: { file: 'big.yaml', document: 801, reason: `Map keys must be unique: "tier" is repeated at line ${lineOf(bad, 'tier: again')}, column 5` } });
  });

  it('stops its thread when idle and starts another when needed; after close a parse rejects with a code', async () => {
    parser = new ManifestParser({ idleMs: 50 });
    // A small file is parsed in place, with no thread.
    expect(await parser.parse('small.yaml', Buffer.from(svc('a', '10.96.0.1')), kinds)).toMatchObject({ ok: true, objects: [{ kind: 'Service' }] });
    expect(parser.threadRunning).toBe(false);
    await parser.parse('big.yaml', Buffer.from(services(200)), kinds);
    expect(parser.threadRunning).toBe(true);
    await waitFor('the idle thread stopped', () => !parser!.threadRunning, 1000);
    expect(await parser.parse('big.yaml', Buffer.from(services(200)), kinds)).toMatchObject({ ok: true });
    const waiting = parser.parse('big.yaml', Buffer.from(services(1000)), kinds);
    const given = expect(waiting).rejects.toMatchObject({ code: 'NETPLANE_MANIFEST_PARSER_THREAD' });
    await parser.close();
    await given;
    await expect(parser.parse('a.yaml', Buffer.alloc(0), kinds)).rejects.toMatchObject({ code: 'NETPLANE_MANIFEST_PARSER_THREAD' });
  });
});

describe('deeply nested YAML', () => {
  // A Service, then a ConfigMap (a kind the reader skips) whose collections nest `depth` deep in all (its own map
  // is the first level), by a field in block or flow style.
  const file = (depth: number, flow: boolean) => {
    let y = 'x: 1';
    if (flow) y = `${'['.repeat(depth - 1)}1${']'.repeat(depth - 1)}`;
    else for (let i = 0; i < depth - 2; i++) y = `- ${y.replace(/\n/g, '\n  ')}`;
    const extra = flow ? `extra: ${y}` : `extra:\n  ${y.replace(/\n/g, '\n  ')}`;
    return `${svc('a', '10.96.0.1')}---\napiVersion: v1\nkind: ConfigMap\nmetadata: { name: deep }\n${extra}\n`;
  };
  const outcome = (r: { ok: boolean; objects?: unknown[]; problem?: { document?: number; reason: string } }) =>
    r.ok ? `ok ${r.objects!.length}` : `document ${r.problem!.document}: ${r.problem!.reason.replace(/ at line.*/, '')}`;

  it.each([false, true])(`is read up to ${maxYamlDepth} levels and refused past them, the same on the parser thread as in place (flow style: %s)`, async (flow) => {
    const parser = new ManifestParser({ inlineBytes: 0 });
    try {
      for (const [depth, want] of [[maxYamlDepth, 'ok 1'], [maxYamlDepth + 1, `document 2: collections nested more than ${maxYamlDepth} deep`], [5000, `document 2: collections nested more than ${maxYamlDepth} deep`]] as const) {
        const text = file(depth, flow);
        expect([depth, outcome(parseManifestText('deep.yaml', text, kinds))]).toEqual([depth, want]);
        expect([depth, outcome(await parser.parse('deep.yaml', Buffer.from(text), kinds))]).toEqual([depth, want]);
      }
      expect(parseManifestText('deep.yaml', file(5000, flow), kinds)).toMatchObject({ ok: false, problem: { reason: expect.stringMatching(/ at line \d+, column \d+$/) } });
    } finally {
      await parser.close();
    }
  });
});

describe('ManifestsSource with large files', () => {
  let dir: string;
  let source: ManifestsSource | undefined;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'netplane-large-'));
  });
  afterEach(async () => {
    await source?.stop();
    source = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  async function start(options: Partial<ConstructorParameters<typeof ManifestsSource>[1]> = {}) {
    const { log, records } = captureLogger();
    const store = new Store();
    source = new ManifestsSource(dir, { log, debounceMs: 20, rescanMs: 60_000, ...options });
    await source.start(store);
    return { store, records };
  }
  const clusterIP = (store: Store, name: string) => store.get('Service', `default/${name}`)?.spec.clusterIPs[0];

  it(`refuses a file over 16 MiB without reading it, logs its size and the limit, and keeps its last good version`, async () => {
    await writeFile(join(dir, 'big.yaml'), svc('big', '10.96.5.1'));
    await writeFile(join(dir, 'other.yaml'), svc('other', '10.96.5.2'));
    const { store, records } = await start();
    // An edit that also makes the file one byte too large: refused as a whole, the edit included.
    const head = `${svc('big', '10.96.5.9')}# `;
    const over = head + 'x'.repeat(defaultMaxFileBytes + 1 - head.length - 1) + '\n';
    expect(Buffer.byteLength(over)).toBe(defaultMaxFileBytes + 1);
    await writeFile(join(dir, 'big.yaml.tmp~'), over);
    await rename(join(dir, 'big.yaml.tmp~'), join(dir, 'big.yaml'));
    await writeFile(join(dir, 'other.yaml'), svc('other', '10.96.5.3'));
    await waitFor('the refusal', () => source!.problems().length > 0, 5000);
    await waitFor('the other file', () => clusterIP(store, 'other') === '10.96.5.3', 1000);
    const reason = `16 MiB (${defaultMaxFileBytes + 1} bytes) is over the limit of 16 MiB (${defaultMaxFileBytes} bytes) for one manifest file`;
    expect(source!.problems()).toEqual([{ file: 'big.yaml', reason }]);
    expect(clusterIP(store, 'big')).toBe('10.96.5.1');
    const logged = records.filter((r) => r.level === 50 && r.file === 'big.yaml');
    expect(logged.map((r) => r.msg)).toEqual([`manifest big.yaml rejected: ${reason}; keeping its last good version`]);
    // Rescans of the same file neither read it nor log it again.
    await source!.rescan();
    expect(records.filter((r) => r.level === 50 && r.file === 'big.yaml')).toHaveLength(1);

    // A new file over the limit holds nothing; back under the limit, the file applies.
    await writeFile(join(dir, 'huge.yaml'), over.replace("name: big", "name: huge"));
    await waitFor('the second refusal', () => source!.problems().length === 2, 5000);
    expect(store.get('Service', 'default/huge')).toBeUndefined();
    await writeFile(join(dir, 'big.yaml'), svc('big', '10.96.5.10'));
    await waitFor('the file under the limit', () => clusterIP(store, 'big') === '10.96.5.10', 5000);
    expect(source!.problems().map((p) => p.file)).toEqual(['huge.yaml']);
  });

  it('a large file parsing on the thread holds up no other file; deleted meanwhile, its objects never come', async () => {
    await writeFile(join(dir, 'small.yaml'), svc('small', '10.96.8.1'));
    const { store } = await start({ rescanMs: 60_000 });
    // Some seconds of parsing (4,000 Services with their slices, about 2.6 MiB), then a small change.
    await writeFile(join(dir, 'big.yaml'), services(4000));
    await new Promise((r) => setTimeout(r, 100));
    await writeFile(join(dir, 'small.yaml'), svc('small', '10.96.8.2'));
    await waitFor('the small change', () => clusterIP(store, 'small') === '10.96.8.2', 2000);
    expect(store.count('Service')).toBe(1);
    await waitFor('the large file', () => store.count('Service') === 4001, 20_000);
    // Changed and deleted while it parses: its parse is given up, and none of its objects appear.
    await writeFile(join(dir, 'big.yaml'), services(4000, { port: 81 }));
    await new Promise((r) => setTimeout(r, 200));
    await rm(join(dir, 'big.yaml'));
    await waitFor('the deleted file gone', () => store.count('Service') === 1, 5000);
    await source!.rescan();
    await new Promise((r) => setTimeout(r, 3000));
    expect(store.count('Service')).toBe(1);
  }, 40_000);

  it('a large file renamed keeps its objects all along (not parsed again), and rescan() waits for large files', async () => {
    await writeFile(join(dir, 'big.yaml'), services(1000));
    const { store } = await start({ rescanMs: 60_000 });
    expect(store.count('Service')).toBe(1000);
    let lowest = Infinity;
    const watch = setInterval(() => (lowest = Math.min(lowest, store.count('Service'))), 5);
    try {
      await rename(join(dir, 'big.yaml'), join(dir, 'moved.yaml'));
      await source!.rescan();
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      clearInterval(watch);
    }
    expect(lowest).toBe(1000);
    expect(source!.problems()).toEqual([]);
    // rescan() resolves once a new large file is in, not while it is still parsing.
    await writeFile(join(dir, 'more.yaml'), services(1000, { port: 82 }).replaceAll('svc-', 'more-'));
    await source!.rescan();
    expect(store.count('Service')).toBe(2000);
  }, 30_000);

  it('rejects a large file with a key repeated in one of its 2,000 objects, naming the line, and keeps its last good version', async () => {
    await writeFile(join(dir, 'many.yaml'), services(1000));
    const { store, records } = await start();
    expect(store.count('Service')).toBe(1000);
    expect(store.count('EndpointSlice')).toBe(1000);
    const bad = services(1000, { port: 81, dupAt: 700 });
    await writeFile(join(dir, 'many.yaml'), bad);
    await waitFor('the rejection', () => source!.problems().length > 0, 10_000);
    const reason = `Map keys must be unique: "tier" is repeated at line ${lineOf(bad, 'tier: again')}, column 5`;
    expect(source!.problems()).toEqual([{ file: 'many.yaml', document: 1401, reason }]);
    expect(records.some((r) => r.level === 50 && r.msg === `manifest many.yaml document 1401 rejected: ${reason}; keeping its last good version`)).toBe(true);
    expect(store.count('Service')).toBe(1000);
    expect(store.get('Service', 'default/svc-999')?.spec.ports[0]?.port).toBe(80);
    // Fixed, the whole new version applies.
    await writeFile(join(dir, 'many.yaml'), services(1000, { port: 81 }));
    await waitFor('the fixed file', () => store.get('Service', 'default/svc-999')?.spec.ports[0]?.port === 81, 10_000);
    expect(source!.problems()).toEqual([]);
  });

  it('a file the parser thread dies on is kept at its last good version and not parsed again on every rescan; a changed file is', async () => {
    await writeFile(join(dir, 'many.yaml'), svc('many', '10.96.6.1'));
    await writeFile(join(dir, 'other.yaml'), svc('other', '10.96.6.2'));
    // A thread heap far too small for 2,000 objects: the thread runs out of memory, as a huge file would make it.
    const { store, records } = await start({ rescanMs: 50, parserRetryMs: 400, parser: { resourceLimits: { maxOldGenerationSizeMb: 8, maxYoungGenerationSizeMb: 2 } } });
    let threads = 0;
    const counted = () => threads++;
    process.on('worker', counted);
    try {
      await writeFile(join(dir, 'many.yaml'), services(1000));
      await waitFor('the rejection', () => source!.problems().length > 0, 10_000);
      expect(source!.problems()).toEqual([{ file: 'many.yaml', reason: expect.stringMatching(/^the manifest parser thread (failed|exited)/) }]);
      expect(clusterIP(store, 'many')).toBe('10.96.6.1');
      await writeFile(join(dir, 'other.yaml'), svc('other', '10.96.6.3'));
      await waitFor('the other file', () => clusterIP(store, 'other') === '10.96.6.3', 2000);
      // 1.5 s of rescans every 50 ms: tried again after 400 ms and 800 ms more, not 30 times.
      const start = threads;
      await new Promise((r) => setTimeout(r, 1500));
      expect(threads - start).toBeGreaterThanOrEqual(1);
      expect(threads - start).toBeLessThanOrEqual(3);
      expect(records.filter((r) => r.level === 50 && r.file === 'many.yaml')).toHaveLength(1);
    } finally {
      process.off('worker', counted);
    }
    // Changed to something the thread can take: parsed at once.
    await writeFile(join(dir, 'many.yaml'), services(20));
    await waitFor('the changed file', () => store.count('Service') === 21, 5000);
    expect(clusterIP(store, 'many')).toBeUndefined();
    expect(source!.problems()).toEqual([]);
  });

  it('a file the parser thread died on keeps its objects when renamed, and loses them when emptied, as any file', async () => {
    await writeFile(join(dir, 'many.yaml'), svc('many', '10.96.7.1'));
    // Tried again every 100 ms: the emptying below falls after a retry was due, where it once spun.
    const { store, records } = await start({ rescanMs: 50, emptyGraceMs: 300, parserRetryMs: 100, parser: { resourceLimits: { maxOldGenerationSizeMb: 8, maxYoungGenerationSizeMb: 2 } } });
    await writeFile(join(dir, 'many.yaml'), services(1000));
    await waitFor('the rejection', () => source!.problems().length > 0, 10_000);
    await rename(join(dir, 'many.yaml'), join(dir, 'moved.yaml'));
    await waitFor('the renamed file rejected again', () => source!.problems().some((p) => p.file === 'moved.yaml'), 10_000);
    expect(source!.problems().map((p) => p.file)).toEqual(['moved.yaml']);
    expect(clusterIP(store, 'many')).toBe('10.96.7.1');
    expect(records).toContainEqual(expect.objectContaining({ msg: 'manifest many.yaml was renamed to moved.yaml; keeping its last good version' }));
    await new Promise((r) => setTimeout(r, 300));
    await writeFile(join(dir, 'moved.yaml'), '');
    await waitFor('the emptied file to lose its objects', () => clusterIP(store, 'many') === undefined, 3000);
    // And the scans settle: no more "is empty" lines once its objects are gone.
    const emptyLines = () => records.filter((r) => typeof r.msg === 'string' && r.msg.startsWith('manifest moved.yaml is empty')).length;
    const settled = emptyLines();
    await new Promise((r) => setTimeout(r, 500));
    expect(emptyLines()).toBe(settled);
  });
});
