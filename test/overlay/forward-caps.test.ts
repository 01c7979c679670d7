// The forward-accept rules and the overlay container's capabilities: iptables-legacy needs CAP_NET_RAW besides
// CAP_NET_ADMIN (deploy/daemonset.yaml adds both, as Flannel's manifest does). In a namespace whose legacy FORWARD
// policy is DROP, the real iptables run with only those capabilities (setpriv's bounding set): with NET_ADMIN alone
// the sync fails with iptables' own "Permission denied", which is never taken for a missing table; with NET_RAW too
// the rules go in.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetnsLab } from '../../lab/netns.ts';
import { ForwardAccept, forwardChain } from '../../overlay/forward.ts';
import { CommandError, HostRunner, type CommandRunner } from '../../runtime/exec.ts';

const host = new HostRunner();

/** Runs iptables in `ns` as root with only the capabilities `caps` (e.g. ['net_admin']). */
function limitedRunner(ns: string, caps: readonly string[]): CommandRunner {
  const bounding = ['-all', ...caps.map((c) => `+${c}`)].join(',');
  return { run: (cmd, args, input) => host.run('ip', ['netns', 'exec', ns, 'setpriv', `--bounding-set=${bounding}`, cmd, ...args], input) };
}

describe('ForwardAccept with the capabilities a container is given', () => {
  let lab: NetnsLab;
  let ns: string;

  beforeAll(async () => {
    lab = NetnsLab.create({ id: `hdp${randomBytes(3).toString('hex')}` });
    ns = await lab.ns('node');
    await lab.exec(ns, 'iptables-legacy', ['-P', 'FORWARD', 'DROP']);
  }, 30_000);
  afterAll(async () => {
    await lab?.destroy();
  });

  it('fails, naming the permission, with NET_ADMIN alone: the legacy FORWARD drop is not skipped as if legacy were absent', async () => {
    const f = new ForwardAccept(limitedRunner(ns, ['net_admin']));
    const e = await f.sync(['10.244.0.0/16']).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(CommandError);
    expect((e as CommandError).stderr).toMatch(/iptables-save .*\(legacy\): Cannot initialize: Permission denied/);
    expect((await lab.exec(ns, 'iptables-legacy-save', ['-t', 'filter'])).stdout).not.toContain(forwardChain);
  });

  it('programs the legacy FORWARD accepts with NET_ADMIN and NET_RAW', async () => {
    const f = new ForwardAccept(limitedRunner(ns, ['net_admin', 'net_raw']));
    expect(await f.sync(['10.244.0.0/16'])).toBe(true);
    const saved = (await lab.exec(ns, 'iptables-legacy-save', ['-t', 'filter'])).stdout;
    expect(saved).toContain(`-A FORWARD -m comment --comment "netplane overlay: forward pod traffic" -j ${forwardChain}`);
    expect(saved).toContain(`-A ${forwardChain} -s 10.244.0.0/16`);
    await new ForwardAccept(limitedRunner(ns, ['net_admin', 'net_raw'])).cleanup();
    expect((await lab.exec(ns, 'iptables-legacy-save', ['-t', 'filter'])).stdout).not.toContain(forwardChain);
  });
});

describe('ForwardAccept and the wording of a failed save', () => {
  /** A runner whose legacy IPv4 save fails with `stderr`; every other save shows an untouched table. */
  const failing = (stderr: string): CommandRunner => ({
    async run(cmd) {
      if (cmd === 'iptables-legacy-save') throw new CommandError(cmd, 1, stderr);
      if (cmd.endsWith('-save')) return { stdout: '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n', stderr: '' };
      return { stdout: '', stderr: '' };
    },
  });

  it.each([
    ['the save', 'iptables-save v1.8.9 (legacy): Cannot initialize: Permission denied (you must be root)'],
    ['iptables itself', "iptables v1.8.9 (legacy): can't initialize iptables table `filter': Permission denied (you must be root)\nPerhaps iptables or your kernel needs to be upgraded."],
  ])('rejects a permission error in the words of %s', async (_name, stderr) => {
    await expect(new ForwardAccept(failing(stderr)).sync(['10.244.0.0/16'])).rejects.toBeInstanceOf(CommandError);
  });

  it.each([
    ['the save', 'iptables-save v1.8.9 (legacy): Cannot initialize: Table does not exist (do you need to insmod?)'],
    ['iptables itself', "iptables v1.8.9 (legacy): can't initialize iptables table `filter': Table does not exist (do you need to insmod?)\nPerhaps iptables or your kernel needs to be upgraded."],
  ])('skips legacy without its kernel module, in the words of %s', async (_name, stderr) => {
    expect(await new ForwardAccept(failing(stderr)).sync(['10.244.0.0/16'])).toBe(false);
  });
});
