// CoreDNS's command line read as netplane dns's (pure): -conf, -dns.port as the port of the Corefile's blocks
// written without one, what is warned of and what is refused; then netplane dns started as a CoreDNS Deployment's
// args start CoreDNS, answering on the port -dns.port gives a Corefile's `.` block.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dnsComponent as dns } from '../../dns/component.ts';
import { corednsFlags } from '../../dns/coredns-flags.ts';
import { corefileSettings } from '../../dns/corefile/settings.ts';
import { translateAnchorFlags } from '../../runtime/anchor-flags.ts';
import { commonFlags } from '../../runtime/component.ts';
import { UsageError } from '../../runtime/errors.ts';
import { parseFlags } from '../../runtime/flags.ts';
import { freePort } from '../helpers/ports.ts';
import { waitFor } from '../helpers/wait.ts';
import { a, startUpstream, type FakeUpstream } from './forward/fake-upstream.ts';
import { digWithTtl, startDns, type DnsProcess } from './process.ts';

const specs = { ...commonFlags(dns.defaultAdmin), ...dns.flags };
const translate = (argv: string[]) => translateAnchorFlags('netplane dns', specs, corednsFlags, argv);

describe("CoreDNS's command line", () => {
  it.each<[string, string[], string[]]>([
    ["kubeadm's and CoreDNS's Helm chart's args", ['-conf', '/etc/coredns/Corefile'], ['--conf=/etc/coredns/Corefile']],
    ['-conf=FILE', ['-conf=/etc/coredns/Corefile'], ['--conf=/etc/coredns/Corefile']],
    ['-dns.port', ['-conf', 'Corefile', '-dns.port', '1053'], ['--conf=Corefile', '--corefile-port=1053']],
    ['--dns.port=PORT', ['--dns.port=5353'], ['--corefile-port=5353']],
    ['-quiet=false asks for nothing', ['-quiet=false'], []],
  ])('%s', (_what, argv, want) => {
    const got = translate(argv);
    expect(got.argv).toEqual(want);
    expect(parseFlags('netplane dns', specs, got.argv)).not.toBeNull();
  });

  it('warns of -pidfile and -quiet', () => {
    expect(translate(['-conf', 'Corefile', '-pidfile', '/run/coredns.pid', '-quiet']).notes).toEqual([
      `CoreDNS's -pidfile "/run/coredns.pid": netplane writes no pid file; ignored`,
      "CoreDNS's -quiet: netplane prints no start-up banner; its logs are JSON lines on stdout (--log-level says how many); ignored",
    ]);
  });

  it.each<[string, string[], string]>([
    ['-version', ['-version'], '-version: netplane dns runs, it does not print a version: netplane --version does'],
    ['-plugins', ['-plugins'], "-plugins: netplane dns has no plugins to list; what it reads of a Corefile is in netplane dns --help's --conf"],
    ['a port that is none', ['-dns.port', '70000'], '-dns.port "70000": must be a whole number from 1 to 65535'],
    ['-conf without its file', ['-conf'], '-conf needs a value (see netplane dns --help)'],
    ['the port in both spellings', ['-dns.port=1053', '--corefile-port', '53'], "--corefile-port is given twice (CoreDNS's -dns.port, --corefile-port); give it once"],
  ])('refuses %s: one sentence', (_what, argv, why) => {
    expect(() => translate(argv)).toThrow(new UsageError(`netplane dns: ${why}`));
  });

  it("serves a Corefile's blocks written without a port on -dns.port's, and those with one on theirs", () => {
    const flat = (text: string, port?: number) => corefileSettings(text, 'Corefile', port === undefined ? {} : { port }).settings.filter((s) => s.flag === 'listen').map((s) => s.value);
    expect(flat('. {\n bind 127.0.0.1\n}\n', 1053)).toEqual(['127.0.0.1:1053']);
    expect(flat('. {\n whoami\n}\n', 1053)).toEqual(['0.0.0.0:1053']);
    expect(flat('.:53 {\n bind 127.0.0.1\n}\n', 1053)).toEqual(['127.0.0.1:53']);
    expect(flat('. {\n bind 127.0.0.1\n}\n')).toEqual(['127.0.0.1:53']);
  });
});

describe("netplane dns started with a CoreDNS Deployment's args", () => {
  let upstream: FakeUpstream;
  let dir: string;
  let proc: DnsProcess | undefined;

  beforeAll(async () => {
    upstream = await startUpstream((q) => ({ answers: [a(q.name, '192.0.2.7', 60)] }));
    dir = await mkdtemp(join(tmpdir(), 'netplane-coredns-flags-'));
  });
  afterAll(async () => {
    await proc?.stop();
    await upstream?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('reads -conf, answers on the port -dns.port gives its `.` block, and warns of -pidfile and -quiet', async () => {
    const port = await freePort();
    const file = join(dir, 'Corefile');
    await writeFile(file, `. {\n    errors\n    bind 127.0.0.1\n    kubernetes cluster.local\n    forward . ${upstream.hostPort.text}\n    cache 30\n}\n`);
    proc = await startDns(['-conf', file, '-dns.port', String(port), '-pidfile', join(dir, 'coredns.pid'), '-quiet']);
    await waitFor('dns listening', () => proc!.logs().includes(`udp://127.0.0.1:${port}`) || proc!.proc.exitCode !== null, 15_000);
    expect(await digWithTtl(port, 'web.default.svc.cluster.local')).toEqual(['web.default.svc.cluster.local. 5 10.96.0.10']);
    expect(await digWithTtl(port, 'www.example.com')).toEqual(['www.example.com. 30 192.0.2.7']);
    const warned = proc.logs().split('\n').filter((l) => l.includes('"level":40')).map((l) => (JSON.parse(l) as { msg: string }).msg);
    expect(warned).toEqual([
      `CoreDNS's -pidfile "${join(dir, 'coredns.pid')}": netplane writes no pid file; ignored`,
      "CoreDNS's -quiet: netplane prints no start-up banner; its logs are JSON lines on stdout (--log-level says how many); ignored",
    ]);
  });
});
