import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseManifestText } from '../../cluster/manifests/parse.ts';
import { ManifestsSource } from '../../cluster/manifests/source.ts';
import { Store, type StoreChange } from '../../cluster/store.ts';
import { captureLogger, waitFor } from '../helpers/wait.ts';

const web = (port: number) => `apiVersion: v1
kind: Service
metadata: { name: web }
spec:
  clusterIP: 10.96.0.10
  ports: [{ name: http, port: ${port} }]
`;
const api = `apiVersion: v1
kind: Service
metadata: { name: api, namespace: shop }
spec: { clusterIP: 10.96.0.11, ports: [{ port: 443 }] }
`;
const slice = `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: web-1, labels: { kubernetes.io/service-name: web } }
addressType: IPv4
endpoints: [{ addresses: [10.244.0.5] }]
ports: [{ name: http, port: 8080 }]
`;

describe('parseManifestText', () => {
  const cases: Array<[string, string, { objects?: string[]; document?: number; reason?: RegExp }, string?]> = [
    ['several documents, empty ones skipped', `${web(80)}---\n---\n${slice}`, { objects: ['Service', 'EndpointSlice'] }],
    ['JSON', JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1' } }), { objects: ['Node'] }],
    ['YAML syntax error names the file line', `${web(80)}---\nkind: [unclosed\n`, { document: 2, reason: /at line 9, column 1$/ }],
    ['validation error names the field', `${slice}---\n${web(0)}`, { document: 2, reason: /Service: spec\.ports\[0\]\.port: must be 1 to 65535/ }],
    ['duplicate keys are refused, the key and its line named', 'apiVersion: v1\nkind: Node\nkind: Node\nmetadata: { name: a }\n', { document: 1, reason: /^Map keys must be unique: "kind" is repeated at line 3, column 1$/ }],
    // The check walks every map, not only the top one: a label repeated would silently keep the last value.
    ['a key repeated in a nested map (metadata.labels)', `${web(80)}---\napiVersion: v1\nkind: Node\nmetadata:\n  name: a\n  labels:\n    zone: a\n    team: x\n    zone: b\n`, { document: 2, reason: /^Map keys must be unique: "zone" is repeated at line 15, column 5$/ }],
    ['a key repeated in a flow map inside a list', `${web(80)}---\n${slice.replace('{ name: http, port: 8080 }', '{ name: http, port: 8080, name: web }')}`, { document: 2, reason: /"name" is repeated at line 13, column 35$/ }],
    ['a key written once as a number and once as a string is one key (toJS would keep the last)', 'apiVersion: v1\nkind: Node\nmetadata: { name: a, labels: { 1: x, "1": y } }\n', { document: 1, reason: /"1" is repeated at line 3, column 38$/ }],
    ['the same key in two maps is no repeat', 'apiVersion: v1\nkind: Node\nmetadata: { name: a, labels: { name: x }, annotations: { name: y } }\n', { objects: ['Node'] }],
    ['a .json file takes the JSON fast path', JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [{ apiVersion: 'v1', kind: 'Node', metadata: { name: 'a' } }, { apiVersion: 'v1', kind: 'Node', metadata: { name: 'b' } }] }), { objects: ['Node', 'Node'] }, 'f.json'],
    ['a .json file that fails validation names the field', JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'A_B' } }), { document: 1, reason: /metadata\.name/ }, 'f.json'],
    ['a .json file with a repeated key is refused, the key and its line named, as in YAML', '{"apiVersion": "v1", "kind": "Node",\n  "metadata": {"name": "a", "labels": {"a": "x", "b": "y", "a": "z"}}}', { document: 1, reason: /^Map keys must be unique: "a" is repeated at line 2, column 60$/ }, 'f.json'],
    ['a .json key written with an escape is the same key', '{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "a", "labels": {"a\\"{[": "x", "\\u0061\\"{[": "y"}}}', { document: 1, reason: /^Map keys must be unique: "a\\"\{\[" is repeated at line 1, column 89$/ }, 'f.json'],
    ['.json strings that are values, in lists or in other objects are no repeats', '{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "a", "labels": {"kind": "kind", "name": "x"}}, "x": ["kind", "kind", {"kind": 1}]}', { objects: ['Node'] }, 'f.json'],
    ['a .json file with a syntax error is reported with line and column', '{"apiVersion": "v1",\n  "kind": "Node"', { document: 1, reason: /line \d+, column \d+/ }, 'f.json'],
    ['a Namespace, its spec and status not read', 'apiVersion: v1\nkind: Namespace\nmetadata: { name: shop, namespace: ignored }\nspec: { finalizers: [kubernetes] }\nstatus: { phase: Active }\n', { objects: ['Namespace'] }],
    ['a Namespace name must be a DNS name', 'apiVersion: v1\nkind: Namespace\nmetadata: { name: Shop }\n', { document: 1, reason: /Namespace: metadata\.name/ }],
    ['merge keys stay plain data', 'apiVersion: v1\nkind: Node\nmetadata: { name: a, labels: { "<<": x } }\n', { objects: ['Node'] }],
    // yaml's toJS throws for these; the problem must name the document like any other.
    ['an alias to no anchor', `${web(80)}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\ndata:\n  a: *nope\n`, { document: 2, reason: /Unresolved alias.*nope/ }],
    ['an alias bomb', `a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n`, { document: 1, reason: /Excessive alias count/ }],
    ['nesting too deep (refused before the stack could overflow)', '['.repeat(20000) + ']'.repeat(20000), { document: 1, reason: /^collections nested more than 256 deep at line 1, column 257$/ }],
  ];
  for (const [name, text, want, file = 'f.yaml'] of cases) {
    it(name, () => {
      const r = parseManifestText(file, text);
      if (want.objects) {
        expect(r.ok).toBe(true);
        if (r.ok) expect(r.objects.map((o) => o.kind)).toEqual(want.objects);
      } else {
        expect(r.ok).toBe(false);
        if (!r.ok) {
          expect(r.problem.file).toBe(file);
          expect(r.problem.document).toBe(want.document);
          expect(r.problem.reason).toMatch(want.reason!);
        }
      }
    });
  }
});

describe('ManifestsSource', () => {
  let dir: string;
  let source: ManifestsSource | undefined;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'netplane-manifests-'));
  });
  afterEach(async () => {
    await source?.stop();
    source = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  async function start(store = new Store()) {
    const { log, records } = captureLogger();
    source = new ManifestsSource(dir, { log, debounceMs: 20 });
    const changes: StoreChange[] = [];
    store.subscribe((c) => changes.push(...c));
    await source.start(store);
    return { store, records, changes };
  }

  it('loads every file, recursively, and is synced once loaded', async () => {
    await writeFile(join(dir, 'web.yaml'), `${web(80)}---\n${slice}`);
    await writeFile(join(dir, 'api.yml'), api);
    await import('node:fs/promises').then((fs) => fs.mkdir(join(dir, 'nested')));
    await writeFile(join(dir, 'nested', 'node.json'), JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1' } }));
    await writeFile(join(dir, '.web.yaml.swp'), 'garbage: [');
    await writeFile(join(dir, 'README.md'), '# not a manifest');
    const { store } = await start();
    expect(store.status.synced).toBe(true);
    expect(Object.fromEntries([...store.kinds].map((k) => [k, store.count(k)]))).toMatchObject({ Service: 2, EndpointSlice: 1, Node: 1 });
    expect(source!.problems()).toEqual([]);
  });

  it('applies an edit, an added file and a removed file within a second, as add/modify/delete events', async () => {
    await writeFile(join(dir, 'web.yaml'), web(80));
    const { store, changes } = await start();
    const t0 = Date.now();
    await writeFile(join(dir, 'web.yaml'), web(81));
    await waitFor('the edit', () => store.get('Service', 'default/web')?.spec.ports[0]?.port === 81, 1000);
    await writeFile(join(dir, 'api.yaml'), api);
    await waitFor('the new file', () => store.get('Service', 'shop/api'), 1000);
    await unlink(join(dir, 'api.yaml'));
    await waitFor('the removal', () => !store.get('Service', 'shop/api'), 1000);
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(changes.map((c) => [c.old ? (c.object ? 'modified' : 'deleted') : 'added', c.key])).toEqual([
      ['added', 'default/web'],
      ['modified', 'default/web'],
      ['added', 'shop/api'],
      ['deleted', 'shop/api'],
    ]);
  });

  it('sees a file replaced by rename and a ConfigMap-style symlink swap within a second', async () => {
    const { mkdir, rename, symlink } = await import('node:fs/promises');
    // The layout a ConfigMap volume has: web.yaml -> ..data/web.yaml, ..data -> ..v1; an update swaps ..data.
    await mkdir(join(dir, '..v1'));
    await writeFile(join(dir, '..v1', 'web.yaml'), web(80));
    await symlink('..v1', join(dir, '..data'));
    await symlink(join('..data', 'web.yaml'), join(dir, 'web.yaml'));
    await writeFile(join(dir, 'api.yaml'), api);
    const { store } = await start();
    expect(store.get('Service', 'default/web')?.spec.ports[0]?.port).toBe(80);
    // An editor's save, twice: write a temporary file, rename it over the old one (Node's recursive watch sees the
    // first and loses the file after it).
    for (const name of ['api2', 'api3']) {
      await writeFile(join(dir, '.api.yaml.tmp'), api.replace('name: api', `name: ${name}`));
      await rename(join(dir, '.api.yaml.tmp'), join(dir, 'api.yaml'));
      await waitFor(`the renamed file (${name})`, () => store.get('Service', `shop/${name}`), 1000);
    }
    // The kubelet's update: a new version directory, a new symlink, renamed over ..data.
    await mkdir(join(dir, '..v2'));
    await writeFile(join(dir, '..v2', 'web.yaml'), web(81));
    await symlink('..v2', join(dir, '..data_tmp'));
    await rename(join(dir, '..data_tmp'), join(dir, '..data'));
    await waitFor('the swapped ConfigMap', () => store.get('Service', 'default/web')?.spec.ports[0]?.port === 81, 1000);
  });

  it('keeps the last good objects of a file whose edit is bad, names the file, document and reason, and still applies other files', async () => {
    await writeFile(join(dir, 'web.yaml'), `${slice}---\n${web(80)}`);
    const { store, records } = await start();
    await writeFile(join(dir, 'web.yaml'), `${slice}---\n${web(99999)}`);
    await writeFile(join(dir, 'api.yaml'), api);
    await waitFor('the good file', () => store.get('Service', 'shop/api'), 1000);
    await source!.rescan();
    expect(store.get('Service', 'default/web')?.spec.ports[0]?.port).toBe(80);
    expect(store.get('EndpointSlice', 'default/web-1')).toBeDefined();
    expect(source!.problems()).toEqual([{ file: 'web.yaml', document: 2, reason: expect.stringMatching(/spec\.ports\[0\]\.port: must be 1 to 65535/) }]);
    // It was read once: the view holds its last good version, so nothing is missing from it.
    expect(source!.neverRead()).toEqual([]);
    const logged = records.find((r) => r.file === 'web.yaml' && r.level === 50);
    expect(logged).toMatchObject({ document: 2, reason: expect.stringMatching(/port/) });
    expect(String(logged!.msg)).toMatch(/web\.yaml document 2 rejected: .*keeping its last good version/);

    // Fixing the file clears the problem and applies the fix.
    await writeFile(join(dir, 'web.yaml'), `${slice}---\n${web(82)}`);
    await waitFor('the fix', () => store.get('Service', 'default/web')?.spec.ports[0]?.port === 82, 1000);
    expect(source!.problems()).toEqual([]);
  });

  it('a file that was never valid contributes nothing until it is fixed, and says that the view lacks it', async () => {
    await writeFile(join(dir, 'web.yaml'), 'apiVersion: v1\nkind: Service\nmetadata: {}\n');
    const { store, records } = await start();
    expect(store.count('Service')).toBe(0);
    expect(source!.problems()).toMatchObject([{ file: 'web.yaml', document: 1, reason: expect.stringMatching(/metadata\.name/) }]);
    expect(source!.neverRead()).toEqual([expect.stringMatching(/^web\.yaml document 1 \(.*metadata\.name.*\)$/)]);
    expect(String(records.find((r) => r.file === 'web.yaml' && r.level === 50)?.msg)).toMatch(/rejected: .*; no version of it has been read, so nothing it holds is in the view until it is fixed$/);
    expect(store.status.synced).toBe(true);
    // Still broken after another edit: still never read.
    await writeFile(join(dir, 'web.yaml'), 'apiVersion: v1\nkind: Service\nmetadata: { name: 1 }\n');
    await source!.rescan();
    expect(source!.neverRead()).toHaveLength(1);
    await writeFile(join(dir, 'web.yaml'), web(80));
    await waitFor('the fix', () => store.get('Service', 'default/web'), 1000);
    expect(source!.neverRead()).toEqual([]);
  });

  it('keeps the first file of two that define the same object, and warns', async () => {
    await writeFile(join(dir, 'a.yaml'), web(80));
    await writeFile(join(dir, 'b.yaml'), web(81));
    const { store, records } = await start();
    expect(store.get('Service', 'default/web')?.spec.ports[0]?.port).toBe(80);
    expect(records.some((r) => r.level === 40 && r.kept === 'a.yaml' && r.ignored === 'b.yaml')).toBe(true);
    // Removing the winner lets the other definition apply.
    await unlink(join(dir, 'a.yaml'));
    await waitFor('the other definition', () => store.get('Service', 'default/web')?.spec.ports[0]?.port === 81, 1000);
  });

  it('keeps the whole view, marked stale, when the directory itself disappears', async () => {
    await writeFile(join(dir, 'web.yaml'), web(80));
    const { store, records } = await start();
    await rm(dir, { recursive: true, force: true });
    await source!.rescan();
    await source!.rescan();
    expect(store.get('Service', 'default/web')).toBeDefined();
    expect(store.status).toMatchObject({ stale: true, staleReason: expect.stringMatching(/no such directory/) });
    // Logged when it happens, not on every rescan.
    expect(records.filter((r) => r.level === 50 && /keeping the last view, marked stale/.test(String(r.msg)))).toHaveLength(1);
  });
});
