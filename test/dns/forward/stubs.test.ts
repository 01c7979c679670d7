// Stub domains: the most specific domain covering a name wins, by whole labels; other names pass on.
import { describe, expect, it } from 'vitest';
import { Forwarder } from '../../../dns/forward/forwarder.ts';
import { StubDomains } from '../../../dns/forward/stubs.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { query } from './fake-upstream.ts';

describe('StubDomains', () => {
  const fwd = (domain: string) => new Forwarder({ upstreams: [{ host: '127.0.0.1', port: 9, text: '127.0.0.1:9' }], log: silentLogger(), domain });
  const corp = fwd('corp.test');
  const lab = fwd('lab.corp.test');
  const stubs = new StubDomains([{ domain: 'corp.test', forwarder: corp }, { domain: 'lab.corp.test', forwarder: lab }]);

  it.each<[string, string | undefined]>([
    ['corp.test', 'corp.test'],
    ['www.corp.test', 'corp.test'],
    ['lab.corp.test', 'lab.corp.test'],
    ['db.lab.corp.test', 'lab.corp.test'],
    ['xcorp.test', undefined],
    ['corp.test.example', undefined],
    ['example.com', undefined],
    // An escaped dot is inside a label (found by an audit): `a\.corp` and `test` are not under corp.test.
    ['a\\.corp.test', undefined],
    ['a\\.lab.corp.test', 'corp.test'],
    ['a\\\\.corp.test', 'corp.test'],
  ])('%s → %s', (name, want) => {
    expect(stubs.find(name)?.domain).toBe(want);
  });

  it('passes names no stub domain covers', async () => {
    expect(stubs.handle(query('www.example.com'))).toBe('pass');
    await stubs.close();
  });
});
