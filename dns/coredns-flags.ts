// CoreDNS's command line (-conf, -dns.port, -pidfile, -quiet, -version, -plugins; Go's flag package) taken as
// netplane dns's, so that a CoreDNS Deployment's `args: ["-conf", "/etc/coredns/Corefile"]` starts netplane as it is
// (bin/netplane.ts takes a command line that starts with -conf as dns's).
import { ignored, refused, renamed, same, type AnchorFlags } from '../runtime/anchor-flags.ts';

/** CoreDNS's flags, as netplane dns takes them. */
export const corednsFlags: AnchorFlags = {
  program: 'CoreDNS',
  dashes: '-',
  flags: {
    conf: same('value', 'conf'),
    'dns.port': renamed('corefile-port'),
    pidfile: ignored('value', 'netplane writes no pid file; ignored'),
    quiet: ignored('bool', 'netplane prints no start-up banner; its logs are JSON lines on stdout (--log-level says how many); ignored'),
    version: refused('bool', 'netplane dns runs, it does not print a version: netplane --version does'),
    plugins: refused('bool', "netplane dns has no plugins to list; what it reads of a Corefile is in netplane dns --help's --conf"),
  },
};
