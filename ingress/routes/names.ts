// Names as Kubernetes and DNS allow them, shared by the Ingress compiler (spec.ts) and the annotation readers
// (policy.ts), and the key of a backend.

const label = '[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?';
/** A lower-case DNS name of RFC 1123 labels. */
export const dnsName = new RegExp(`^${label}(\\.${label})*$`);
/** A rule host: a DNS name, optionally `*.` first. */
export const hostName = new RegExp(`^(\\*\\.)?${label}(\\.${label})*$`);
/** Dotted-quad text, which a host name must not be. */
export const ipv4 = /^[0-9]+(\.[0-9]+){3}$/;
/** A Service name (RFC 1035 label). */
export const serviceName = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
/** A Service port name. */
export const portName = /^[a-z0-9]([-a-z0-9]{0,13}[a-z0-9])?$/;
/** A Kubernetes object name (RFC 1123 subdomain). */
export const objectName = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/** BackendRef.key: `namespace/service:port`. */
export function backendKey(namespace: string, service: string, port: number | string): string {
  return `${namespace}/${service}:${port}`;
}
