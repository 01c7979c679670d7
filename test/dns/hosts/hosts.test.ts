// The hosts file as CoreDNS's hosts plugin serves it: parsing (bad lines left out with their number) and answers.
import { describe, expect, it } from 'vitest';
import { HostsHandler, parseHosts } from '../../../dns/hosts/hosts.ts';
import { query } from '../forward/fake-upstream.ts';

const text = `# static names
10.0.0.5   db.corp.example db   # two names
fd00::5    db.corp.example
10.0.0.6   Files.Corp.Example.
not-an-ip  broken.example
10.0.0.7
10.0.0.8   bad_name!.example ok.example
`;

describe('parseHosts', () => {
  it('reads names per address, lower-cased, and leaves out bad lines and names with their line number', () => {
    const { table, problems } = parseHosts(text);
    expect(Object.fromEntries(table.byName)).toEqual({
      'db.corp.example': ['10.0.0.5', 'fd00::5'],
      db: ['10.0.0.5'],
      'files.corp.example': ['10.0.0.6'],
      'ok.example': ['10.0.0.8'],
    });
    expect(table.byReverse.get('5.0.0.10.in-addr.arpa')).toEqual(['db.corp.example', 'db']);
    expect(problems).toEqual([
      { line: 5, reason: '"not-an-ip" is not an IP address' },
      { line: 6, reason: 'no name after the address' },
      { line: 7, reason: '"bad_name!.example" is not a host name' },
    ]);
  });
});

describe('HostsHandler', () => {
  const h = new HostsHandler(3600);
  h.replace(parseHosts(text).table);
  const data = (r: unknown) => (r === 'pass' ? 'pass' : (r as { rcode: string; answers: Array<{ data: string; ttl: number }> }).rcode + ' ' + (r as { answers: Array<{ data: string }> }).answers.map((a) => a.data).join(','));

  it.each([
    ['db.corp.example', 'A', 'NOERROR 10.0.0.5'],
    ['DB.corp.example', 'AAAA', 'NOERROR fd00::5'],
    ['files.corp.example', 'AAAA', 'NOERROR '],
    ['db.corp.example', 'MX', 'NOERROR '],
    ['5.0.0.10.in-addr.arpa', 'PTR', 'NOERROR db.corp.example,db'],
    ['9.0.0.10.in-addr.arpa', 'PTR', 'pass'],
    ['www.example.com', 'A', 'pass'],
  ])('%s %s → %s', (name, type, want) => {
    expect(data(h.handle(query(name, type)))).toBe(want);
  });

  it('answers class ANY as IN and passes other classes on, also for a name answered in IN before', () => {
    expect(data(h.handle(query('db.corp.example', 'A')))).toBe('NOERROR 10.0.0.5');
    expect(data(h.handle(query('db.corp.example', 'A', { qclass: 3 })))).toBe('pass');
    expect(data(h.handle(query('db.corp.example', 'A', { qclass: 255 })))).toBe('NOERROR 10.0.0.5');
  });

  it('changes its version with every new table, and answers from the new one', () => {
    const before = h.version();
    const again = new HostsHandler(60);
    again.replace(parseHosts('10.9.9.9 db.corp.example').table);
    expect(data(again.handle(query('db.corp.example', 'A')))).toBe('NOERROR 10.9.9.9');
    h.replace(parseHosts('10.9.9.9 db.corp.example').table);
    expect(h.version()).toBe(before + 1);
    expect(data(h.handle(query('db.corp.example', 'A')))).toBe('NOERROR 10.9.9.9');
  });
});

describe('entries written in the Corefile, and no_reverse', () => {
  const data = (r: unknown) => (r === 'pass' ? 'pass' : (r as { rcode: string; answers: Array<{ data: string }> }).rcode + ' ' + (r as { answers: Array<{ data: string }> }).answers.map((a) => a.data).join(','));
  const inline = parseHosts('10.0.0.9 printer.local\n10.0.0.5 db.corp.example').table;

  it('answers them before the file is read, and before the file’s own entries once it is', () => {
    const h = new HostsHandler(3600, { inline });
    expect(data(h.handle(query('printer.local', 'A')))).toBe('NOERROR 10.0.0.9');
    h.replace(parseHosts(text).table);
    expect(data(h.handle(query('printer.local', 'A')))).toBe('NOERROR 10.0.0.9');
    expect(data(h.handle(query('db.corp.example', 'A')))).toBe('NOERROR 10.0.0.5');
    expect(data(h.handle(query('5.0.0.10.in-addr.arpa', 'PTR')))).toBe('NOERROR db.corp.example,db');
    // A new file keeps them.
    h.replace(parseHosts('10.1.1.1 other.local').table);
    expect(data(h.handle(query('printer.local', 'A')))).toBe('NOERROR 10.0.0.9');
    expect(data(h.handle(query('other.local', 'A')))).toBe('NOERROR 10.1.1.1');
  });

  it('with noReverse answers no PTR, and the names still', () => {
    const h = new HostsHandler(3600, { inline, noReverse: true });
    expect(data(h.handle(query('9.0.0.10.in-addr.arpa', 'PTR')))).toBe('pass');
    expect(data(h.handle(query('printer.local', 'A')))).toBe('NOERROR 10.0.0.9');
  });
});
