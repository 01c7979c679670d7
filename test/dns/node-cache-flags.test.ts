// node-cache's command line read as netplane dns's: the DaemonSet's args, node-cache's defaults for what they leave
// out, the interface and rules switched off or renamed, the placeholders filled from -localip and the Service's
// variable, and what is refused.
import { describe, expect, it } from 'vitest';
import { dnsComponent } from '../../dns/component.ts';
import { nodeCacheFlags, serviceHostVariable, startsAsNodeCache, withNodeCacheDefaults } from '../../dns/node-cache-flags.ts';
import { commonFlags } from '../../runtime/component.ts';
import { translateAnchorFlags } from '../../runtime/anchor-flags.ts';

const specs = { ...commonFlags(dnsComponent.defaultAdmin), ...dnsComponent.flags };
const env = { KUBE_DNS_UPSTREAM_SERVICE_HOST: '10.96.0.53', KUBE_DNS_SERVICE_HOST: '10.96.0.10' };
const translate = (argv: string[]) => translateAnchorFlags('netplane dns', specs, nodeCacheFlags(env), withNodeCacheDefaults(argv));

describe("node-cache's flags", () => {
  it("take the DaemonSet's args, with node-cache's defaults for the template, the interface and the rules", () => {
    const { argv, notes } = translate(['-localip', '169.254.20.10,10.96.0.10', '-conf', '/etc/Corefile', '-upstreamsvc', 'kube-dns-upstream']);
    expect(argv).toEqual([
      '--conf=/etc/coredns/Corefile.base',
      '--local-interface=nodelocaldns',
      '--notrack',
      '--local-ip=169.254.20.10',
      '--local-ip=10.96.0.10',
      '--corefile-placeholder=__PILLAR__LOCAL__DNS__=169.254.20.10 10.96.0.10',
      '--corefile-placeholder=__PILLAR__DNS__SERVER__=',
      '--corefile-placeholder=__PILLAR__UPSTREAM__SERVERS__=/etc/resolv.conf',
      '--corefile-placeholder=__PILLAR__CLUSTER__DNS__=10.96.0.53',
    ]);
    expect(notes).toEqual([`node-cache's -conf "/etc/Corefile": node-cache writes the Corefile it runs there; netplane reads -basecorefile with its placeholders filled, and writes none`]);
  });

  it('leave out the interface and the rules when switched off, name the interface, keep them at exit', () => {
    expect(translate(['-localip=169.254.20.10', '-setupinterface=false', '-setupiptables=false']).argv.filter((a) => !a.startsWith('--corefile-placeholder'))).toEqual(['--conf=/etc/coredns/Corefile.base', '--local-ip=169.254.20.10']);
    const named = translate(['-localip=169.254.20.10', '-interfacename', 'dnscache0', '-skipteardown', '-basecorefile=/config/Corefile']).argv;
    expect(named).toContain('--local-interface=dnscache0');
    expect(named).toContain('--keep-local-setup');
    expect(named).toContain('--conf=/config/Corefile');
    expect(named).not.toContain('--conf=/etc/coredns/Corefile.base');
  });

  it("fill __PILLAR__CLUSTER__DNS__ from the default Service's variable, and say so when it holds no address", () => {
    expect(translate(['-localip=169.254.20.10']).argv).toContain('--corefile-placeholder=__PILLAR__CLUSTER__DNS__=10.96.0.10');
    const missing = translateAnchorFlags('netplane dns', specs, nodeCacheFlags({}), withNodeCacheDefaults(['-localip=169.254.20.10']));
    expect(missing.argv.some((a) => a.includes('__PILLAR__CLUSTER__DNS__'))).toBe(false);
    expect(missing.notes).toEqual([`node-cache's -upstreamsvc "kube-dns": $KUBE_DNS_SERVICE_HOST holds no IP address (Kubernetes sets it in pods started after the Service kube-dns exists), so __PILLAR__CLUSTER__DNS__ is left unfilled`]);
    expect(serviceHostVariable('kube-dns-upstream')).toBe('KUBE_DNS_UPSTREAM_SERVICE_HOST');
  });

  it('refuse what cannot be honoured, in one sentence', () => {
    expect(() => translate(['-localip', '169.254.20.10,fd00::a'])).toThrow(/^netplane dns: -localip "169\.254\.20\.10,fd00::a": the addresses must be of one family, as node-cache requires$/);
    expect(() => translate(['-localip', 'nodelocal'])).toThrow(/-localip "nodelocal": must be IP addresses separated by commas/);
    expect(() => translate(['-localip=169.254.20.10', '-setupebtables'])).toThrow(/-setupebtables: netplane sets no ebtables rules/);
  });

  it("are recognized first on a command line without the program's name, as the DaemonSet's args reach the image's entry point", () => {
    expect(startsAsNodeCache('-localip')).toBe(true);
    expect(startsAsNodeCache('--localip=169.254.20.10')).toBe(true);
    expect(startsAsNodeCache('-conf')).toBe(false);
  });
});
