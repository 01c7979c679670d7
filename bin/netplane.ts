#!/usr/bin/env node
// The one command line: netplane <proxy|dns|ingress|overlay|up|lab> [flags].
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dnsComponent } from '../dns/component.ts';
import { nodeCacheFlags, startsAsNodeCache, withNodeCacheDefaults } from '../dns/node-cache-flags.ts';
import { ingressComponent } from '../ingress/component.ts';
import { overlayComponent } from '../overlay/component.ts';
import { proxyComponent } from '../proxy/component.ts';
import { chooseSource, commonFlags, runComponent, sourceGiven, type Component } from '../runtime/component.ts';
import { UsageError, usageExitCode } from '../runtime/errors.ts';
import { formatHelp, listFlag, oneOf, parseFlags, parseHostPort, switchFlag, valueFlag } from '../runtime/flags.ts';
import { proxyModes, type ProxyMode } from '../proxy/backends.ts';
import { supervise } from '../runtime/supervisor.ts';
import { listeningBlock } from './up/listening.ts';
import { readUpView } from './up/view.ts';

const version: string = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version;
const components: readonly Component[] = [proxyComponent, dnsComponent, ingressComponent, overlayComponent];
const byName = new Map(components.map((c) => [c.name, c]));
// The anchors' programs by the name their manifests start them with (the last part of the path): ingress-nginx's
// chart and static manifests give `args: [/nginx-ingress-controller, --flags...]` to the image's entry point;
// kube-proxy's and Flannel's DaemonSets set `command: [/usr/local/bin/kube-proxy]`, `[/opt/bin/flanneld]`, which the
// image links to bin/anchor, which starts this under the program's name.
const anchorPrograms = new Map<string, Component>([
  ['kube-proxy', proxyComponent],
  ['coredns', dnsComponent],
  ['nginx-ingress-controller', ingressComponent],
  ['flanneld', overlayComponent],
]);
// NodeLocal DNSCache's node-cache is netplane dns on node-cache's flags (its image starts /node-cache, so its
// DaemonSet gives the flags alone, -localip first), with node-cache's defaults for what they leave out.
const nodeCache = { ...dnsComponent, anchor: nodeCacheFlags() } as Component;
// CoreDNS's image starts /coredns itself, so a CoreDNS Deployment gives its flags alone: `args: [-conf, /etc/coredns/Corefile]`.
const corednsFirstFlag = /^--?(conf|dns\.port)(=|$)/;

/**
 * The component a command line asks for, by its name or its anchor's, with the flags it gives; undefined when
 * `argv` starts with no component.
 */
function componentCommand(argv: readonly string[]): { component: Component; flags: readonly string[] } | undefined {
  const [first = '', ...rest] = argv;
  const name = first.slice(first.lastIndexOf('/') + 1);
  if (name === 'node-cache') return { component: nodeCache, flags: withNodeCacheDefaults(rest) };
  if (startsAsNodeCache(first)) return { component: nodeCache, flags: withNodeCacheDefaults(argv) };
  const program = byName.get(first) ?? anchorPrograms.get(name);
  if (program !== undefined) return { component: program, flags: rest };
  if (corednsFirstFlag.test(first)) return { component: dnsComponent, flags: argv };
  return undefined;
}

const exampleBackend = fileURLToPath(new URL('../examples/backend.ts', import.meta.url));

const usage = `Usage: netplane <command> [flags]

The service-networking data plane of a Kubernetes cluster.

Commands:
  proxy     ${proxyComponent.summary}
  dns       ${dnsComponent.summary}
  ingress   ${ingressComponent.summary}
  overlay   ${overlayComponent.summary}
  up        Runs several components as child processes, each line of their logs prefixed with its name.
  lab       Builds a cluster in network namespaces on this machine: up, status, restart, down (root).

Run "netplane <command> --help" for the flags of a command. "netplane --version" prints the version.

Started as kube-proxy, coredns, node-cache, nginx-ingress-controller or flanneld (the command a path ending in that
name, or the image's links to bin/anchor), or with CoreDNS's -conf or node-cache's -localip first, netplane runs
proxy, dns, ingress or overlay, and reads that program's flags.
`;

function upFlags() {
  const { manifests, kubeconfig, 'node-name': nodeName, 'log-level': logLevel } = commonFlags('127.0.0.1:0');
  return {
    manifests,
    // `up` runs on a workstation: it takes no in-cluster configuration.
    kubeconfig: { ...kubeconfig, help: 'read the cluster from the API server in this kubeconfig (else $KUBECONFIG)' },
    'node-name': nodeName,
    'log-level': logLevel,
    'proxy-mode': valueFlag({
      value: 'MODE',
      help: `the proxy's --mode; userspace needs no privileges and leaves the host's firewall alone`,
      parse: oneOf(proxyModes),
      default: 'userspace' as ProxyMode,
    }),
    component: listFlag({
      value: 'NAME',
      help: `a component to start: ${components.map((c) => c.name).join(', ')}`,
      parse: oneOf(components.map((c) => c.name)),
      default: components.map((c) => c.name),
    }),
    'example-backends': switchFlag('with --manifests: run examples/backend.ts on every TCP endpoint on a loopback address (the quick start\'s "pods")'),
  };
}

// Where `up` has its children listen: loopback only, ports above 1024, so it needs no privileges.
const upListen = { dns: parseHostPort('127.0.0.1:5353'), http: parseHostPort('127.0.0.1:8080'), https: parseHostPort('127.0.0.1:8443'), bindAddress: '127.0.0.1' };

async function up(argv: readonly string[]): Promise<number> {
  const specs = upFlags();
  const flags = parseFlags('netplane up', specs, argv);
  if (flags === null) {
    process.stdout.write(formatHelp('netplane up', 'Runs components as separate child processes; Ctrl-C stops them all.', specs));
    return 0;
  }
  if (!sourceGiven(flags)) {
    throw new UsageError('netplane up: give --manifests DIR or --kubeconfig FILE');
  }
  // Checked here as each component checks it, so that a wrong source stops `up` before any child starts.
  await chooseSource('netplane up', flags);
  const childArgs = [
    ...(flags.manifests ? ['--manifests', flags.manifests] : []),
    ...(flags.kubeconfig ? ['--kubeconfig', flags.kubeconfig] : []),
    '--node-name', flags['node-name'],
    '--log-level', flags['log-level'],
  ];
  const chosen = [...new Set(flags.component)].map((n) => byName.get(n)!);
  const started = new Set(chosen.map((c) => c.name));
  if (flags['example-backends'] && !flags.manifests) throw new UsageError('netplane up: --example-backends needs --manifests DIR (the backends are the loopback endpoints found there)');
  const view = flags.manifests ? await readUpView(flags.manifests, flags['node-name'], ingressComponent.flags['ingress-class'].default) : undefined;
  const backends = flags['example-backends'] ? (view?.backends ?? []) : [];
  // Each admin server at its component's default port, on loopback (the ingress's default is every address).
  const admin = (c: (typeof chosen)[number]) => parseHostPort(`127.0.0.1:${parseHostPort(c.defaultAdmin).port}`);
  const block = listeningBlock({
    components: chosen.map((c) => ({ name: c.name, admin: admin(c) })),
    ...(started.has('dns') ? { dns: { listen: [upListen.dns], zone: dnsComponent.flags.zone.default } } : {}),
    ...(started.has('ingress') ? { ingress: { http: upListen.http, https: upListen.https } } : {}),
    ...(started.has('proxy') ? { proxy: { mode: flags['proxy-mode'], bindAddress: upListen.bindAddress } } : {}),
    ...(view ? { view } : {}),
    backends,
  });
  return supervise({
    bin: fileURLToPath(import.meta.url),
    components: chosen.map((c) => ({ ...c, defaultAdmin: admin(c).text })),
    childArgs,
    extraArgs: {
      proxy: ['--mode', flags['proxy-mode'], '--bind-address', upListen.bindAddress],
      dns: ['--listen', upListen.dns.text],
      ingress: ['--http', upListen.http.text, '--https', upListen.https.text, '--admin', admin(ingressComponent).text],
    },
    processes: backends.map((b) => {
      const listen = b.host.includes(':') ? `[${b.host}]:${b.port}` : `${b.host}:${b.port}`;
      return { name: b.name, script: exampleBackend, args: ['--name', b.name, '--listen', listen], what: `example backend on http://${listen}` };
    }),
    ready: block,
  });
}

async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    // Asked for, the usage goes to stdout; as the answer to a missing command, to stderr.
    (command === undefined ? process.stderr : process.stdout).write(usage);
    return command === undefined ? usageExitCode : 0;
  }
  if (command === '--version' || command === 'version') {
    process.stdout.write(`netplane ${version}\n`);
    return 0;
  }
  const chosen = componentCommand(argv);
  if (chosen) {
    await runComponent(chosen.component, chosen.flags, version);
    return process.exitCode === undefined ? 0 : Number(process.exitCode);
  }
  if (command === 'up') return up(rest);
  if (command === 'lab') {
    // Loaded only for this command: the components never need it.
    const { labCommand } = await import('../lab/cli.ts');
    return labCommand(rest);
  }
  throw new UsageError(`netplane: unknown command ${JSON.stringify(command)}; commands are proxy, dns, ingress, overlay, up, lab (see netplane --help)`);
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== 0) process.exitCode = code;
  },
  (e: unknown) => {
    if (e instanceof UsageError) {
      process.stderr.write(`${e.message}\n`);
      process.exitCode = usageExitCode;
      return;
    }
    process.stderr.write(`netplane: ${(e as Error).stack ?? String(e)}\n`);
    process.exitCode = 1;
  },
);
