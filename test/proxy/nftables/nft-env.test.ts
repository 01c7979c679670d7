// nft loads and lists whole tables with glibc's heap on transparent huge pages (proxy/nftables/nft-env.ts), unless
// the host sets GLIBC_TUNABLES itself; the options reach the child process.
import { describe, expect, it } from 'vitest';
import { NftablesBackend } from '../../../proxy/nftables/backend.ts';
import { FakeNft } from '../../../proxy/nftables/fake.ts';
import { nftRunOptions, nftTunables } from '../../../proxy/nftables/nft-env.ts';
import { HostRunner } from '../../../runtime/exec.ts';
import { silentLogger } from '../../../runtime/logger.ts';
import { smallPlan } from './plans.ts';

describe('the environment nft runs in', () => {
  it('loads and reads tables with the heap tunables; a deletion of a table needs none', async () => {
    const fake = new FakeNft();
    const backend = new NftablesBackend(fake, { log: silentLogger() });
    await backend.sync(smallPlan, { full: true });
    await backend.cleanup();
    const byCommand = new Map(fake.calls.map((c) => [c.args.join(' '), c.env]));
    expect(byCommand.get('-f -')).toEqual({ GLIBC_TUNABLES: nftTunables });
    expect(byCommand.get('-j list table ip netplane')).toEqual({ GLIBC_TUNABLES: nftTunables });
    expect(byCommand.get('-j list table ip6 netplane')).toEqual({ GLIBC_TUNABLES: nftTunables });
    expect(byCommand.has('delete table ip netplane')).toBe(true);
    expect(byCommand.get('delete table ip netplane')).toBeUndefined();
  });

  it("leaves a host's own GLIBC_TUNABLES alone", () => {
    expect(nftRunOptions({ GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' })).toEqual({});
    expect(nftRunOptions({})).toEqual({ env: { GLIBC_TUNABLES: nftTunables } });
  });

  it('HostRunner adds the env to its own for the child, and leaves it out of the next command', async () => {
    const host = new HostRunner();
    const path = process.env.PATH ?? '';
    const withEnv = await host.run('sh', ['-c', 'printf "%s|%s" "$GLIBC_TUNABLES" "$PATH"'], undefined, { env: { GLIBC_TUNABLES: nftTunables } });
    expect(withEnv.stdout).toBe(`${nftTunables}|${path}`);
    const without = await host.run('sh', ['-c', 'printf "%s" "${GLIBC_TUNABLES-unset}"']);
    expect(without.stdout).toBe(process.env.GLIBC_TUNABLES ?? 'unset');
  });
});
