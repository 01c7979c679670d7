// Flannel's subnet.env as netplane writes it for the flannel CNI plugin: the text, the covering network when no
// --cluster-cidr is given, and the file replaced whole only when it changes.
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { coveringCIDRs, renderSubnetEnv, SubnetFile } from '../../overlay/subnet-file.ts';

describe('renderSubnetEnv', () => {
  it.each([
    [
      'IPv4',
      { networks: ['10.244.0.0/16'], subnet4: '10.244.1.0/24', mtu: 1450, ipMasq: true },
      'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n',
    ],
    [
      'dual-stack, networks given in any order',
      { networks: ['fd00:244::/48', '10.244.0.0/16', '10.245.0.0/16'], subnet4: '10.244.1.0/24', subnet6: 'fd00:244:1::/64', mtu: 1430, ipMasq: true },
      'FLANNEL_NETWORK=10.244.0.0/16,10.245.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_IPV6_NETWORK=fd00:244::/48\nFLANNEL_IPV6_SUBNET=fd00:244:1::1/64\nFLANNEL_MTU=1430\nFLANNEL_IPMASQ=true\n',
    ],
    [
      'IPv6 only',
      { networks: ['fd00:244::/48'], subnet6: 'fd00:244:1::/64', mtu: 1430, ipMasq: false },
      'FLANNEL_IPV6_NETWORK=fd00:244::/48\nFLANNEL_IPV6_SUBNET=fd00:244:1::1/64\nFLANNEL_MTU=1430\nFLANNEL_IPMASQ=false\n',
    ],
    [
      'a family without a cluster network falls back to the subnet itself',
      { networks: [], subnet4: '10.244.1.0/24', mtu: 1450, ipMasq: true },
      'FLANNEL_NETWORK=10.244.1.0/24\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n',
    ],
  ])('%s', (_name, env, text) => {
    expect(renderSubnetEnv(env)).toBe(text);
  });
});

describe('coveringCIDRs', () => {
  it('gives the smallest CIDR per family that holds every podCIDR', () => {
    expect(coveringCIDRs(['10.244.1.0/24', '10.244.2.0/24', '10.244.3.0/24'])).toEqual(['10.244.0.0/22']);
    expect(coveringCIDRs(['10.244.1.0/24', '10.244.200.0/24', 'fd00:244:1::/64', 'fd00:244:2::/64'])).toEqual(['10.244.0.0/16', 'fd00:244::/46']);
    expect(coveringCIDRs(['10.244.7.0/24'])).toEqual(['10.244.7.0/24']);
    expect(coveringCIDRs(['10.244.5.0/32', 'fd00:244:7::/128'])).toEqual(['10.244.5.0/32', 'fd00:244:7::/128']);
    expect(coveringCIDRs([])).toEqual([]);
  });
});

describe('SubnetFile', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('creates the directory, replaces the file whole, and writes only when the text changes', async () => {
    dir = await mkdtemp(join(tmpdir(), 'netplane-subnet-'));
    const path = join(dir, 'run', 'flannel', 'subnet.env');
    const f = new SubnetFile(path);
    expect(await f.update('A=1\n')).toBe(true);
    const first = await stat(path);
    expect(await f.update('A=1\n')).toBe(false);
    expect((await stat(path)).mtimeMs).toBe(first.mtimeMs);
    const [a, b] = await Promise.all([f.update('A=2\n'), f.update('A=3\n')]);
    expect([a, b]).toEqual([true, true]);
    expect(await readFile(path, 'utf8')).toBe('A=3\n');
    // Written to a temporary file and renamed over: none is left behind.
    expect(await readdir(join(dir, 'run', 'flannel'))).toEqual(['subnet.env']);
    // A file that already holds the text (written by an earlier run) is left alone.
    await writeFile(join(dir, 'other.env'), 'B=1\n');
    expect(await new SubnetFile(join(dir, 'other.env')).update('B=1\n')).toBe(false);
  });
});
