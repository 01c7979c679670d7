// Checks of the node agent's pod in deploy/ (the containers running `proxy` and `overlay` on every node): what its
// environment resolves to, through env and the ConfigMaps envFrom names, and what the containers need to run.
import { dnsComponent } from '../../dns/component.ts';
import { ingressComponent } from '../../ingress/component.ts';
import { overlayComponent } from '../../overlay/component.ts';
import { proxyComponent } from '../../proxy/component.ts';
import { clusterCIDRWarning, detectLocalProblem } from '../../proxy/plan/local.ts';
import { commonFlags } from '../../runtime/component.ts';
import { parseFlags, type FlagSpecs } from '../../runtime/flags.ts';
import { arr, obj, podSpecOf, ref, str, type Doc, type Obj, type Problem } from './checks.ts';

/** The components that run on every node on the host network, before any Service (the `kubernetes` one too) works. */
const nodeAgents = new Set(['proxy', 'overlay']);

/** The variables a container's environment has, and what the kubelet would refuse. */
interface ContainerEnv {
  /** Each variable set by env or by a ConfigMap of envFrom, with its value when it is a literal. */
  vars: Map<string, string | undefined>;
  /** Whether some envFrom source cannot be read here (a Secret, an optional ConfigMap not in deploy/). */
  open: boolean;
  /** envFrom ConfigMaps that are not in deploy/ and not optional: the kubelet does not start the container. */
  missing: string[];
}

/**
 * The environment of container `c` of workload `d`, as the kubelet makes it from envFrom (ConfigMaps of deploy/ in
 * the workload's namespace, `prefix` added to each key) and then env. The variables the kubelet adds for Services
 * (KUBERNETES_SERVICE_HOST among them) are not here: they are what this file checks is replaced.
 */
export function containerEnv(docs: Doc[], d: Doc, c: Obj): ContainerEnv {
  const out: ContainerEnv = { vars: new Map(), open: false, missing: [] };
  const ns = obj(d.body.metadata).namespace;
  for (const from of arr(c.envFrom).map(obj)) {
    const cmRef = obj(from.configMapRef);
    const name = str(cmRef.name);
    if (name === undefined) {
      out.open = true;
      continue;
    }
    const cm = docs.find((x) => x.body.kind === 'ConfigMap' && obj(x.body.metadata).name === name && obj(x.body.metadata).namespace === ns);
    if (!cm) {
      if (cmRef.optional === true) out.open = true;
      else out.missing.push(name);
      continue;
    }
    const prefix = str(from.prefix) ?? '';
    for (const [k, v] of Object.entries(obj(cm.body.data))) out.vars.set(prefix + k, typeof v === 'string' ? v : undefined);
  }
  for (const e of arr(c.env).map(obj)) {
    const name = str(e.name);
    if (name !== undefined) out.vars.set(name, typeof e.value === 'string' ? e.value : undefined);
  }
  return out;
}

/** Each container of each workload with its first argument (the netplane component it runs). */
function containers(docs: Doc[]): { d: Doc; c: Obj; name: string; component: string | undefined }[] {
  return docs.flatMap((d) => arr(podSpecOf(d)?.containers).map(obj).map((c) => ({ d, c, name: String(c.name), component: str(arr(c.args)[0]) })));
}

/**
 * For containers with envFrom (checkPodSpec looks at the others): envFrom names ConfigMaps that deploy/ has, and each
 * `$(VAR)` in command and args is set by env or by one of them — the kubelet leaves an unknown one as written.
 */
export function checkEnvFrom(docs: Doc[]): Problem[] {
  return containers(docs).flatMap(({ d, c, name }) => {
    if (c.envFrom === undefined) return [];
    const env = containerEnv(docs, d, c);
    const say = (detail: string): Problem => ({ rule: 'env-ref', at: d.at, detail: `${ref(d)}: container ${name}: ${detail}` });
    const out = env.missing.map((cm) => say(`envFrom names ConfigMap ${cm}, which is not in deploy/ (the container would not start)`));
    if (env.open) return out;
    for (const a of [...arr(c.command), ...arr(c.args)]) {
      for (const m of String(a).matchAll(/(?<!\$)\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g)) {
        if (!env.vars.has(m[1]!)) out.push(say(`$(${m[1]}) in args is set neither by env nor by an envFrom ConfigMap`));
      }
    }
    return out;
  });
}

/**
 * The node agent's containers reach the API server at an address given to them — KUBERNETES_SERVICE_HOST and
 * KUBERNETES_SERVICE_PORT from env or an envFrom ConfigMap, or a kubeconfig (--kubeconfig, KUBECONFIG) — not at the
 * `kubernetes` Service's ClusterIP the kubelet puts there by default, which only netplane's own proxy makes reachable
 * on a cluster without kube-proxy.
 */
export function checkApiServerAddress(docs: Doc[]): Problem[] {
  return containers(docs).flatMap(({ d, c, name, component }) => {
    if (component === undefined || !nodeAgents.has(component)) return [];
    const args = arr(c.args).map(String);
    const env = containerEnv(docs, d, c);
    if (args.some((a) => a === '--kubeconfig' || a.startsWith('--kubeconfig=')) || env.vars.has('KUBECONFIG')) return [];
    const unset = ['KUBERNETES_SERVICE_HOST', 'KUBERNETES_SERVICE_PORT'].filter((v) => !env.vars.has(v) || env.vars.get(v) === '');
    if (unset.length === 0) return [];
    return [{
      rule: 'apiserver-address' as const,
      at: d.at,
      detail: `${ref(d)}: container ${name} runs ${component} without ${unset.join(' and ')} from env or an envFrom ConfigMap (or a kubeconfig): it would reach the API server through the kubernetes Service's ClusterIP, which nothing programs before it on a cluster without kube-proxy`,
    }];
  });
}

/** A capability as written in a securityContext ("NET_RAW", "CAP_NET_RAW", any case), as the runtimes read it. */
const capability = (v: unknown) => String(v).toUpperCase().replace(/^CAP_/, '');

/**
 * A container running `overlay` has NET_ADMIN (links, FDB, routes, nftables) and NET_RAW, or is privileged: without
 * NET_RAW, iptables-legacy cannot open its tables ("Cannot initialize: Permission denied"), so on a host whose
 * FORWARD drop is in legacy the accept rules cannot go in. Flannel's manifest adds both. A runtime that grants
 * NET_RAW by default (containerd, Docker) hides the gap; CRI-O's default set has no NET_RAW.
 */
export function checkOverlayCapabilities(docs: Doc[]): Problem[] {
  return containers(docs).flatMap(({ d, c, name, component }) => {
    if (component !== 'overlay') return [];
    const sc = obj(c.securityContext);
    if (sc.privileged === true) return [];
    const added = new Set(arr(obj(sc.capabilities).add).map(capability));
    const lacking = added.has('ALL') ? [] : ['NET_ADMIN', 'NET_RAW'].filter((cap) => !added.has(cap));
    if (lacking.length === 0) return [];
    return [{ rule: 'capabilities' as const, at: d.at, detail: `${ref(d)}: container ${name} runs overlay without ${lacking.join(' and ')} in securityContext.capabilities.add (or privileged: true)` }];
  });
}

/** Each component's flags as `netplane COMPONENT` parses them: the common ones and its own. */
const flagSpecs = new Map<string, FlagSpecs>(
  [proxyComponent, dnsComponent, ingressComponent, overlayComponent].map((c) => [c.name, { ...commonFlags(c.defaultAdmin), ...c.flags } as FlagSpecs]),
);

/** A container's args parsed as its component parses them, or the one-line reason it would refuse them. */
function parseArgs(component: string, args: readonly string[]): { flags: Record<string, unknown> } | { error: string } | undefined {
  const specs = flagSpecs.get(component);
  if (!specs) return undefined;
  try {
    return { flags: (parseFlags(`netplane ${component}`, specs, args.slice(1)) ?? {}) as Record<string, unknown> };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

/** Each container running a netplane component has args that component accepts (else it exits at start). */
export function checkArgs(docs: Doc[]): Problem[] {
  return containers(docs).flatMap(({ d, c, name, component }) => {
    const parsed = component === undefined ? undefined : parseArgs(component, arr(c.args).map(String));
    if (!parsed || !('error' in parsed)) return [];
    return [{ rule: 'args' as const, at: d.at, detail: `${ref(d)}: container ${name}: ${parsed.error}` }];
  });
}

/**
 * A proxy in a kernel mode can tell this node's pods' traffic from the rest: --cluster-cidr, or a --detect-local-mode
 * other than ClusterCIDR with what it needs. Otherwise the proxy warns at start that none is local (clusterCIDRWarning,
 * the same words): outside connections to cluster IPs are not masqueraded, and pods reaching a Local-policy
 * load-balancer or external IP get only this node's endpoints.
 */
export function checkLocalTraffic(docs: Doc[]): Problem[] {
  return containers(docs).flatMap(({ d, c, name, component }) => {
    if (component !== 'proxy') return [];
    const parsed = parseArgs(component, arr(c.args).map(String));
    if (!parsed || 'error' in parsed) return [];
    const f = parsed.flags;
    if (f.mode === 'userspace') return [];
    const mode = f['detect-local-mode'] as Parameters<typeof clusterCIDRWarning>[0];
    const cidrs = (f['cluster-cidr'] as string[][]).flat();
    const problem = detectLocalProblem({ mode, bridge: f['pod-bridge-interface'] as string | undefined, prefix: f['pod-interface-name-prefix'] as string | undefined }) ?? clusterCIDRWarning(mode, cidrs);
    return problem ? [{ rule: 'local-traffic' as const, at: d.at, detail: `${ref(d)}: container ${name}: ${problem}` }] : [];
  });
}
