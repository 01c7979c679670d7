// Names checked as the API server checks them (k8s.io/apimachinery/pkg/util/validation), for the fields that become
// DNS names: a Service's name and namespace, spec.externalName, an endpoint's hostname. Each returns why the value
// is not allowed, or undefined when it is. And addresses written one way, so that one address is one key.
import { isIP, SocketAddress } from 'node:net';

const label1123 = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const label1035 = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const subdomain1123 = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Most characters of a label (RFC 1035 2.3.4), as IsDNS1123Label and IsDNS1035Label allow. */
export const maxLabelLength = 63;
/** Most characters of a DNS-1123 subdomain, as IsDNS1123Subdomain allows. */
export const maxSubdomainLength = 253;

/** Why `value` is not a DNS-1123 label (IsDNS1123Label: a namespace's name, an endpoint's hostname). */
export function dns1123LabelError(value: string): string | undefined {
  if (value.length > maxLabelLength) return `${JSON.stringify(value)} is ${value.length} characters; a DNS label has at most ${maxLabelLength}`;
  if (!label1123.test(value)) return `${JSON.stringify(value)} must be a DNS label: lower-case letters, digits and "-", starting and ending with a letter or digit (RFC 1123)`;
  return undefined;
}

/** Why `value` is not a DNS-1035 label (IsDNS1035Label: a Service's name, which must start with a letter). */
export function dns1035LabelError(value: string): string | undefined {
  if (value.length > maxLabelLength) return `${JSON.stringify(value)} is ${value.length} characters; a Service name is a DNS label of at most ${maxLabelLength}`;
  if (!label1035.test(value)) return `${JSON.stringify(value)} must be a DNS label: lower-case letters, digits and "-", starting with a letter and ending with a letter or digit (RFC 1035)`;
  return undefined;
}

/**
 * Why `value` is not a DNS-1123 subdomain (IsDNS1123Subdomain: dot-separated labels, at most 253 characters). As the
 * API server checks it, a label longer than 63 characters passes: such a name cannot be written in a DNS message,
 * and the DNS answer that would carry it is a SERVFAIL.
 */
export function dns1123SubdomainError(value: string): string | undefined {
  if (value.length > maxSubdomainLength) return `${JSON.stringify(value.slice(0, 40))}... is ${value.length} characters; a DNS name has at most ${maxSubdomainLength}`;
  if (!subdomain1123.test(value)) {
    return `${JSON.stringify(value)} must be a DNS name: labels of lower-case letters, digits and "-", each starting and ending with a letter or digit, separated by single dots (RFC 1123)`;
  }
  return undefined;
}

/**
 * An IPv6 address in its standard text form (RFC 5952: lower case, zeros shortened, `::ffff:1.2.3.4` kept), as
 * kube-proxy's EndpointSliceCache writes each address before comparing: `FD00:0:0::0001` and `fd00::1` are one
 * endpoint, one DNS record. Anything else is returned as it is, for the schema's own check to judge.
 */
export function canonicalIP(address: string): string {
  if (isIP(address) !== 6) return address;
  try {
    return new SocketAddress({ address, family: 'ipv6' }).address;
  } catch {
    return address;
  }
}
