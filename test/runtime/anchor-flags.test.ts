// The replaced programs' spellings rewritten to netplane's (runtime/anchor-flags.ts), on a small table: Go's forms of
// a flag, what is ignored and refused, values checked under the program's spelling, both spellings given twice.
import { describe, expect, it } from 'vitest';
import { anchorHelp, goBool, ignored, klogLevel, refused, renamed, same, translateAnchorFlags, type AnchorFlags } from '../../runtime/anchor-flags.ts';
import { UsageError } from '../../runtime/errors.ts';
import { durationFlag, listFlag, oneOf, switchFlag, valueFlag } from '../../runtime/flags.ts';

const specs = {
  mode: valueFlag({ value: 'MODE', help: 'mode', parse: oneOf(['nftables', 'iptables'] as const) }),
  'sync-period': durationFlag({ help: 'sync', default: '30s', min: '1s' }),
  iface: listFlag({ value: 'NAME', help: 'iface' }),
  'node-name': valueFlag({ value: 'NAME', help: 'name' }),
  'log-level': valueFlag({ value: 'LEVEL', help: 'level' }),
  'masquerade-all': switchFlag('masquerade'),
  'oom-score-adj': valueFlag({ value: 'N', help: 'oom' }),
};
const anchor: AnchorFlags = {
  program: 'kube-proxy',
  flags: {
    'proxy-mode': renamed('mode', (m) => {
      if (m === 'ipvs') throw new Error('ipvs is not a mode of netplane proxy');
      return m;
    }),
    'iptables-sync-period': renamed('sync-period'),
    v: renamed('log-level', klogLevel),
    iface: same('value', 'iface'),
    'oom-score-adj': same('value', 'oom-score-adj'),
    'masquerade-all': same('bool', 'masquerade-all'),
    'kube-subnet-mgr': same('bool', 'masquerade-all', 'false is the etcd mode'),
    'feature-gates': ignored('value', 'netplane has no feature gates; ignored'),
    profiling: ignored('bool', 'no profiling; ignored'),
    logtostderr: ignored('bool', 'JSON on stdout; ignored', true),
    'masquerade-bit': ignored('value', (bit) => (bit === '14' ? undefined : 'bit 14 only; ignored')),
    'init-only': refused('bool', 'no separate step'),
  },
};
const run = (argv: string[]) => translateAnchorFlags('netplane proxy', specs, anchor, argv);

describe('translateAnchorFlags', () => {
  it.each<[string, string[], string[]]>([
    ['--flag=VALUE', ['--proxy-mode=iptables'], ['--mode=iptables']],
    ['--flag VALUE', ['--proxy-mode', 'iptables'], ['--mode=iptables']],
    ['-flag VALUE', ['-proxy-mode', 'iptables'], ['--mode=iptables']],
    ['-flag=VALUE', ['-proxy-mode=iptables'], ['--mode=iptables']],
    ['an underscore read as a dash', ['--iptables_sync_period=1m0s'], ['--sync-period=1m0s']],
    ['klog -v as --log-level', ['-v', '2'], ['--log-level=info']],
    ['klog --v=4 as --log-level', ['--v=4'], ['--log-level=debug']],
    ["netplane's own flag in Go's one-dash form", ['-iface', 'eth1', '-iface=eth0'], ['--iface=eth1', '--iface=eth0']],
    ['a value starting with "-", as Go takes it', ['--oom-score-adj', '-999'], ['--oom-score-adj=-999']],
    ['a switch bare, =true, and in any of Go\'s words', ['-masquerade-all'], ['--masquerade-all']],
    ['a switch =True', ['--masquerade-all=True'], ['--masquerade-all']],
    ['a switch =1', ['--masquerade-all=1'], ['--masquerade-all']],
    ['a switch =false: asks for nothing', ['--masquerade-all=false'], []],
    ["netplane's flags and their values left as they are", ['--node-name=-v', '--node-name', 'v', '--mode', 'nftables'], ['--node-name=-v', '--node-name', 'v', '--mode', 'nftables']],
    ['a word after -- left as it is', ['--', '-v=2'], ['--', '-v=2']],
    ['what is ignored leaves nothing', ['--feature-gates=A=true', '--profiling', '--proxy-mode=iptables'], ['--mode=iptables']],
  ])('%s', (_what, argv, want) => {
    expect(run(argv).argv).toEqual(want);
  });

  it('warns of what it ignores, naming the program, the flag as written and why; a value that asks for nothing is not warned of', () => {
    expect(run(['--feature-gates=A=true,B=false', '-profiling', '--profiling=false', '--logtostderr=false', '--masquerade-bit=14', '--masquerade-bit', '13']).notes).toEqual([
      `kube-proxy's --feature-gates "A=true,B=false": netplane has no feature gates; ignored`,
      "kube-proxy's -profiling: no profiling; ignored",
      `kube-proxy's --logtostderr "false": JSON on stdout; ignored`,
      `kube-proxy's --masquerade-bit "13": bit 14 only; ignored`,
    ]);
  });

  it.each<[string, string[], string]>([
    ['a value that cannot be honoured', ['--proxy-mode=ipvs'], 'netplane proxy: --proxy-mode "ipvs": ipvs is not a mode of netplane proxy'],
    ['a one-shot netplane does not have', ['--init-only'], 'netplane proxy: --init-only: no separate step'],
    ['a switch given false that cannot be honoured', ['-kube-subnet-mgr=false'], 'netplane proxy: -kube-subnet-mgr "false": false is the etcd mode'],
    ["a value netplane's parser refuses, under the program's spelling", ['--iptables-sync-period', '500ms'], 'netplane proxy: --iptables-sync-period "500ms": must be from 1s to 576h'],
    ['a value netplane\'s parser refuses, for a value of the same name', ['-proxy-mode', 'userspace'], 'netplane proxy: -proxy-mode "userspace": must be one of nftables, iptables'],
    ['a bad verbosity', ['--v=high'], 'netplane proxy: --v "high": must be a whole number, the log verbosity'],
    ['a boolean that is none of Go\'s', ['--masquerade-all=yes'], 'netplane proxy: --masquerade-all "yes": must be true or false'],
    ['a missing value', ['--proxy-mode'], 'netplane proxy: --proxy-mode needs a value (see netplane proxy --help)'],
    ["a value that is another of the command's flags", ['--proxy-mode', '--node-name', 'a'], 'netplane proxy: --proxy-mode needs a value (see netplane proxy --help)'],
    ['a value that is another of the program\'s flags', ['-proxy-mode', '-v=2'], 'netplane proxy: -proxy-mode needs a value (see netplane proxy --help)'],
    ['both spellings', ['--proxy-mode=iptables', '--mode', 'nftables'], "netplane proxy: --mode is given twice (kube-proxy's --proxy-mode, --mode); give it once"],
    ['the program\'s spelling twice', ['--v=2', '-v', '3'], "netplane proxy: --log-level is given twice (kube-proxy's --v, kube-proxy's -v); give it once"],
    ['three times', ['--log-level=info', '--v=2', '-v=3'], "netplane proxy: --log-level is given 3 times (--log-level, kube-proxy's --v, kube-proxy's -v); give it once"],
  ])('refuses %s in one sentence', (_what, argv, sentence) => {
    expect(() => run(argv)).toThrow(new UsageError(sentence));
  });

  it("leaves a flag of netplane's own name given twice to parseFlags, which says so in its words", () => {
    expect(run(['-oom-score-adj=1', '--oom-score-adj', '2']).argv).toEqual(['--oom-score-adj=1', '--oom-score-adj=2']);
  });

  it("reads Go's booleans as strconv.ParseBool does", () => {
    expect(['1', 't', 'T', 'TRUE', 'true', 'True'].map(goBool)).toEqual(Array(6).fill('true'));
    expect(['0', 'f', 'F', 'FALSE', 'false', 'False'].map(goBool)).toEqual(Array(6).fill('false'));
    expect(['yes', 'on', ''].map(goBool)).toEqual([undefined, undefined, undefined]);
  });

  it('maps klog verbosity to --log-level: up to 3 info, 4 and 5 debug, 6 and up trace', () => {
    expect(['0', '2', '3', '4', '5', '6', '10', '-1'].map(klogLevel)).toEqual(['info', 'info', 'info', 'debug', 'debug', 'trace', 'trace', 'info']);
  });

  it('lists the spellings in --help: those of other netplane flags, then the ignored and the refused', () => {
    expect(anchorHelp(anchor).split('\n')).toEqual([
      "kube-proxy's flags, also taken (-flag or --flag, =VALUE or VALUE, a boolean bare or =true|false):",
      '  --proxy-mode                     as --mode',
      '  --iptables-sync-period           as --sync-period',
      '  --v                              as --log-level',
      '  --kube-subnet-mgr                as --masquerade-all',
      '  ignored with a warning at start (or refused, for a value that cannot be honoured): --feature-gates, --profiling,',
      '    --logtostderr, --masquerade-bit',
      '  refused: --init-only',
      '',
    ]);
  });
});
