// The block `netplane up` prints once everything answers: where each part listens and a command to try on it,
// derived from the flags `up` gives its children and from what it read in the manifests. Pure.
import type { HostPort } from '../../runtime/flags.ts';
import type { ReadyProbe } from '../../runtime/supervisor.ts';
import type { ExampleBackend, UpView } from './view.ts';

/** What the block is made from; a part is absent when `up` does not start it. */
export interface ListeningInput {
  /** The components started, in order, with their admin addresses. */
  components: ReadonlyArray<{ name: string; admin: HostPort }>;
  dns?: { listen: readonly HostPort[]; zone: string };
  ingress?: { http?: HostPort; https?: HostPort };
  proxy?: { mode: string; bindAddress: string };
  /** Undefined when the cluster comes from an API server rather than a manifests directory. */
  view?: UpView;
  /** The example backends started. */
  backends: readonly ExampleBackend[];
}

/** The lines of the block and the TCP addresses that must accept a connection (in this order) before it is printed. */
export interface ListeningBlock {
  lines: string[];
  probes: ReadyProbe[];
}

/** Builds the block; never throws. */
export function listeningBlock(input: ListeningInput): ListeningBlock {
  const lines: string[] = [];
  const probes: ReadyProbe[] = [];
  const line = (part: string, where: string, tryThis?: string) => lines.push(`${part.padEnd(8)} ${where}${tryThis ? `   try: ${tryThis}` : ''}`);
  const featured = featuredService(input.view);
  if (input.dns) {
    const { listen, zone } = input.dns;
    const name = featured ? `${featured.name}.${featured.namespace}.svc.${zone}` : `kubernetes.default.svc.${zone}`;
    const first = listen[0];
    line('dns', `udp+tcp ${listen.map(text).join(' ')}, zone ${zone}`, first && `dig @${reach(first.host)}${first.port === 53 ? '' : ` -p ${first.port}`} ${name}`);
    for (const l of listen) probes.push({ what: 'dns', host: reach(l.host), port: l.port });
  }
  if (input.ingress) {
    const { http, https } = input.ingress;
    const hosts = input.view?.hosts ?? [];
    const host = hosts.find((h) => h !== '' && !h.startsWith('*')) ?? '';
    const urls = [http && `http://${text(http)}`, https && `https://${text(https)}`].filter((u) => u);
    const via = http ?? https;
    const curl = via && `curl${via === https ? ' -k' : ''}${host ? ` -H 'Host: ${host}'` : ''} ${via === https ? 'https' : 'http'}://${reachText(via)}/`;
    line('ingress', `${urls.join(' ')}${hosts.length > 0 ? `, hosts ${hosts.map((h) => h || '(any)').join(' ')}` : ''}`, curl);
    // HTTP only: HTTPS opens right after it, and a bare connection to HTTPS counts as a failed handshake in /metrics.
    if (via) probes.push({ what: 'ingress', host: reach(via.host), port: via.port });
  }
  if (input.proxy) {
    const { mode, bindAddress } = input.proxy;
    const userspace = mode === 'userspace';
    const ports = (input.view?.ports ?? []).filter((p) => userspace || p.clusterIP !== undefined);
    const at = (p: (typeof ports)[number]) => (userspace ? join(reach(bindAddress), p.listenPort) : join(p.clusterIP!, p.servicePort));
    const shown = ports.map((p) => `${p.service}${p.portName ? `:${p.portName}` : ''} at ${at(p)}${p.protocol === 'UDP' ? '/udp' : ''}`);
    const web = ports.find((p) => p.protocol === 'TCP' && /http/.test(p.portName) && (!featured || p.service === `${featured.namespace}/${featured.name}`)) ?? ports.find((p) => p.protocol === 'TCP' && /http/.test(p.portName));
    const where = shown.length > 0 ? shown.join(', ') : userspace ? `one listener per Service port on ${bindAddress}` : 'every Service at its cluster IP';
    line('proxy', `${mode}: ${where}`, web && `curl http://${at(web)}/`);
    if (userspace) for (const p of ports) if (p.protocol === 'TCP') probes.push({ what: 'proxy', host: reach(bindAddress), port: p.listenPort });
  }
  if (input.backends.length > 0) {
    line('backends', `${input.backends.map((b) => `${b.name} ${join(b.host, b.port)}`).join(', ')} (examples/backend.ts)`);
    // First: a connection to a proxy listener is passed on to a backend, which had better be there.
    probes.unshift(...input.backends.map((b) => ({ what: b.name, host: b.host, port: b.port })));
  }
  if (input.components.length > 0) {
    const first = input.components[0]!;
    line('admin', `${input.components.map((c) => `${c.name} ${text(c.admin)}`).join(', ')} (/metrics /healthz /readyz)`, `curl http://${reachText(first.admin)}/metrics`);
    for (const c of input.components) probes.push({ what: `${c.name} admin`, host: reach(c.admin.host), port: c.admin.port });
  }
  return { lines, probes };
}

/** The Service a try line names: the one with the most endpoints (it shows the spreading best), then by key. */
function featuredService(view: UpView | undefined) {
  return view?.services.reduce<UpView['services'][number] | undefined>((best, s) => (best === undefined || s.endpoints > best.endpoints ? s : best), undefined);
}

/** A wildcard listen address is reached on loopback. */
function reach(host: string): string {
  return host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
}

function join(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

function text(hp: HostPort): string {
  return join(hp.host, hp.port);
}

function reachText(hp: HostPort): string {
  return join(reach(hp.host), hp.port);
}
