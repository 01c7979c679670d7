// The controller default backend's port (--default-backend-service): the Service's first port, as ingress-nginx's
// getDefaultUpstream takes Spec.Ports[0], TCP; a Service that is not there, has no port or a first port of another
// protocol is a problem of one sentence.
import { describe, expect, it } from 'vitest';
import type { ServiceInfo } from '../../../cluster/servicemap/types.ts';
import { defaultServicePort } from '../../../ingress/routes/default-service.ts';

const ref = { namespace: 'ingress-nginx', name: 'defaultbackend' };
const svc = (...ports: [number, string, string][]) => ({ ports: ports.map(([port, portName, protocol]) => ({ port, portName, protocol })) }) as unknown as ServiceInfo;
const named = 'Service ingress-nginx/defaultbackend (--default-backend-service)';

describe('defaultServicePort', () => {
  it.each<[string, ServiceInfo | undefined, ReturnType<typeof defaultServicePort>]>([
    ['the first port', svc([8080, 'http', 'TCP'], [80, 'other', 'TCP']), { namespace: 'ingress-nginx', service: 'defaultbackend', port: 8080 }],
    ['no Service', undefined, { problem: `${named} does not exist` }],
    ['no port', svc(), { problem: `${named} has no port` }],
    ['a first port that is UDP', svc([53, 'dns', 'UDP'], [80, 'http', 'TCP']), { problem: `${named}: its first port, 53, is UDP, and the default backend is reached over TCP at the first port` }],
  ])('%s', (_what, service, want) => {
    expect(defaultServicePort(ref, service)).toEqual(want);
  });
});
