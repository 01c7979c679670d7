// What every component process does before its own work: flags, logs, the cluster view, the admin server and
// shutdown. A component supplies its flags, the kinds it reads, and `run`.
import { stat } from 'node:fs/promises';
import type { Registry } from 'prom-client';
import { ManifestsSource } from '../cluster/manifests/source.ts';
import type { Kind } from '../cluster/model/index.ts';
import { defaultNodeName, parseNodeName } from '../cluster/node.ts';
import { ServiceMap } from '../cluster/servicemap/index.ts';
import type { ClusterSource } from '../cluster/source.ts';
import { Store } from '../cluster/store.ts';
import { AdminServer } from './admin.ts';
import { UsageError, usageExitCode } from './errors.ts';
import { checkListenAddresses, flagGiven, formatHelp, nonEmpty, oneOf, parseFlags, parseHostPort, valueFlag, type FlagSpecs, type FlagValues } from './flags.ts';
import { createLogger, logLevels, type Logger } from './logger.ts';
import { createRegistry, registerStoreMetrics } from './metrics.ts';
import { registerApiClientMetrics } from './api-client-metrics.ts';
import { withSettings, type FileSettings, type Reread } from './settings.ts';
import { anchorHelp, translateAnchorFlags, type AnchorFlags } from './anchor-flags.ts';
import { Shutdown } from './shutdown.ts';
import { collectBeforeReady } from './startup-gc.ts';
import { supervisedEnv } from './supervisor.ts';

/** The flags every component takes. */
export function commonFlags(defaultAdmin: string) {
  return {
    manifests: valueFlag({ value: 'DIR', help: 'read the cluster from a directory of YAML/JSON manifests (watched)', parse: nonEmpty }),
    kubeconfig: valueFlag({ value: 'FILE', help: 'read the cluster from the API server in this kubeconfig (else $KUBECONFIG, else in-cluster)', parse: nonEmpty }),
    'node-name': valueFlag({ value: 'NAME', help: 'the node this process serves (trimmed, lower-cased, as the kubelet registers it)', parse: parseNodeName, default: defaultNodeName() }),
    admin: valueFlag({ value: 'ADDR:PORT', help: 'serve /metrics, /healthz, /livez and /readyz here', parse: parseHostPort, default: parseHostPort(defaultAdmin), listens: true }),
    'log-level': valueFlag({ value: 'LEVEL', help: `log level: ${logLevels.join(', ')}`, parse: oneOf(logLevels), default: 'info' as const }),
  };
}

/** The parsed common flags. */
export type CommonFlagValues = FlagValues<ReturnType<typeof commonFlags>>;

/** What a component's `run` is given: the shared parts, already started. */
export interface ComponentContext {
  name: string;
  log: Logger;
  registry: Registry;
  store: Store;
  source: ClusterSource;
  nodeName: string;
  admin: AdminServer;
  shutdown: Shutdown;
  /** The service map for this node, created on first use. */
  serviceMap(): ServiceMap;
  /**
   * With a configuration file (`settings`): its fingerprint as read at start, and a read of it again merged with the
   * same command line (a flag written there still wins), checked as at start. Throws UsageError.
   */
  settingsFile?: { fingerprint: string | undefined; reread(): Promise<Reread> };
}

/** A component: proxy, dns, ingress or overlay. */
export interface Component<S extends FlagSpecs = FlagSpecs> {
  name: string;
  summary: string;
  /** The kinds the component reads; the source lists and watches only these. */
  kinds: Kind[];
  /**
   * Kinds read only under some flags, besides `kinds` (dns's Pods with --pods verified): other modes list none of
   * them, and the first full view and readiness do not wait for them (Store `optional`): a kind that cannot be listed
   * (no RBAC rule for it) costs only what that flag adds.
   */
  flagKinds?(flags: FlagValues<S> & CommonFlagValues): Kind[];
  /** Of those, the kinds read only by reference: just the objects the component names (see Store.want). */
  byReference?(flags: FlagValues<S> & CommonFlagValues): Kind[];
  defaultAdmin: string;
  flags: S;
  /** Starts the component's own work; resolves once it is running. Absent while the component is not built. */
  run?(ctx: ComponentContext, flags: FlagValues<S> & CommonFlagValues): Promise<void>;
  /** For a component that is not built yet: where its work is tracked. */
  notBuilt?: string;
  /**
   * Runs after the flags are parsed and before anything else starts. Returning an exit code ends the process there
   * (a one-shot command such as `proxy --cleanup`); returning undefined carries on.
   */
  before?(flags: FlagValues<S> & CommonFlagValues, log: Logger): Promise<number | undefined>;
  /**
   * Whether these flags ask for a one-shot command that reads no cluster (`proxy --cleanup`): then only the source
   * flags that are given are checked, and none is needed.
   */
  readsNoCluster?(flags: FlagValues<S> & CommonFlagValues): boolean;
  /**
   * Whether these flags make a long-running component that needs nothing from the cluster (`dns --forward-only`): it
   * then reads no kind from any source, and a source flag given is noted as unused.
   */
  needsNoCluster?(flags: FlagValues<S> & CommonFlagValues): boolean;
  /**
   * Settings from a configuration file the flags name (`proxy --config`), merged into the command line before
   * anything else reads the flags: a flag written on the command line wins (runtime/settings.ts). Throws UsageError.
   */
  settings?(flags: FlagValues<S> & CommonFlagValues, given: (flag: string) => boolean): Promise<FileSettings | undefined>;
  /**
   * The flags of the program the component replaces (kube-proxy's --proxy-mode), taken as netplane's: the command
   * line is rewritten to netplane's spellings before anything reads it (runtime/anchor-flags.ts).
   */
  anchor?: AnchorFlags;
}

/** Declares a component, keeping its flag types. */
export function defineComponent<S extends FlagSpecs>(c: Component<S>): Component<S> {
  return c;
}

/** Help text of a component. */
export function componentHelp(c: Component): string {
  const help = formatHelp(`netplane ${c.name}`, c.summary, { ...commonFlags(c.defaultAdmin), ...c.flags });
  return c.anchor === undefined ? help : `${help}\n${anchorHelp(c.anchor)}`;
}

/**
 * Parses the component's flags and runs it until SIGTERM/SIGINT. Throws UsageError for a wrong command line
 * (before anything starts); other start-up failures are logged and exit with code 1.
 */
export async function runComponent(c: Component, written: readonly string[], version: string): Promise<void> {
  const command = `netplane ${c.name}`;
  const specs = { ...commonFlags(c.defaultAdmin), ...c.flags };
  // The replaced program's spellings become netplane's first: from here on there is one command line.
  const anchor = c.anchor === undefined ? { argv: [...written], notes: [] } : translateAnchorFlags(command, specs, c.anchor, written);
  const argv = anchor.argv;
  let flags = parseFlags(command, specs, argv) as (CommonFlagValues & Record<string, unknown>) | null;
  if (flags === null) {
    process.stdout.write(componentHelp(c));
    return;
  }
  let notes: string[] = [];
  const line = flags;
  const given = (name: string) => flagGiven(line, name);
  const merge = (file: FileSettings): Reread & { flags: CommonFlagValues & Record<string, unknown> } => {
    const merged = withSettings(command, specs, argv, given, file.settings);
    const values = parseFlags(command, specs, merged.argv) as CommonFlagValues & Record<string, unknown>;
    // Two of the process's own listen flags on one address would end it at the second bind: a command line that
    // cannot work, refused before anything binds.
    checkListenAddresses(command, specs, values);
    return { flags: values, notes: [...file.notes, ...merged.notes], fingerprint: file.fingerprint };
  };
  const file = await c.settings?.(flags as never, given);
  if (file !== undefined) ({ flags, notes } = merge(file));
  else checkListenAddresses(command, specs, flags);
  const settingsFile =
    file === undefined
      ? undefined
      : {
          fingerprint: file.fingerprint,
          async reread(): Promise<Reread> {
            const again = await c.settings!(line as never, given);
            if (again === undefined) throw new UsageError(`${command}: the configuration file is no longer named`);
            return merge(again);
          },
        };
  // A fatal line ends the process: its message goes to stderr too, as one sentence, whatever --log-level says.
  const log = createLogger(c.name, flags['log-level'], undefined, (message) => {
    process.stderr.write(`${message.startsWith(command) ? message : `${command}: ${message}`}\n`);
  });
  for (const note of [...anchor.notes, ...notes]) log.warn(note);
  // The source flags are checked before the component's own checks and `before` (a privilege probe, a clean-up), so
  // that a wrong one is always a usage error and nothing runs on a command line that cannot work.
  const oneShot = c.readsNoCluster?.(flags as never) === true;
  const clusterFree = c.needsNoCluster?.(flags as never) === true;
  if (clusterFree && sourceGiven(flags)) log.warn(`${command} reads nothing from the cluster with these flags: ${flags.manifests !== undefined ? '--manifests' : flags.kubeconfig !== undefined ? '--kubeconfig' : '$KUBECONFIG'} is not used`);
  let source = clusterFree ? () => noCluster : !oneShot || sourceGiven(flags) ? await chooseSource(command, flags) : undefined;
  if (c.before) {
    const code = await c.before(flags as never, log);
    if (code !== undefined) {
      process.exitCode = code;
      return;
    }
  }
  source ??= await chooseSource(command, flags);
  const registry = createRegistry(c.name, version);
  const optional = clusterFree ? [] : (c.flagKinds?.(flags as never) ?? []);
  const kinds = clusterFree ? [] : [...c.kinds, ...optional];
  const store = new Store(kinds, { byReference: c.byReference?.(flags as never), optional });
  registerStoreMetrics(registry, store);
  const admin = new AdminServer(registry, store);
  // Bound before anything else starts: a port that cannot be had ends the process here, with one sentence.
  let bound: { host: string; port: number };
  try {
    bound = await admin.listen(flags.admin);
  } catch (e) {
    log.fatal(`${command}: cannot serve the admin endpoints on ${flags.admin.text}: ${listenProblem(e as NodeJS.ErrnoException)}`);
    process.exitCode = 1;
    return;
  }
  const shutdown = new Shutdown(log);
  shutdown.installSignalHandlers();
  if (process.env[supervisedEnv] === '1') {
    // Under `netplane up`, stdin is a pipe from the supervisor: when it closes, the supervisor is gone.
    process.stdin.on('end', () => void shutdown.run(0)).on('error', () => void shutdown.run(0));
    process.stdin.resume();
  }
  let serviceMap: ServiceMap | undefined;
  const ctx: ComponentContext = {
    name: c.name,
    log,
    registry,
    store,
    source: source(log),
    nodeName: flags['node-name'],
    admin,
    shutdown,
    serviceMap: () => (serviceMap ??= new ServiceMap(store, { nodeName: flags['node-name'] })),
    settingsFile,
  };
  if (ctx.source.apiServer !== undefined) registerApiClientMetrics(registry, ctx.source.apiServer);
  log.info({ admin: `${bound.host}:${bound.port}`, source: ctx.source.name, node: ctx.nodeName, version }, `${command} starting`);
  shutdown.add('admin server', () => admin.close());
  shutdown.add('cluster source', () => ctx.source.stop());
  shutdown.add('startup collection', collectBeforeReady(admin, log));
  store.onStatus((st) => log.info(st, st.stale ? 'cluster view is stale' : st.synced ? 'cluster view is current' : 'cluster view loading'));
  const started = performance.now();
  ctx.source.start(store).then(
    () => {
      const listing = optional.filter((k) => !store.hasSynced(k));
      const objects = Object.fromEntries(kinds.map((k) => [k, store.count(k)]));
      log.info({ ms: Math.round(performance.now() - started), objects, ...(listing.length > 0 ? { stillListing: listing } : {}) }, 'first full view loaded');
    },
    (e: Error) => {
      log.fatal({ err: e }, e.message);
      void shutdown.run(1);
    },
  );
  if (!c.run) {
    log.warn(`netplane ${c.name} is not built yet (${c.notBuilt}): this process only loads the cluster view and serves /metrics, /healthz, /livez and /readyz`);
    return;
  }
  try {
    await c.run(ctx, flags as never);
  } catch (e) {
    // Nothing may keep serving /readyz after its work failed to start: stop everything, with exit code 2 for a
    // command line the component found wrong, else 1. The fatal line's message is also the one stderr line.
    const usage = e instanceof UsageError;
    const bind = e as NodeJS.ErrnoException & { address?: string; port?: number };
    const message = usage
      ? bind.message
      : (bind.syscall === 'listen' || bind.syscall === 'bind') && bind.port !== undefined
        ? `${command}: cannot listen on ${bind.address?.includes(':') ? `[${bind.address}]` : bind.address}:${bind.port}: ${listenProblem(bind)}`
        : `${command} could not start: ${bind.message}`;
    log.fatal({ err: e }, message);
    await shutdown.run(usage ? usageExitCode : 1);
  }
}

/** Why a port could not be bound, in words, with the error code. */
export function listenProblem(e: NodeJS.ErrnoException): string {
  const words: Record<string, string> = {
    EADDRINUSE: 'address in use',
    // A capability a pod adds reaches a process that is not root only through the binary's own file capabilities,
    // which node has none of; the sysctl is per network namespace, one a pod may set (securityContext.sysctls).
    EACCES: 'permission denied (a port below 1024 needs root, or net.ipv4.ip_unprivileged_port_start at or below it, which a pod sets in securityContext.sysctls)',
    EADDRNOTAVAIL: 'no such address on this host',
  };
  const said = e.code !== undefined ? words[e.code] : undefined;
  return said !== undefined ? `${said} (${e.code})` : (e.code ?? e.message);
}

/** The source of a component that reads nothing from the cluster: its store of no kinds is synced at once. */
const noCluster: ClusterSource = {
  name: 'none',
  start: async (store) => store.markNothingToRead(),
  stop: async () => {},
};

/** Whether a source is named: --manifests, --kubeconfig or $KUBECONFIG (else only the in-cluster one is left). */
export function sourceGiven(flags: SourceFlags, env: NodeJS.ProcessEnv = process.env): boolean {
  return flags.manifests !== undefined || flags.kubeconfig !== undefined || !!env.KUBECONFIG;
}

/** The flags that choose the cluster source. */
export type SourceFlags = Pick<CommonFlagValues, 'manifests' | 'kubeconfig'>;

/**
 * Picks the source from the flags (`netplane up` checks its own with it); a wrong or missing choice is a UsageError:
 * both flags, a --manifests that is no directory, a kubeconfig that cannot be loaded.
 */
export async function chooseSource(command: string, flags: SourceFlags): Promise<(log: Logger) => ClusterSource> {
  if (flags.manifests && flags.kubeconfig) throw new UsageError(`${command}: give --manifests or --kubeconfig, not both`);
  if (flags.manifests) {
    const dir = flags.manifests;
    const info = await stat(dir).catch(() => undefined);
    if (!info) throw new UsageError(`${command}: --manifests ${JSON.stringify(dir)}: no such directory`);
    if (!info.isDirectory()) throw new UsageError(`${command}: --manifests ${JSON.stringify(dir)}: not a directory`);
    return (log) => new ManifestsSource(dir, { log });
  }
  // Loaded only when used: the client library takes most of a second to import, and manifests mode needs none of it.
  const { KubeConfigError, loadKubeConfig } = await import('../cluster/kubernetes/config.ts');
  const { KubernetesSource } = await import('../cluster/kubernetes/source.ts');
  try {
    const kc = loadKubeConfig(flags.kubeconfig);
    return (log) => new KubernetesSource(kc, { log });
  } catch (e) {
    if (e instanceof KubeConfigError) throw new UsageError(`${command}: ${e.message}`, { cause: e });
    throw e;
  }
}
