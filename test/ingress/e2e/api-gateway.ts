// `netplane ingress --kubeconfig` against the test API server, for the e2e tests that read the Kubernetes API: the
// API server, a backend `web` behind Service `web`, and the gateway, bound to a describe block.
import { parseAllDocuments } from 'yaml';
import { afterAll, beforeAll } from 'vitest';
import { TestApiServer } from '../../apiserver/server.ts';
import { EchoBackend, GatewayProcess, ingressClassYaml, serviceYaml } from './harness.ts';

/** The API server, the backend and the gateway of a describe block. */
export interface ApiGateway {
  readonly web: EchoBackend;
  readonly gw: GatewayProcess;
  /** The test API server; there once the block's beforeAll has started it. */
  readonly api: TestApiServer;
  /** Applies every document of `yaml` to the API server. */
  apply(yaml: string): void;
}

/**
 * Before the block's tests: starts `web` and the API server, applies the IngressClass `netplane` and Service `web`,
 * then runs `seed`, and starts the gateway reading the API until `host` is routed. After them: stops all three.
 */
export function apiGateway(host: string, seed: (k: ApiGateway) => Promise<void> | void): ApiGateway {
  let api: TestApiServer | undefined;
  const k: ApiGateway = {
    web: new EchoBackend('web'),
    gw: new GatewayProcess(),
    get api() {
      if (api === undefined) throw new Error('the test API server is not started yet');
      return api;
    },
    apply: (yaml) => parseAllDocuments(yaml).map((d) => d.toJSON() as object).filter(Boolean).forEach((o) => k.api.apply(o)),
  };
  beforeAll(async () => {
    await k.web.start();
    api = await TestApiServer.start();
    k.apply(ingressClassYaml);
    k.apply(serviceYaml('web', [k.web]));
    await seed(k);
    k.gw.sourceArgs = ['--kubeconfig', await api.kubeconfigPath()];
    await k.gw.start([], { host });
  }, 30_000);
  afterAll(async () => {
    await k.gw.stop();
    await k.web.stop();
    await api?.close();
  });
  return k;
}
