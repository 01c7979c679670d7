// --max-tracked-clients through `netplane ingress`: addresses sprayed in X-Forwarded-For from a trusted proxy against
// several rate-limited Ingresses stay within the bound, counted in netplane_ingress_limit_clients and
// netplane_ingress_limit_client_evictions_total, and a forgotten client gets through again (sooner, never later).
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EchoBackend, ingressClassYaml, ingressYaml, serviceYaml } from '../e2e/harness.ts';
import { FixedPortGateway } from '../server/fixed-ports.ts';

const hosts = ['a.test', 'b.test', 'c.test'];
const limited = { 'nginx.ingress.kubernetes.io/limit-rpm': '1', 'nginx.ingress.kubernetes.io/limit-burst-multiplier': '0' };

/** A metric's value in the gateway's /metrics text. */
const metric = (text: string, name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);

describe('--max-tracked-clients', () => {
  const web = new EchoBackend('web');
  const gw = new FixedPortGateway(63810);

  beforeAll(async () => {
    await new Promise<void>((r) => web.server.listen(63813, '127.0.0.1', r));
    web.port = 63813;
    const ingresses = hosts.map((host) => ingressYaml({ name: host.split('.')[0]!, host, paths: [['Prefix', '/', 'web']], annotations: limited }));
    gw.write('all.yaml', [ingressClassYaml, serviceYaml('web', [web]), ...ingresses].join('\n---\n'));
    await gw.start(['--trusted-proxies', '127.0.0.1/32', '--max-tracked-clients', '20', '--access-log', 'off'], { host: 'a.test' });
  }, 30_000);

  afterAll(async () => {
    await gw.stop();
    await web.stop();
  });

  const from = (host: string, client: string) => gw.get(host, '/', { headers: { 'x-forwarded-for': client } }).then((r) => r.status);

  it('bounds the clients of all limited Ingresses together; a forgotten client gets through again', async () => {
    expect([await from('a.test', '2001:db8::1'), await from('a.test', '2001:db8::1')]).toEqual([200, 429]);
    const sprayed: number[] = [];
    for (let i = 0; i < 60; i++) sprayed.push(await from(hosts[i % 3]!, `2001:db8:1::${(i + 1).toString(16)}`));
    expect(sprayed).toEqual(sprayed.map(() => 200));
    const text = await gw.metrics();
    expect(metric(text, 'netplane_ingress_limit_clients')).toBe(20);
    // The sprayed 60, the first client and the readiness probe's 127.0.0.1, less the 20 kept.
    expect(metric(text, 'netplane_ingress_limit_client_evictions_total')).toBe(42);
    // Forgotten: allowed again, as a new client is.
    expect(await from('a.test', '2001:db8::1')).toBe(200);
    // The most recent of the spray is still tracked, so still limited.
    expect(await from(hosts[59 % 3]!, `2001:db8:1::${(60).toString(16)}`)).toBe(429);
  });

  it('a bound that is not a positive whole number is refused at start, naming the flag', () => {
    const bin = fileURLToPath(new URL('../../../bin/netplane.ts', import.meta.url));
    const r = spawnSync(process.execPath, [bin, 'ingress', '--manifests', gw.dir, '--max-tracked-clients', '0', '--http', '127.0.0.1:63814', '--https', 'off', '--admin', '127.0.0.1:63815'], { encoding: 'utf8', timeout: 10_000 });
    expect(r.status).toBe(2);
    expect(r.stderr + r.stdout).toContain('--max-tracked-clients "0": must be a whole number of at least 1');
  });
});
