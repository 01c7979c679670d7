// The record index's own bookkeeping: PTR names written from the records when asked (an address held by several
// Services, or twice by one under two names, and released as they go), and one port map per distinct port set.
import { describe, expect, it } from 'vitest';
import { parseObject } from '../../../cluster/model/index.ts';
import { ServiceMap } from '../../../cluster/servicemap/index.ts';
import { Store } from '../../../cluster/store.ts';
import { RecordIndex } from '../../../dns/zone/records.ts';
import { service, slice } from '../../fixtures/objects.ts';

const ep = (ip: string, extra: object = {}) => ({ addresses: [ip], ...extra });

function indexOf(objects: object[]) {
  const store = new Store();
  store.apply(objects.flatMap((o) => parseObject(o)));
  const map = new ServiceMap(store, { nodeName: 'n1' });
  const index = new RecordIndex('cluster.local');
  index.update(map);
  const tracker = map.tracker();
  tracker.take();
  /** Applies writes to the store and re-indexes what changed. */
  const change = (writes: Parameters<Store['apply']>[0]) => {
    store.apply(writes);
    index.update(map, tracker.take().services);
  };
  return { store, index, change };
}

describe('the record index', () => {
  const objects = [
    service('a', { clusterIP: '10.96.0.1', ports: [{ name: 'http', port: 80 }] }),
    // 10.244.0.5 twice in a: once by address, once under a hostname (two slices, as hostNetwork pods give).
    slice('a-1', 'a', [ep('10.244.0.5'), ep('10.244.0.6')], [{ name: 'http', port: 8080 }]),
    slice('a-2', 'a', [ep('10.244.0.5', { hostname: 'host0' })], [{ name: 'http', port: 9090 }]),
    slice('a-6', 'a', [ep('fd00::5')], [{ name: 'http', port: 8080 }], { addressType: 'IPv6' }),
    service('b', { clusterIP: 'None', ports: [{ name: 'http', port: 80 }] }),
    slice('b-1', 'b', [ep('10.244.0.5'), ep('10.244.0.7')], [{ name: 'http', port: 8080 }]),
  ];

  it('names an address of several Services, and one Service twice, from the records', () => {
    const { index } = indexOf(objects);
    expect(index.namesOf('10.96.0.1')).toEqual(['a.default.svc.cluster.local']);
    expect(index.namesOf('10.244.0.5')).toEqual([
      '10-244-0-5.a.default.svc.cluster.local',
      '10-244-0-5.b.default.svc.cluster.local',
      'host0.a.default.svc.cluster.local',
    ]);
    expect(index.namesOf('fd00:0:0:0:0:0:0:5')).toEqual(['fd00--5.a.default.svc.cluster.local']);
    expect(index.namesOf('10.244.0.9')).toEqual([]);
  });

  it('drops the names of a Service that goes, and keeps the other holders of its addresses', () => {
    const { index, change } = indexOf(objects);
    change([{ kind: 'Service', key: 'default/a', object: undefined }]);
    expect(index.namesOf('10.96.0.1')).toEqual([]);
    expect(index.namesOf('10.244.0.5')).toEqual(['10-244-0-5.b.default.svc.cluster.local']);
    expect(index.namesOf('10.244.0.6')).toEqual([]);
    change([{ kind: 'Service', key: 'default/b', object: undefined }]);
    expect(index.namesOf('10.244.0.5')).toEqual([]);
    expect(index.namesOf('10.244.0.7')).toEqual([]);
  });

  it('gives endpoints with the same ports one map, and each its own numbers', () => {
    const { index } = indexOf(objects);
    const a = index.service('default', 'a')!;
    const byName = new Map(a.endpoints.map((e) => [`${e.label}@${e.ip}`, e]));
    expect(byName.get('10-244-0-5@10.244.0.5')!.ports).toBe(byName.get('10-244-0-6@10.244.0.6')!.ports);
    expect([...byName.get('10-244-0-6@10.244.0.6')!.ports]).toEqual([['http/tcp', 8080]]);
    expect([...byName.get('host0@10.244.0.5')!.ports]).toEqual([['http/tcp', 9090]]);
    expect(byName.get('host0@10.244.0.5')!.ports).not.toBe(byName.get('10-244-0-6@10.244.0.6')!.ports);
  });
});
