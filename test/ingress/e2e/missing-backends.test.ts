// A backend Service that is not there, or a port the Service does not have, through `netplane ingress`: its
// requests answer 503 as before, and now the gateway says so — one warning per change naming the Ingress, the
// Service and the port, and the Ingress counted in netplane_ingress_problems as partly served.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../helpers/wait.ts';
import { EchoBackend, GatewayProcess, echoOf, ingressClassYaml, serviceYaml } from './harness.ts';

/** An Ingress for `host` with Prefix paths to Service ports (a number or a name). */
function ingress(name: string, host: string, paths: [path: string, service: string, port: number | string][]): string {
  const port = (p: number | string) => (typeof p === 'number' ? `{ number: ${p} }` : `{ name: ${p} }`);
  return `---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: { name: ${name}, namespace: default }
spec:
  ingressClassName: netplane
  rules:
    - host: ${host}
      http:
        paths:
${paths.map(([p, svc, n]) => `          - { path: ${p}, pathType: Prefix, backend: { service: { name: ${svc}, port: ${port(n)} } } }`).join('\n')}
`;
}

const problem = (name: string) => new RegExp(`netplane_ingress_problems\\{namespace="default",ingress="${name}",served="partly"\\} 1`);
const lines = (gw: GatewayProcess, text: string) => gw.output.split('\n').filter((l) => l.includes(text));

describe('netplane ingress backends that do not exist', () => {
  const app = new EchoBackend('app');
  const gw = new GatewayProcess();

  beforeAll(async () => {
    await app.start();
    gw.write('base.yaml', [ingressClassYaml, serviceYaml('app', [app])].join('---\n'));
    gw.write('ing.yaml', ingress('no-svc', 'a.test', [['/', 'app', 80], ['/later', 'later', 80]]) + ingress('no-port', 'b.test', [['/', 'app', 80], ['/num', 'app', 81], ['/named', 'app', 'grpc']]));
    await gw.start([], { host: 'a.test' });
  }, 30_000);
  afterAll(async () => {
    await gw.stop();
    await app.stop();
  });

  it('answers 503 for them and serves the rest', async () => {
    expect(echoOf(await gw.get('a.test', '/')).backend).toBe('app');
    for (const [host, path] of [['a.test', '/later'], ['b.test', '/num'], ['b.test', '/named']] as const) expect((await gw.get(host, path)).status).toBe(503);
  });

  it('logs each once, naming the Ingress, the Service and the port, and counts the Ingresses as partly served', async () => {
    expect(lines(gw, 'Ingress default/no-svc: backend Service default/later does not exist')).toHaveLength(1);
    expect(lines(gw, 'Ingress default/no-port: backend Service default/app has no TCP port 81')).toHaveLength(1);
    expect(lines(gw, 'Ingress default/no-port: backend Service default/app has no TCP port named \\"grpc\\"')).toHaveLength(1);
    const metrics = await gw.metrics();
    expect(metrics).toMatch(problem('no-svc'));
    expect(metrics).toMatch(problem('no-port'));
  });

  it('drops the problem once the Service is there, and logs it again if it goes', async () => {
    gw.write('later.yaml', serviceYaml('later', [app]));
    await waitFor('the Service', async () => (await gw.get('a.test', '/later')).status === 200, 10_000, 50);
    await waitFor('the problem to go', async () => !problem('no-svc').test(await gw.metrics()), 10_000, 50);
    gw.write('later.yaml', '');
    await waitFor('the Service to go', async () => (await gw.get('a.test', '/later')).status === 503, 10_000, 50);
    await waitFor('the problem again', async () => problem('no-svc').test(await gw.metrics()), 10_000, 50);
    expect(lines(gw, 'Ingress default/no-svc: backend Service default/later does not exist')).toHaveLength(2);
  });
});
