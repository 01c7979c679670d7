// Which endpoints of a Service port the gateway sends to: the ready ones; when none is ready, those both serving
// and terminating (kube-proxy's fallback) — never one that is merely not ready, whose unset `serving` reads true.
import { describe, expect, it } from 'vitest';
import { parseObject } from '../../../cluster/model/index.ts';
import { ServiceMap } from '../../../cluster/servicemap/index.ts';
import { Store } from '../../../cluster/store.ts';
import { endpointsOf } from '../../../ingress/state.ts';
import { service, slice } from '../../fixtures/objects.ts';

function mapOf(endpoints: object[]): ServiceMap {
  const store = new Store();
  store.apply([service('web', { clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80, targetPort: 8080 }] }), slice('web-a', 'web', endpoints, [{ name: 'http', port: 8080 }])].flatMap((r) => parseObject(r)));
  return new ServiceMap(store, { nodeName: 'n1' });
}

const ep = (ip: string, conditions: object) => ({ addresses: [ip], conditions });

describe('endpointsOf', () => {
  it.each([
    ['ready ones only, when some are ready', [ep('10.0.0.1', { ready: true }), ep('10.0.0.2', { ready: false, serving: true, terminating: true })], ['10.0.0.1']],
    ['serving and terminating ones, when none is ready', [ep('10.0.0.1', { ready: false, serving: true, terminating: true }), ep('10.0.0.2', { ready: false })], ['10.0.0.1']],
    ['none for endpoints only not ready (serving unset reads true, but they are not terminating)', [ep('10.0.0.1', { ready: false }), ep('10.0.0.2', { ready: false, serving: true })], []],
    ['none for terminating ones that no longer serve', [ep('10.0.0.1', { ready: false, serving: false, terminating: true })], []],
  ])('%s', (_what, endpoints, ips) => {
    expect(endpointsOf(mapOf(endpoints), { namespace: 'default', service: 'web', port: 80 } as never).map((e) => e.ip)).toEqual(ips);
  });
});
