// Where the API server is: --kubeconfig, else $KUBECONFIG, else the in-cluster service account.
import { KubeConfig } from '@kubernetes/client-node';

/** No way to reach an API server was given or found. */
export class KubeConfigError extends Error {
  override readonly name = 'KubeConfigError';
  readonly code = 'NETPLANE_KUBECONFIG';
}

/**
 * Loads the client configuration: the file given, else `$KUBECONFIG` (a colon-separated list is merged),
 * else the in-cluster service account. Throws KubeConfigError when none applies or the file is unusable.
 */
export function loadKubeConfig(file: string | undefined, env: NodeJS.ProcessEnv = process.env): KubeConfig {
  const kc = new KubeConfig();
  try {
    if (file) kc.loadFromFile(file);
    else if (env.KUBECONFIG) kc.loadFromDefault();
    else if (env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster();
    else throw new KubeConfigError('no cluster given: pass --manifests DIR or --kubeconfig FILE, set KUBECONFIG, or run inside a cluster');
  } catch (e) {
    if (e instanceof KubeConfigError) throw e;
    throw new KubeConfigError(`cannot load kubeconfig ${file ?? env.KUBECONFIG ?? '(in-cluster)'}: ${(e as Error).message}`, { cause: e });
  }
  if (!kc.getCurrentCluster()) throw new KubeConfigError(`kubeconfig ${file ?? env.KUBECONFIG}: no current cluster`);
  return kc;
}
