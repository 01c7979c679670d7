// Builders for route compiler tests: Ingress objects validated by the real schema, and a compile with defaults.
import { ingressClassSchema, ingressSchema, type Ingress, type IngressClass } from '../../../cluster/model/ingress.ts';
import { compileRoutes, type CompileInput, type CompileResult } from '../../../ingress/routes/compile.ts';

/** A service backend: `svc:port` (a number, or a port name). */
export function backend(ref: string): object {
  const [name, port = '80'] = ref.split(':');
  return { service: { name, port: /^[0-9]+$/.test(port) ? { number: Number(port) } : { name: port } } };
}

/** A path of a rule: `Prefix /api svc:80` (pathType, path or `-` for none, backend). */
export function path(spec: string): object {
  const [pathType, p, svc] = spec.split(' ');
  return { ...(p === '-' ? {} : { path: p }), pathType, backend: backend(svc ?? 'web') };
}

/** A rule: host ('' for none) and paths as `path()` strings. */
export function rule(host: string, ...paths: string[]): object {
  return { ...(host === '' ? {} : { host }), http: { paths: paths.map(path) } };
}

/** Options of ingress(). */
export interface IngressOptions {
  namespace?: string;
  annotations?: Record<string, string>;
  className?: string | null;
  rules?: object[];
  tls?: object[];
  defaultBackend?: object;
  /** metadata.creationTimestamp (RFC 3339); the oldest Ingress keeps what several claim. */
  created?: string;
}

/** An Ingress of class `netplane` (unless className says otherwise), validated with the cluster schema. */
export function ingress(name: string, o: IngressOptions = {}): Ingress {
  return ingressSchema.parse({
    metadata: { name, namespace: o.namespace ?? 'default', annotations: o.annotations ?? {}, ...(o.created === undefined ? {} : { creationTimestamp: o.created }) },
    spec: {
      ...(o.className === null ? {} : { ingressClassName: o.className ?? 'netplane' }),
      ...(o.rules === undefined ? {} : { rules: o.rules }),
      ...(o.tls === undefined ? {} : { tls: o.tls }),
      ...(o.defaultBackend === undefined ? {} : { defaultBackend: o.defaultBackend }),
    },
  });
}

/** An IngressClass, the default class when `isDefault`. */
export function ingressClass(name: string, isDefault: boolean): IngressClass {
  return ingressClassSchema.parse({
    metadata: { name, annotations: isDefault ? { 'ingressclass.kubernetes.io/is-default-class': 'true' } : {} },
    spec: { controller: 'netplane.io/ingress' },
  });
}

/** The defaults every test compiles with. */
export const defaults = { connectTimeoutMs: 5000, readTimeoutMs: 60_000 };

/** compileRoutes with class `netplane`, no classes, no last good versions, unless `input` says otherwise. */
export function compile(ingresses: Ingress[], input: Partial<CompileInput> = {}): CompileResult {
  return compileRoutes({ ingresses, classes: [], className: 'netplane', lastGood: new Map(), defaults, ...input });
}

/** A route as `host path (type) -> backend key`, or `none`, for table-style expectations. */
export function show(route: { host: string; path: string; pathType: string; backend: { key: string } } | undefined): string {
  return route === undefined ? 'none' : `${route.host || '*'} ${route.path} ${route.pathType} -> ${route.backend.key}`;
}
