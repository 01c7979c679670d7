// Kubernetes objects for the tests that run netplane proxy as users do, from a manifest directory
// (`netplane proxy --manifests <dir>`).
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** A Service `name` in namespace default with `spec`, and `status` when given. */
export function svc(name: string, spec: object, status?: object) {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default' }, spec, ...(status ? { status } : {}) };
}

/** The EndpointSlice `<name>-v<family>` of Service `name`: ready endpoints as [address, node name], and `ports` (default http 8080/TCP). */
export function eps(name: string, family: 4 | 6, endpoints: Array<[ip: string, node: string]>, ports: object[] = [{ name: 'http', port: 8080, protocol: 'TCP' }]) {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: `${name}-v${family}`, namespace: 'default', labels: { 'kubernetes.io/service-name': name } },
    addressType: family === 4 ? 'IPv4' : 'IPv6',
    endpoints: endpoints.map(([ip, nodeName]) => ({ addresses: [ip], nodeName, conditions: { ready: true } })),
    ports,
  };
}

/** Writes `objects` to `<dir>/cluster.yaml`, one YAML document (JSON) each; the running proxy picks the change up. */
export function writeManifests(dir: string, objects: object[]): Promise<void> {
  return writeFile(join(dir, 'cluster.yaml'), objects.map((o) => JSON.stringify(o)).join('\n---\n'));
}
