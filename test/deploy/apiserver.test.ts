// The node agent's API server address: the environment the kubelet gives the proxy and overlay containers of
// deploy/daemonset.yaml, read by netplane's in-cluster configuration, points at deploy/apiserver.yaml's address and
// not at the `kubernetes` Service's ClusterIP (which only netplane's own proxy programs on a cluster without kube-proxy).
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadKubeConfig } from '../../cluster/kubernetes/config.ts';
import { arr, obj, podSpecOf } from './checks.ts';
import { loadTree } from './load.ts';
import { containerEnv } from './node-checks.ts';

const deploy = loadTree('deploy');
const daemonSet = deploy.docs.find((d) => d.body.kind === 'DaemonSet' && obj(d.body.metadata).name === 'netplane-node')!;
const configMap = deploy.docs.find((d) => d.body.kind === 'ConfigMap' && obj(d.body.metadata).name === 'netplane-apiserver');

/** What the kubelet adds to every container for the `kubernetes` Service (its ClusterIP, port 443). */
const serviceEnv = { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443', KUBERNETES_PORT: 'tcp://10.96.0.1:443' };

/**
 * A container's environment as the kubelet makes it (makeEnvironmentVariables): envFrom, then env, then the Service
 * variables for the names neither set.
 */
function kubeletEnv(component: string): Record<string, string> {
  const c = arr(podSpecOf(daemonSet)?.containers).map(obj).find((x) => arr(x.args)[0] === component)!;
  const own = Object.fromEntries([...containerEnv(deploy.docs, daemonSet, c).vars].map(([k, v]) => [k, v ?? '(from a field)']));
  return { ...serviceEnv, ...own };
}

describe('the node agent and the API server address', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'netplane-deploy-'));
    const mounted = join(root, 'var/run/secrets/kubernetes.io/serviceaccount');
    await mkdir(mounted, { recursive: true });
    await writeFile(join(mounted, 'token'), 'token');
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('deploy/apiserver.yaml holds a placeholder host that can never resolve (.invalid) and a port', () => {
    const data = obj(configMap?.body.data);
    expect(String(data.KUBERNETES_SERVICE_HOST)).toMatch(/\.invalid$/);
    expect(data.KUBERNETES_SERVICE_PORT).toMatch(/^\d+$/);
  });

  it.each(['proxy', 'overlay'])("%s's in-cluster configuration talks to the ConfigMap's address, not the kubernetes Service's ClusterIP", (component) => {
    const data = obj(configMap?.body.data);
    const kc = loadKubeConfig(undefined, kubeletEnv(component), { inClusterRoot: root });
    expect(kc.getCurrentCluster()?.server).toBe(`https://${String(data.KUBERNETES_SERVICE_HOST)}:${String(data.KUBERNETES_SERVICE_PORT)}`);
  });

  it('an IPv6 address set there is bracketed in the server URL', () => {
    const kc = loadKubeConfig(undefined, { ...kubeletEnv('proxy'), KUBERNETES_SERVICE_HOST: 'fd00::10' }, { inClusterRoot: root });
    expect(kc.getCurrentCluster()?.server).toBe('https://[fd00::10]:6443');
  });
});
