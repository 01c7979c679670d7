// A manifest directory is read for the kinds the component's store keeps, and only those are validated: a Pod, an
// Ingress or an Endpoints that one component cannot use is skipped by the others, as kinds netplane does not know
// always were, instead of costing its file every object (the Service beside it). The parser as a table, then the
// manifests source with the stores of proxy and ingress.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseManifestText } from '../../cluster/manifests/parse.ts';
import { ManifestsSource } from '../../cluster/manifests/source.ts';
import type { Kind } from '../../cluster/model/index.ts';
import { Store } from '../../cluster/store.ts';
import { captureLogger } from '../helpers/wait.ts';

const yaml = (...docs: object[]) => docs.map((d) => JSON.stringify(d)).join('\n---\n');
const service = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'app', namespace: 'default' }, spec: { clusterIP: '10.96.0.20', ports: [{ name: 'http', port: 80 }] } };
const endpoints = { apiVersion: 'v1', kind: 'Endpoints', metadata: { name: 'app', namespace: 'default' }, subsets: [{ addresses: [{ ip: '10.244.0.5' }], ports: [{ name: 'http', port: 8080 }] }] };
const badEndpoints = { ...endpoints, subsets: [{ addresses: [{ ip: 'nowhere' }] }] };
// What `kubectl create` takes: a name made by the API server from generateName, so none in the file.
const generatedPod = { apiVersion: 'v1', kind: 'Pod', metadata: { generateName: 'app-', namespace: 'default' }, spec: { containers: [{ name: 'c', image: 'nginx' }] } };
const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'app-1', namespace: 'default' }, status: { phase: 'Running', podIP: '10.244.0.5' } };
// An Ingress of the API version removed in Kubernetes 1.22, which netplane cannot read.
const oldIngress = { apiVersion: 'extensions/v1beta1', kind: 'Ingress', metadata: { name: 'app' }, spec: { backend: { serviceName: 'app', servicePort: 80 } } };
const list = (...items: object[]) => ({ apiVersion: 'v1', kind: 'List', items });

const proxy: Kind[] = ['Service', 'EndpointSlice', 'Node'];
const dns: Kind[] = ['Service', 'EndpointSlice', 'Namespace'];
const dnsVerified: Kind[] = [...dns, 'Pod'];
const ingress: Kind[] = ['Ingress', 'IngressClass', 'Service', 'EndpointSlice', 'Secret'];

describe('parseManifestText with the kinds read', () => {
  const rows: Array<[string, string, Kind[], { objects?: string[]; document?: number; reason?: RegExp }, string?]> = [
    ['proxy: a Pod with only generateName is skipped, not validated', yaml(service, endpoints, generatedPod), proxy, { objects: ['Service', 'EndpointSlice'] }],
    ['dns: the same file', yaml(service, endpoints, generatedPod), dns, { objects: ['Service', 'EndpointSlice'] }],
    ['dns --pods verified: that Pod is read, and refused with its document', yaml(service, endpoints, generatedPod), dnsVerified, { document: 3, reason: /^Pod: metadata\.name/ }],
    ['dns --pods verified: a good Pod is kept', yaml(service, pod), dnsVerified, { objects: ['Service', 'Pod'] }],
    ['proxy: a good Pod is not kept either', yaml(service, pod), proxy, { objects: ['Service'] }],
    ['proxy: an Ingress of a removed API version is skipped', yaml(oldIngress, service), proxy, { objects: ['Service'] }],
    ['ingress: that Ingress is refused, naming the version to use', yaml(oldIngress, service), ingress, { document: 1, reason: /^Ingress: apiVersion "extensions\/v1beta1" is not supported; use "networking\.k8s\.io\/v1"/ }],
    ['an Endpoints is not converted, nor validated, without EndpointSlices', yaml(badEndpoints, pod), ['Pod'], { objects: ['Pod'] }],
    ['an Endpoints is converted to slices for a reader of EndpointSlices', yaml(endpoints), dns, { objects: ['EndpointSlice'] }],
    ['a bad Endpoints is refused for a reader of EndpointSlices', yaml(service, badEndpoints), proxy, { document: 2, reason: /^Endpoints: / }],
    ['a List: the items of other kinds are skipped', yaml(list(service, generatedPod, oldIngress)), proxy, { objects: ['Service'] }],
    ['a List: an item of a kind read is validated, naming the item', yaml(list(service, generatedPod)), dnsVerified, { document: 1, reason: /^items\[1\]: Pod: metadata\.name/ }],
    ['a .json List of Pods (the JSON path) for the proxy', JSON.stringify(list(generatedPod, pod, service)), proxy, { objects: ['Service'] }, 'pods.json'],
    ['a .json List of Pods for dns --pods verified', JSON.stringify(list(pod, generatedPod)), dnsVerified, { document: 1, reason: /^items\[1\]: Pod: metadata\.name/ }, 'pods.json'],
    ['a document without kind is still an error, whatever is read', yaml(service, { apiVersion: 'v1', metadata: { name: 'x' } }), proxy, { document: 2, reason: /apiVersion and kind must both be set/ }],
    ['a List item without kind is still an error', yaml(list(service, { metadata: { name: 'x' } })), ['Node'], { document: 1, reason: /^items\[1\]: apiVersion and kind must both be set/ }],
    ['a YAML error in a document of another kind still names it', `${yaml(service)}\n---\nkind: Pod\nmetadata: [unclosed\n`, proxy, { document: 2, reason: /line \d+, column \d+/ }],
    ['a kind named like an Object property is no kind', yaml({ apiVersion: 'v1', kind: 'toString' }, service), proxy, { objects: ['Service'] }],
  ];
  it.each(rows)('%s', (_, text, read, want, file = 'app.yaml') => {
    const r = parseManifestText(file, text, new Set(read));
    if (want.objects) {
      expect(r).toMatchObject({ ok: true });
      if (r.ok) expect(r.objects.map((o) => o.kind)).toEqual(want.objects);
    } else {
      expect(r).toMatchObject({ ok: false, problem: { file, document: want.document } });
      if (!r.ok) expect(r.problem.reason).toMatch(want.reason!);
    }
  });

  it('reads every kind when not told which (lab status, deploy checks)', () => {
    expect(parseManifestText('app.yaml', yaml(service, generatedPod))).toMatchObject({ ok: false, problem: { document: 2 } });
  });
});

describe('the manifests source reads its store kinds', () => {
  let dir: string;
  let source: ManifestsSource | undefined;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'netplane-manifest-kinds-'));
  });
  afterEach(async () => {
    await source?.stop();
    source = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  async function start(kinds: Kind[]) {
    const { log, records } = captureLogger();
    const store = new Store(kinds);
    source = new ManifestsSource(dir, { log, debounceMs: 20 });
    await source.start(store);
    return { store, records, source };
  }

  it("a bad Ingress no longer hides its file's Services from the proxy; the ingress still reports it", async () => {
    await writeFile(join(dir, 'app.yaml'), yaml(oldIngress, service, endpoints));
    const forProxy = await start(proxy);
    expect(forProxy.store.get('Service', 'default/app')?.spec.clusterIPs).toEqual(['10.96.0.20']);
    expect(forProxy.store.count('EndpointSlice')).toBe(1);
    expect(forProxy.source.problems()).toEqual([]);
    expect(forProxy.records.filter((r) => Number(r.level) >= 40)).toEqual([]);
    await forProxy.source.stop();

    const forIngress = await start(ingress);
    expect(forIngress.store.count('Service')).toBe(0);
    expect(forIngress.source.problems()).toEqual([{ file: 'app.yaml', document: 1, reason: expect.stringMatching(/^Ingress: apiVersion/) }]);
  });

  it('an object of a kind not read, defined in two files, is no conflict', async () => {
    await writeFile(join(dir, 'a.yaml'), yaml(service, pod));
    await writeFile(join(dir, 'b.yaml'), yaml({ ...pod, status: { phase: 'Running', podIP: '10.244.0.6' } }));
    const forProxy = await start(proxy);
    expect(forProxy.store.count('Service')).toBe(1);
    expect(forProxy.records.filter((r) => /is defined in/.test(String(r.msg)))).toEqual([]);
    await forProxy.source.stop();

    const forDns = await start(dnsVerified);
    expect(forDns.records.filter((r) => /is defined in/.test(String(r.msg))).map((r) => r.msg)).toEqual(['Pod|default/app-1 is defined in a.yaml and b.yaml; using a.yaml']);
  });
});
