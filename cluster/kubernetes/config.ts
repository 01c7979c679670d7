// Where the API server is: --kubeconfig, else $KUBECONFIG, else the in-cluster service account.
import { existsSync } from 'node:fs';
import { delimiter } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';

/** No way to reach an API server was given or found. */
export class KubeConfigError extends Error {
  override readonly name = 'KubeConfigError';
  readonly code = 'NETPLANE_KUBECONFIG';
}

/**
 * Loads the client configuration: the file given, else `$KUBECONFIG` (a list merged as kubectl merges it), else
 * the in-cluster service account. Throws KubeConfigError, with one line, when none applies or a file is unusable.
 */
export function loadKubeConfig(file: string | undefined, env: NodeJS.ProcessEnv = process.env): KubeConfig {
  let kc = new KubeConfig();
  try {
    if (file) kc.loadFromFile(file);
    else if (env.KUBECONFIG) kc = mergeKubeConfigs(env.KUBECONFIG);
    else if (env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster();
    else throw new KubeConfigError('no cluster given: pass --manifests DIR or --kubeconfig FILE, set KUBECONFIG, or run inside a cluster');
  } catch (e) {
    if (e instanceof KubeConfigError) throw e;
    // A YAML error's message goes on with an excerpt of the file; its first line names the line and column.
    const reason = (e as Error).message.split('\n')[0]!.trim();
    throw new KubeConfigError(`cannot load kubeconfig ${file ?? env.KUBECONFIG ?? '(in-cluster)'}: ${reason}`, { cause: e });
  }
  if (!kc.getCurrentCluster()) throw new KubeConfigError(`kubeconfig ${file ?? env.KUBECONFIG}: no current cluster`);
  return kc;
}

/**
 * Merges a `KUBECONFIG` list as client-go does: empty entries and missing files are skipped, the first file to set a
 * cluster, user or context name (or current-context) wins. The client library instead fails on a missing file and
 * on a name set twice.
 */
function mergeKubeConfigs(list: string): KubeConfig {
  const files = list.split(delimiter).filter((f) => f !== '' && existsSync(f));
  if (files.length === 0) throw new KubeConfigError(`KUBECONFIG ${list}: none of its files exists`);
  const merged = { clusters: new Map(), users: new Map(), contexts: new Map(), currentContext: '' };
  for (const f of files) {
    const one = new KubeConfig();
    // Each file on its own, so that relative certificate paths resolve against that file's directory.
    one.loadFromFile(f);
    for (const c of one.clusters) if (!merged.clusters.has(c.name)) merged.clusters.set(c.name, c);
    for (const u of one.users) if (!merged.users.has(u.name)) merged.users.set(u.name, u);
    for (const c of one.contexts) if (!merged.contexts.has(c.name)) merged.contexts.set(c.name, c);
    merged.currentContext ||= one.currentContext ?? '';
  }
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [...merged.clusters.values()],
    users: [...merged.users.values()],
    contexts: [...merged.contexts.values()],
    currentContext: merged.currentContext,
  });
  return kc;
}
