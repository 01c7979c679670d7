// The entries of ingress-nginx's TCP and UDP services ConfigMaps (--tcp-services-configmap, --udp-services-configmap):
// each key is the port the gateway listens on, each value `NAMESPACE/SERVICE:PORT[:PROXY][:PROXY]`, PORT the
// Service port's number or name. For TCP the first PROXY reads a PROXY protocol header from each client, the second
// sends one to the endpoint; as in ingress-nginx a PROXY field is read in any case, and an empty third field asks
// for the second alone (`ns/db:5432::PROXY`). A pure parser: a bad entry is a problem naming its key and why, and
// every other entry stands. Stricter than ingress-nginx where it would pass a bad entry on to nginx and fail the
// whole reload (port 0, 70000, `-1`), or silently drop a misspelt field (`PROXI`); milder where a value's
// surrounding white space (a YAML block scalar's last newline) would make it name no port at all.

/** The transport of a ConfigMap's entries. */
export type StreamProtocol = 'TCP' | 'UDP';

/** One served entry. */
export interface StreamEntry {
  protocol: StreamProtocol;
  /** The port the gateway listens on (the ConfigMap key). */
  port: number;
  namespace: string;
  service: string;
  /** The Service port: its number, or its name. */
  servicePort: number | string;
  /** TCP: read a PROXY protocol header (v1 or v2) from each client first. */
  decode: boolean;
  /** TCP: send a PROXY protocol v1 header to the endpoint first. */
  encode: boolean;
}

/** Why an entry is not served: the `reason` label of netplane_ingress_stream_refused_entries. */
export type StreamRefusal = 'bad-port' | 'bad-value' | 'reserved-port' | 'cannot-bind';

/** A ConfigMap entry that is not served, or served with a warning (`refused` absent). */
export interface StreamProblem {
  /** The ConfigMap key. */
  key: string;
  reason: string;
  refused?: StreamRefusal;
}

/** What a ConfigMap's data comes to. */
export interface StreamEntries {
  /** Sorted by port. */
  entries: StreamEntry[];
  problems: StreamProblem[];
}

// A namespace is a DNS-1123 label; a Service name a DNS-1035 label (the API server refuses other names).
const namespaceShape = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const serviceShape = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
// A Service port's name: a DNS-1123 label with at least one letter (all digits is a number).
const portNameShape = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const digits = /^[0-9]+$/;

/** A port number as a ConfigMap writes one: decimal, 1 to 65535, no sign or leading zero; undefined otherwise. */
function portNumber(raw: string): number | undefined {
  if (!digits.test(raw) || (raw.length > 1 && raw.startsWith('0')) || raw.length > 5) return undefined;
  const n = Number(raw);
  return n >= 1 && n <= 65535 ? n : undefined;
}

/**
 * Reads one ConfigMap's data. `reserved` maps the TCP ports the gateway itself listens on (--http, --https, the
 * admin port) to what listens there; a TCP entry on one of them is refused, as ingress-nginx refuses its own ports.
 */
export function parseStreamEntries(data: Readonly<Record<string, string>> | undefined, protocol: StreamProtocol, reserved: ReadonlyMap<number, string> = new Map()): StreamEntries {
  const entries: StreamEntry[] = [];
  const problems: StreamProblem[] = [];
  for (const [key, raw] of Object.entries(data ?? {})) {
    const port = portNumber(key);
    if (port === undefined) {
      problems.push({ key, reason: `key ${JSON.stringify(key)} is not a port number from 1 to 65535 (written without sign or leading zeros)`, refused: 'bad-port' });
      continue;
    }
    // The gateway's own ports are TCP's: a UDP entry on one of those numbers takes nothing of the gateway's.
    const taken = protocol === 'TCP' ? reserved.get(port) : undefined;
    if (taken !== undefined) {
      problems.push({ key, reason: `port ${port} is ${taken}'s`, refused: 'reserved-port' });
      continue;
    }
    const read = parseValue(raw.trim(), protocol);
    if ('problem' in read) {
      problems.push({ key, reason: `value ${JSON.stringify(raw)}: ${read.problem}`, refused: 'bad-value' });
      continue;
    }
    entries.push({ protocol, port, ...read.entry });
    if (read.note !== undefined) problems.push({ key, reason: read.note });
  }
  entries.sort((a, b) => a.port - b.port);
  return { entries, problems };
}

const shape = 'must be NAMESPACE/SERVICE:PORT[:PROXY][:PROXY], PORT the Service port number or name';

function parseValue(value: string, protocol: StreamProtocol): { entry: Omit<StreamEntry, 'protocol' | 'port'>; note?: string } | { problem: string } {
  const fields = value.split(':');
  if (fields.length < 2 || fields.length > 4) return { problem: shape };
  const [ref = '', portField = '', first = '', second = ''] = fields;
  const slash = ref.indexOf('/');
  if (slash === -1) return { problem: `${shape}; the Service's namespace is missing` };
  const namespace = ref.slice(0, slash);
  const service = ref.slice(slash + 1);
  if (!namespaceShape.test(namespace)) return { problem: `namespace ${JSON.stringify(namespace)} is not a Kubernetes namespace name (lower-case letters, digits and "-", at most 63)` };
  if (!serviceShape.test(service)) return { problem: `Service name ${JSON.stringify(service)} is not a Kubernetes Service name (a lower-case letter, then lower-case letters, digits and "-", at most 63)` };
  let servicePort: number | string;
  if (digits.test(portField)) {
    const n = portNumber(portField);
    if (n === undefined) return { problem: `Service port ${portField} is not a port number from 1 to 65535` };
    servicePort = n;
  } else if (portNameShape.test(portField)) servicePort = portField;
  else return { problem: `Service port ${JSON.stringify(portField)} is neither a port number nor a port name (lower-case letters, digits and "-")` };
  for (const [i, f] of [first, second].entries()) {
    if (f !== '' && f.toUpperCase() !== 'PROXY') return { problem: `the ${i === 0 ? 'third' : 'fourth'} field is ${JSON.stringify(f)}: it may only be PROXY or empty` };
  }
  const decode = first !== '';
  const encode = second !== '';
  // As ingress-nginx, which reads PROXY for TCP only: the entry is served, the fields are not.
  if (protocol === 'UDP' && (decode || encode)) return { entry: { namespace, service, servicePort, decode: false, encode: false }, note: 'PROXY does not apply to UDP and is ignored, as ingress-nginx ignores it' };
  return { entry: { namespace, service, servicePort, decode, encode } };
}

/** `namespace/service:port`, how logs and metrics name an entry's target. */
export function targetText(e: Pick<StreamEntry, 'namespace' | 'service' | 'servicePort'>): string {
  return `${e.namespace}/${e.service}:${e.servicePort}`;
}
