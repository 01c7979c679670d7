// The check that iptables mode can program the kernel, run before anything else, must not change the kernel: on a
// host whose `iptables` is the legacy variant, `iptables-save -t nat` makes the legacy nat table (and registers its
// hooks) where there was none, and every iptables-nft command then warns "iptables-legacy tables present", also when
// auto then picks nft (found by an audit, as c4fbb41 and 7b78df3 found it in the clean-ups).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetnsLab } from '../../../lab/netns.ts';
import { privilegeProbe } from '../../../proxy/backends.ts';

describe('the iptables privilege probe', () => {
  let lab: NetnsLab;
  let ns: string;
  beforeAll(async () => {
    lab = NetnsLab.create({ id: 's23dpp' });
    ns = await lab.ns('node');
  });
  afterAll(() => lab?.destroy());

  it('makes no table when `iptables` is the legacy variant, and still fails without privileges', async () => {
    const [cmd, args] = privilegeProbe.iptables;
    expect(cmd).toBe('iptables-save');
    // iptables-legacy-save stands for the host's `iptables-save` where the alternative points at legacy.
    await lab.exec(ns, 'iptables-legacy-save', args);
    expect((await lab.exec(ns, 'cat', ['/proc/net/ip_tables_names'])).stdout.trim()).toBe('');
    // Unprivileged, the probe still fails, as it must to send the user to --mode userspace.
    await expect(lab.exec(ns, 'setpriv', ['--reuid', 'nobody', '--regid', 'nogroup', '--clear-groups', '--inh-caps=-all', 'iptables-legacy-save', ...args])).rejects.toThrow();
  });
});
