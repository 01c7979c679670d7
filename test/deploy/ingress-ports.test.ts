// The ingress gateway in deploy/ listens on unprivileged ports behind a Service that clients reach on 80 and 443:
// its --public-http-port and --public-https-port must name the Service's ports, or its HTTPS redirects send clients
// to a port they cannot reach and backends get the listener's port as X-Forwarded-Port.
import { describe, expect, it } from 'vitest';
import { podSpecOf, templateLabels } from './checks.ts';
import { loadTree } from './load.ts';

type Obj = Record<string, any>;

const deploy = loadTree('deploy');

/** The value of `--name` in args (`--name=value` or `--name value`). */
function flag(args: string[], name: string): string | undefined {
  const i = args.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (i === -1) return undefined;
  return args[i]!.includes('=') ? args[i]!.slice(args[i]!.indexOf('=') + 1) : args[i + 1];
}

const gateways = deploy.docs.flatMap((d) =>
  ((podSpecOf(d)?.containers as Obj[] | undefined) ?? []).filter((c) => c.args?.[0] === 'ingress').map((c) => ({ d, container: c, labels: templateLabels(d) ?? {} })),
);

describe('deploy/: the ingress gateway knows the ports its clients use', () => {
  it('runs an ingress gateway', () => {
    expect(gateways.length).toBeGreaterThan(0);
  });

  it.each(gateways.map((g) => ({ name: g.d.at, ...g })))('$name: each Service port onto a listener is its public port', ({ d, container, labels }) => {
    const args = container.args as string[];
    const namespace = (d.body.metadata as Obj).namespace;
    const seen: string[] = [];
    for (const [proto, defaultListen] of [['http', '0.0.0.0:80'], ['https', '0.0.0.0:443']] as const) {
      const listen = flag(args, proto) ?? defaultListen;
      if (listen === 'off') continue;
      const listenPort = Number(listen.slice(listen.lastIndexOf(':') + 1));
      const publicPort = Number(flag(args, `public-${proto}-port`) ?? listenPort);
      const services = deploy.docs.filter((s) => s.body.kind === 'Service' && (s.body.metadata as Obj).namespace === namespace && Object.entries((s.body.spec as Obj).selector ?? {}).every(([k, v]) => labels[k] === v));
      for (const s of services) {
        for (const p of (s.body.spec as Obj).ports as Obj[]) {
          const target = typeof p.targetPort === 'string' ? (container.ports as Obj[]).find((cp) => cp.name === p.targetPort)?.containerPort : (p.targetPort ?? p.port);
          if (target !== listenPort) continue;
          seen.push(`${proto} ${p.port}->${target}`);
          expect({ service: (s.body.metadata as Obj).name, proto, clientsUse: p.port }).toEqual({ service: (s.body.metadata as Obj).name, proto, clientsUse: publicPort });
        }
      }
    }
    // Both listeners are reached through a Service, so both were compared.
    expect(seen.map((s) => s.split(' ')[0])).toEqual(['http', 'https']);
  });
});
