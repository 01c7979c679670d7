// The resource types the test API server serves, how a URL path names one, and the JSON shapes it answers with.

/** A Kubernetes object as stored: kind, apiVersion and metadata, the rest is opaque. */
export interface KubeObject {
  kind: string;
  apiVersion: string;
  metadata: {
    name: string;
    namespace?: string;
    resourceVersion: string;
    uid: string;
    creationTimestamp: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    [field: string]: unknown;
  };
  [field: string]: unknown;
}

/** One served resource type: its group/version, kind, URL plural and scope. */
export interface Resource {
  readonly group: string;
  readonly version: string;
  readonly apiVersion: string;
  readonly kind: string;
  readonly plural: string;
  readonly namespaced: boolean;
  /** Extra field-selector labels the real server accepts for this resource, besides metadata.name/namespace. */
  readonly fields: Readonly<Record<string, (obj: KubeObject) => string>>;
}

function resource(group: string, version: string, kind: string, plural: string, namespaced: boolean, fields = {}): Resource {
  return { group, version, apiVersion: group ? `${group}/${version}` : version, kind, plural, namespaced, fields };
}

/** Every resource type served, in discovery order. */
export const resources: readonly Resource[] = [
  resource('', 'v1', 'Service', 'services', true),
  resource('', 'v1', 'Endpoints', 'endpoints', true),
  resource('', 'v1', 'Secret', 'secrets', true, { type: (o: KubeObject) => String(o.type ?? '') }),
  resource('', 'v1', 'ConfigMap', 'configmaps', true),
  resource('', 'v1', 'Node', 'nodes', false),
  resource('', 'v1', 'Namespace', 'namespaces', false),
  resource('', 'v1', 'Pod', 'pods', true, { 'status.phase': (o: KubeObject) => String((o.status as { phase?: unknown } | undefined)?.phase ?? '') }),
  resource('discovery.k8s.io', 'v1', 'EndpointSlice', 'endpointslices', true),
  resource('networking.k8s.io', 'v1', 'Ingress', 'ingresses', true),
  resource('networking.k8s.io', 'v1', 'IngressClass', 'ingressclasses', false),
  // For leader election: created and replaced (POST, PUT) rather than only read.
  resource('coordination.k8s.io', 'v1', 'Lease', 'leases', true),
];

/** The resource of an apiVersion and kind, or undefined when it is not served. */
export function resourceByKind(apiVersion: string, kind: string): Resource | undefined {
  return resources.find((r) => r.apiVersion === apiVersion && r.kind === kind);
}

/** What a request path under /api or /apis addresses; undefined when no served resource matches. */
export interface Target {
  resource: Resource;
  /** Set for per-namespace paths; undefined means all namespaces (or a cluster-scoped resource). */
  namespace?: string;
  /** Set for single-object paths. */
  name?: string;
  /** `status` for `.../{name}/status`: a patch there changes only the status (and metadata), as the real server's. */
  subresource?: 'status';
}

/** Parses `/api/v1/...` and `/apis/{group}/{version}/...` into a Target; undefined for any other shape. */
export function parseTarget(pathname: string): Target | undefined {
  const parts = pathname.split('/').filter(Boolean).map(decodeURIComponent);
  let group: string;
  let rest: string[];
  if (parts[0] === 'api' && parts[1] === 'v1') {
    [group, rest] = ['', parts.slice(1)];
  } else if (parts[0] === 'apis' && parts.length >= 3) {
    [group, rest] = [parts[1]!, parts.slice(2)];
  } else {
    return undefined;
  }
  const version = rest.shift();
  const find = (plural: string | undefined) => resources.find((r) => r.group === group && r.version === version && r.plural === plural);
  if (rest[0] === 'namespaces' && rest.length === 5 && rest[4] === 'status') {
    const r = find(rest[2]);
    return r?.namespaced ? { resource: r, namespace: rest[1], name: rest[3], subresource: 'status' } : undefined;
  }
  if (rest[0] === 'namespaces' && rest.length >= 3 && rest.length <= 4) {
    const r = find(rest[2]);
    return r?.namespaced ? { resource: r, namespace: rest[1], name: rest[3] } : undefined;
  }
  if (rest.length === 3 && rest[2] === 'status') {
    const r = find(rest[0]);
    return r && !r.namespaced ? { resource: r, name: rest[1], subresource: 'status' } : undefined;
  }
  if (rest.length >= 1 && rest.length <= 2) {
    const r = find(rest[0]);
    // A namespaced resource has no single-object path outside /namespaces/{ns}/.
    if (!r || (r.namespaced && rest.length === 2)) return undefined;
    return { resource: r, name: rest[1] };
  }
  return undefined;
}

/** The storage key of an object: resource, namespace and name, sorting like etcd's keys. */
export function storageKey(r: Resource, namespace: string | undefined, name: string): string {
  return `${r.apiVersion}/${r.plural}/${namespace ?? ''}/${name}`;
}

/** A copy without kind and apiVersion, as the real server writes list items. */
export function listItem(obj: KubeObject): Omit<KubeObject, 'kind' | 'apiVersion'> {
  const { kind: _kind, apiVersion: _apiVersion, ...rest } = obj;
  return rest;
}

/** A metav1.Status failure body, as the real server sends for errors (and in watch ERROR events). */
export function status(code: number, reason: string, message: string, details?: Record<string, unknown>): Record<string, unknown> {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, ...(details ? { details } : {}), code };
}

/**
 * Lists that a strategic merge patch merges item by item, by this key (the core types' patchMergeKey: NodeStatus
 * conditions and addresses by type, NodeSpec taints by key); every other list is replaced, as in a merge patch.
 */
const listMergeKeys: Readonly<Record<string, string>> = { conditions: 'type', addresses: 'type', taints: 'key' };

/**
 * Applies an RFC 7386 JSON merge patch: objects merge key by key, null deletes, anything else replaces. With
 * `strategic`, the lists of listMergeKeys merge by their key instead (an item of the patch replaces fields of the
 * item with the same key, or is appended); `$patch` directives are not supported.
 */
export function mergePatch(target: unknown, patch: unknown, strategic = false, key = ''): unknown {
  const mergeKey = listMergeKeys[key];
  if (strategic && mergeKey && Array.isArray(patch) && Array.isArray(target)) {
    const out = structuredClone(target) as unknown[];
    for (const item of patch) {
      const at = isPlainObject(item) ? out.findIndex((t) => isPlainObject(t) && t[mergeKey] === item[mergeKey]) : -1;
      if (at < 0) out.push(structuredClone(item));
      else out[at] = mergePatch(out[at], item, true);
    }
    return out;
  }
  if (!isPlainObject(patch)) return structuredClone(patch);
  const out: Record<string, unknown> = isPlainObject(target) ? { ...target } : {};
  for (const [k, value] of Object.entries(patch)) {
    if (value === null) delete out[k];
    else out[k] = mergePatch(out[k], value, strategic, k);
  }
  return out;
}

/** True for a JSON object (not an array, not null). */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The discovery documents for GET /api, /apis, /api/v1 and /apis/{group}/{version}; undefined for other paths. */
export function discovery(pathname: string, serverAddress: string): Record<string, unknown> | undefined {
  const path = pathname.replace(/\/+$/, '');
  const groups = [...new Set(resources.filter((r) => r.group).map((r) => r.group))];
  if (path === '/api') {
    return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }] };
  }
  if (path === '/apis') {
    const versionOf = (g: string) => ({ groupVersion: `${g}/v1`, version: 'v1' });
    return {
      kind: 'APIGroupList',
      apiVersion: 'v1',
      groups: groups.map((g) => ({ name: g, versions: [versionOf(g)], preferredVersion: versionOf(g) })),
    };
  }
  const groupVersion = path === '/api/v1' ? 'v1' : path.startsWith('/apis/') ? path.slice('/apis/'.length) : undefined;
  const served = resources.filter((r) => r.apiVersion === groupVersion);
  if (served.length === 0) return undefined;
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion,
    resources: served.map((r) => ({
      name: r.plural,
      singularName: r.kind.toLowerCase(),
      namespaced: r.namespaced,
      kind: r.kind,
      verbs: ['get', 'list', 'patch', 'watch'],
    })),
  };
}
