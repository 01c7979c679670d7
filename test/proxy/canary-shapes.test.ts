// The canaries' comparisons as tables: what a backend's verify() says after the kernel was changed by hand,
// against the in-memory fakes (FakeNft, FakeIptables), and that an intact kernel reads as unchanged.
import { describe, expect, it } from 'vitest';
import { IptablesBackend } from '../../proxy/iptables/backend.ts';
import { FakeNft } from '../../proxy/nftables/fake.ts';
import { NftablesBackend } from '../../proxy/nftables/backend.ts';
import { silentLogger } from '../../runtime/logger.ts';
import { FakeIptables } from './iptables/fake.ts';
import { eps as ipEps, plan as ipPlan, port as ipPort } from './iptables/plans.ts';
import { eps, plan, served } from './nftables/plans.ts';

const nftPlan = plan([served('web', eps(['10.244.1.11', '10.244.1.12']), { clusterIPs: ['10.96.0.10'], nodePort: 30080 })]);

describe('nftables canary', () => {
  const rows: Array<{ damage: string; input: string; want: RegExp | undefined }> = [
    { damage: 'nothing', input: '', want: undefined },
    { damage: 'table deleted', input: 'delete table ip netplane', want: /table ip netplane is missing/ },
    { damage: 'a rule added', input: 'add rule ip netplane services accept', want: /rules of chain services of ip netplane were changed/ },
    { damage: 'a foreign chain', input: 'add chain ip netplane intruder', want: /chain intruder of ip netplane is not netplane's/ },
  ];
  for (const r of rows) {
    it(`${r.damage} → ${r.want ?? 'unchanged'}`, async () => {
      const nft = new FakeNft();
      const backend = new NftablesBackend(nft, { log: silentLogger() });
      expect(await backend.verify()).toBeUndefined(); // nothing applied yet
      await backend.sync(nftPlan, { full: true });
      if (r.input) await nft.run('nft', ['-f', '-'], `${r.input}\n`);
      const before = nft.calls.length;
      const drift = await backend.verify();
      if (r.want) expect(drift).toMatch(r.want);
      else expect(drift).toBeUndefined();
      // One terse listing of the ruleset: no set elements are read (nft 1.0.6 reads them for `list table -t`).
      expect(nft.calls.slice(before).map((c) => c.args.join(' '))).toEqual(['-j -t list ruleset']);
    });
  }
});

describe('iptables canary', () => {
  const p = ipPlan([ipPort('web', { clusterIPs: ['10.96.0.10'], nodePort: 30080, clusterEndpoints: ipEps('10.244.1.11', '10.244.1.12') })]);
  const rows: Array<{ damage: string; input: string; want: RegExp | undefined }> = [
    { damage: 'nothing', input: '', want: undefined },
    { damage: 'PREROUTING jump deleted', input: '*nat\n-D PREROUTING -m comment --comment "netplane service portals" -j NETPLANE-SERVICES\nCOMMIT\n', want: /nat: the jumps .*-I PREROUTING 1/ },
    { damage: 'a rule appended to a netplane chain', input: '*nat\n-A NETPLANE-SERVICES -j RETURN\nCOMMIT\n', want: /nat: chain NETPLANE-SERVICES holds \d+ rules/ },
    { damage: 'a netplane chain flushed', input: '*nat\n:NETPLANE-SERVICES - [0:0]\nCOMMIT\n', want: /nat: chain NETPLANE-SERVICES holds 0 rules/ },
  ];
  for (const r of rows) {
    it(`${r.damage} → ${r.want ?? 'unchanged'}`, async () => {
      const ipt = new FakeIptables();
      const backend = new IptablesBackend(ipt, { log: silentLogger() });
      await backend.sync(p, { full: true });
      if (r.input) await ipt.run('iptables-restore', ['-w', '5', '--noflush'], r.input);
      const drift = await backend.verify();
      if (r.want) expect(drift).toMatch(r.want);
      else expect(drift).toBeUndefined();
    });
  }
});
