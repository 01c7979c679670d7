// The node-local notrack tables as nft input: both families, several DNS ports and a health port, each table
// replaced whole; and nft itself takes the text (checked with `nft -c`, which changes nothing).
import { describe, expect, it } from 'vitest';
import { HostRunner } from '../../../runtime/exec.ts';
import { renderNotrack } from '../../../dns/local/notrack.ts';

describe('renderNotrack', () => {
  const both = renderNotrack({ ips: ['169.254.20.10', '10.96.0.10', 'fd00::a'], dnsPorts: [53, 53, 5353], tcpPorts: [8080] });

  it('keeps queries and answers of every address and DNS port out of conntrack, in the table of its family', () => {
    expect(both).toContain('table ip netplane-dns {');
    expect(both).toContain('    ip daddr { 10.96.0.10, 169.254.20.10 } udp dport { 53, 5353 } notrack');
    expect(both).toContain('    ip saddr { 10.96.0.10, 169.254.20.10 } tcp sport { 53, 5353 } notrack');
    expect(both).toContain('    ip daddr { 10.96.0.10, 169.254.20.10 } tcp dport 8080 notrack');
    expect(both).toContain('table ip6 netplane-dns {');
    expect(both).toContain('    ip6 daddr fd00::a udp dport { 53, 5353 } notrack');
    // Queries arrive in prerouting, or leave in output from a client on the node; answers leave in output.
    expect(both.match(/hook prerouting priority raw/g)).toHaveLength(2);
    expect(both.match(/hook output priority raw/g)).toHaveLength(2);
  });

  it('declares and deletes each table first, so that a family without addresses is left with none', () => {
    const v4 = renderNotrack({ ips: ['169.254.20.10'], dnsPorts: [53] });
    expect(v4.split('\n').slice(0, 2)).toEqual(['table ip netplane-dns', 'delete table ip netplane-dns']);
    expect(v4).toContain('table ip6 netplane-dns\ndelete table ip6 netplane-dns\n');
    expect(v4).not.toContain('table ip6 netplane-dns {');
    expect(v4).not.toContain('8080');
  });

  it('is taken by nft', async () => {
    await expect(new HostRunner().run('nft', ['-c', '-f', '-'], both)).resolves.toBeDefined();
  });
});
