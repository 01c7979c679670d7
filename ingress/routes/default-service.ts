// The controller-wide default backend (--default-backend-service, ingress-nginx's flag of that name): a Service that
// answers the requests no Ingress takes, where netplane would answer 404 itself. As ingress-nginx's
// getDefaultUpstream: the Service's first port, its endpoints over plain HTTP. It is the last thing a request is
// matched against (table.ts match): after every rule, an Ingress's defaultBackend for its hosts, and the catch-all
// defaultBackend of an Ingress without rules. It also answers custom-http-errors for the Ingresses without a
// default-backend annotation (server/answers.ts), as ingress-nginx sends their error pages to upstream-default-backend.
import type { ServiceInfo } from '../../cluster/servicemap/types.ts';
import { backendKey } from './names.ts';
import { defaultAnnotation } from './controller-config.ts';
import { readPolicy, type PolicyDefaults } from './policy.ts';
import { IngressSpecError } from './errors.ts';
import type { BackendRef, IngressPolicy, ObjectRef, Route } from './types.ts';

/** The default backend Service's port the requests go to: its first port, as ingress-nginx takes `Spec.Ports[0]`. */
export interface DefaultService {
  namespace: string;
  service: string;
  port: number;
}

/**
 * The port of `svc` the default backend reaches: its first, which must be TCP (ingress-nginx reads that port's TCP
 * endpoints). A problem, in one sentence, when the Service is not there, has no port or its first is not TCP.
 */
export function defaultServicePort(ref: ObjectRef, svc: ServiceInfo | undefined): DefaultService | { problem: string } {
  const name = `Service ${ref.namespace}/${ref.name} (--default-backend-service)`;
  if (svc === undefined) return { problem: `${name} does not exist` };
  const first = svc.ports[0];
  if (first === undefined) return { problem: `${name} has no port` };
  if (first.protocol !== 'TCP') return { problem: `${name}: its first port, ${first.port}, is ${first.protocol}, and the default backend is reached over TCP at the first port` };
  return { namespace: ref.namespace, service: ref.name, port: first.port };
}

/**
 * The route of the default backend: any host, `/` Prefix, marked `controllerDefault`. Its policy is the controller's
 * defaults (the flags, and the controller ConfigMap's keys that are annotation defaults), as ingress-nginx's catch-all
 * location is written from them — but custom-http-errors: the default backend's own answers are never intercepted
 * (ingress-nginx writes no error_page in that location), so its 404 page is passed on, not asked for again.
 */
export function defaultServiceRoute(d: DefaultService, defaults: PolicyDefaults): Route {
  const backend: BackendRef = { namespace: d.namespace, service: d.service, port: d.port, key: backendKey(d.namespace, d.service, d.port), upstream: { protocol: 'HTTP', viaService: false } };
  return { ingress: '', namespace: '', host: '', path: '/', pathType: 'Prefix', backend, policy: defaultPolicy(d.namespace, defaults), controllerDefault: true };
}

/** The controller's default policy, without custom-http-errors; the ConfigMap's values were checked when read. */
function defaultPolicy(namespace: string, defaults: PolicyDefaults): IngressPolicy {
  const annotations = { ...defaults.annotations };
  delete annotations[defaultAnnotation('custom-http-errors')];
  try {
    return readPolicy(namespace, {}, { ...defaults, annotations }).policy;
  } catch (e) {
    // A default that cannot be read alone never takes the default backend down: the flags' defaults apply instead.
    if (!(e instanceof IngressSpecError)) throw e;
    return readPolicy(namespace, {}, { ...defaults, annotations: {} }).policy;
  }
}
