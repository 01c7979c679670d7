// CoreDNS's Corefile read as netplane dns's flags: kubeadm's default Corefile plugin by plugin, the usual edits
// (stub domains, hosts, rewrite, autopath, log, bind, another port), what is noted instead of done, what is refused
// with its line; the Caddyfile syntax (comments, quotes, environment variables, joined lines, imports); then the
// process started with `--conf` alone answering the cluster zone, forwarding and stub-forwarding (a stub domain in
// an imported file, as k3s lays them out) as the Corefile says.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { corefileSettings } from '../../dns/corefile/settings.ts';
import { parseCorefile } from '../../dns/corefile/parse.ts';
import { UsageError } from '../../runtime/errors.ts';
import { freePort } from '../helpers/ports.ts';
import { waitFor } from '../helpers/wait.ts';
import { a, startUpstream, type FakeUpstream } from './forward/fake-upstream.ts';
import { digWithTtl, startDns, type DnsProcess } from './process.ts';

/** The Corefile kubeadm puts in the coredns ConfigMap. */
const kubeadm = `.:53 {
    errors
    health {
       lameduck 5s
    }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
    prometheus :9153
    forward . /etc/resolv.conf {
       max_concurrent 1000
    }
    cache 30 {
       disable success cluster.local
       disable denial cluster.local
    }
    loop
    reload
    loadbalance
}
`;

const flat = (text: string, env: NodeJS.ProcessEnv = {}) => corefileSettings(text, 'Corefile', { env }).settings.map((s) => `--${s.flag}${s.value === true ? '' : `=${s.value}`}`);
const notes = (text: string) => corefileSettings(text, 'Corefile').notes;

describe('corefileSettings', () => {
  it("reads kubeadm's Corefile: health with its lameduck, ready, the zone, pods, ttl, the metrics address, the cache", () => {
    expect(flat(kubeadm)).toEqual([
      '--health=0.0.0.0:8080',
      '--lameduck=5s',
      '--ready=0.0.0.0:8181',
      '--zone=cluster.local',
      '--pods=insecure',
      '--ttl=30',
      '--admin=0.0.0.0:9153',
      '--max-concurrent=1000',
      '--cache-ttl=30',
      '--reload=30s,15s',
    ]);
    expect(notes(kubeadm)).toEqual([]);
    // Without a kubernetes plugin no cluster zone is answered, as in CoreDNS.
    expect(flat('.:53 {\n forward . 10.0.0.2\n cache\n loadbalance\n reload 10s 3s\n}\n')).toEqual(['--upstream=10.0.0.2:53', '--reload=10s,3s', '--forward-only']);
    expect(() => corefileSettings('.:53 {\n reload 10s 3s 1s\n}\n', 'Corefile')).toThrow(new UsageError('netplane dns: --conf Corefile: line 2: reload takes at most an INTERVAL and a JITTER'));
    expect(corefileSettings(kubeadm, 'Corefile').settings.find((s) => s.flag === 'pods')!.from).toBe('Corefile:8: kubernetes pods');
  });

  it('turns off what CoreDNS does not do without its plugin: the cache, the rotation', () => {
    expect(flat('.:53 {\n kubernetes cluster.local\n forward . 10.0.0.2\n}\n')).toEqual(['--zone=cluster.local', '--upstream=10.0.0.2:53', '--cache-size=0', '--loadbalance=off']);
  });

  it('maps the usual edits: stub domains, upstreams, hosts, rewrite, autopath, log, bind and another port, reverse zones served here', () => {
    const text = `.:5353 {
      bind 127.0.0.1 ::1
      kubernetes Cluster.Example. 10.96.0.0/16 {
        pods verified
        endpoint_pod_names
        kubeconfig /etc/kube.conf
      }
      autopath @kubernetes
      hosts /etc/extra-hosts {
        ttl 60
        fallthrough
      }
      rewrite name suffix .old.example .cluster.example answer auto
      rewrite stop name exact db.legacy db.default.svc.cluster.example
      forward . 8.8.8.8 dns://1.1.1.1:5300 tls://9.9.9.9 2001:db8::53 {
        policy sequential
        tls_servername dns.quad9.net
        expire 30s
      }
      cache 60 {
        success 5000 3600 10
        denial 2000 300
        prefetch 5 2m 20%
        servfail 10s
        serve_stale
      }
      log {
        class denial error
      }
      loadbalance round_robin
    }
    consul.local:5353 corp.internal {
      errors
      cache 10
      forward . 10.150.0.1 10.150.0.2:5353
    }
    `;
    expect(flat(text)).toEqual([
      '--listen=127.0.0.1:5353',
      '--listen=[::1]:5353',
      '--zone=cluster.example',
      '--pods=verified',
      '--endpoint-pod-names',
      '--kubeconfig=/etc/kube.conf',
      '--reverse-cidr=10.96.0.0/16',
      '--autopath',
      '--hosts=/etc/extra-hosts',
      '--hosts-ttl=60',
      '--rewrite-name=suffix:.old.example:.cluster.example',
      '--rewrite-name=exact:db.legacy:db.default.svc.cluster.example',
      '--upstream=8.8.8.8:53',
      '--upstream=1.1.1.1:5300',
      '--upstream=tls://9.9.9.9:853',
      '--upstream=[2001:db8::53]:53',
      '--forward-policy=sequential',
      '--upstream-tls-servername=dns.quad9.net',
      '--upstream-expire=30s',
      '--cache-ttl=60',
      '--cache-success-ttl=3600:10',
      '--cache-denial-ttl=300',
      '--prefetch=5:120:20',
      '--cache-servfail-ttl=10',
      '--cache-size=7000',
      '--log-queries',
      '--log-class=denial,error',
      '--stub-domain=consul.local=10.150.0.1:53,10.150.0.2:5353',
      '--stub-domain=corp.internal=10.150.0.1:53,10.150.0.2:5353',
    ]);
    expect(notes(text)).toEqual(['Corefile:32: the server block consul.local:5353 corp.internal: served on the root block\'s port 5353']);
  });

  it('serves a reverse zone here when the plugin does not fall through for it; in-addr.arpa names become ranges', () => {
    const zones = (line: string) => flat(`. {\n kubernetes cluster.local ${line}\n}\n`).filter((f) => f.startsWith('--reverse-cidr'));
    expect(zones('in-addr.arpa ip6.arpa')).toEqual(['--reverse-cidr=0.0.0.0/0', '--reverse-cidr=0000:0000:0000:0000:0000:0000:0000:0000/0']);
    expect(zones('10.in-addr.arpa 96.10.in-addr.arpa 8.b.d.0.1.0.0.2.ip6.arpa')).toEqual(['--reverse-cidr=10.0.0.0/8', '--reverse-cidr=10.96.0.0/16', '--reverse-cidr=2001:0db8:0000:0000:0000:0000:0000:0000/32']);
    expect(flat('. {\n kubernetes cluster.local in-addr.arpa {\n fallthrough\n }\n}\n').some((f) => f.startsWith('--reverse-cidr'))).toBe(false);
  });

  it("says what it does not do: plugins netplane has not, options it ignores, zones it does not serve", () => {
    const text = `.:53 {
      kubernetes cluster.local {
        namespaces default
        noendpoints
      }
      forward . 10.0.0.2 {
        health_check 5s
      }
      whoami
      template IN A example.com {
        answer "{{ .Name }} 60 IN A 127.0.0.1"
      }
      hosts {
        10.0.0.9 printer.local
      }
      rewrite type A AAAA
      cache 30 {
        disable denial example.org
      }
    }
    example.org {
      file /etc/coredns/example.org.db
    }
    `;
    expect(notes(text)).toEqual([
      'Corefile:4: kubernetes noendpoints: endpoint records are answered',
      'Corefile:9: the plugin whoami is not one netplane has; ignored',
      'Corefile:10: the plugin template is not one netplane has; ignored',
      'Corefile:16: rewrite type A AAAA: netplane rewrites names only (rewrite name exact|suffix)',
      'Corefile:18: cache disable denial example.org: netplane caches every forwarded answer (cluster names are never cached)',
      'Corefile:21: the server block example.org has no forward: not served (netplane serves other zones only as stub domains)',
    ]);
  });

  it("reads NodeLocal DNSCache's Corefile: no cluster zone, force_tcp, and the server's own plugins in any block", () => {
    const text = `cluster.local:53 {
      errors
      cache {
        success 9984 30
        denial 9984 5
      }
      reload
      loop
      bind 169.254.20.10
      forward . 10.96.0.10 {
        force_tcp
      }
      prometheus :9253
      health 169.254.20.10:8080
    }
    in-addr.arpa:53 {
      bind 169.254.20.10
      forward . 10.96.0.10 [fd00::a]:5353 {
        force_tcp
      }
      prometheus :9254
    }
    corp.example {
      bind 10.0.0.1
      forward . tls://10.0.0.53 10.0.0.54 {
        tls_servername dns.corp.example
        max_fails 3
        prefer_udp
      }
    }
    .:53 {
      errors
      reload
      bind 169.254.20.10
      forward . 8.8.8.8 tls://1.1.1.1 {
        force_tcp
      }
      prometheus :9253
    }
    `;
    expect(flat(text)).toEqual([
      '--reload=30s,15s',
      '--listen=169.254.20.10:53',
      '--upstream=tcp://8.8.8.8:53',
      '--upstream=tls://1.1.1.1:853',
      '--admin=0.0.0.0:9253',
      // No kubernetes plugin in any block: no cluster zone, as in CoreDNS.
      '--forward-only',
      '--cache-size=0',
      '--loadbalance=off',
      '--stub-domain=cluster.local=tcp://10.96.0.10:53',
      // The health of the server, written in the cluster zone's block.
      '--health=169.254.20.10:8080',
      '--stub-domain=in-addr.arpa=tcp://10.96.0.10:53,tcp://[fd00::a]:5353',
      '--stub-domain=corp.example=tls://10.0.0.53:853#dns.corp.example,10.0.0.54:53',
    ]);
    expect(notes(text)).toEqual([
      'Corefile:21: prometheus in the server block in-addr.arpa: one process serves every block; Corefile:38 says how',
      'Corefile:27: forward max_fails in the server block corp.example: a stub domain takes its upstreams from its forward line, and force_tcp and tls_servername; ignored',
      "Corefile:24: bind in the server block corp.example: every zone is answered on the root block's addresses",
    ]);
    // The nameservers of /etc/resolv.conf are netplane's default, asked as it asks them.
    expect(notes('.:53 {\n  forward . /etc/resolv.conf {\n    force_tcp\n  }\n}\n')).toEqual([
      'Corefile:3: forward force_tcp: the nameservers of /etc/resolv.conf are asked over UDP (TCP for a truncated answer); write their addresses for TCP only',
    ]);
  });

  it("maps hosts entries written in the Corefile and no_reverse, the file /etc/hosts unless named, as CoreDNS reads it", () => {
    const text = '.:53 {\n  kubernetes cluster.local\n  hosts {\n    10.0.0.9 printer.local printer\n    fd00::9 printer.local\n    no_reverse\n    fallthrough\n  }\n  forward . 10.0.0.2\n}\n';
    expect(flat(text).filter((f) => f.startsWith('--hosts'))).toEqual(['--hosts=/etc/hosts', '--hosts-entry=10.0.0.9 printer.local printer', '--hosts-entry=fd00::9 printer.local', '--hosts-no-reverse']);
    expect(notes(text)).toEqual([]);
  });

  it('maps cache keepttl', () => {
    expect(flat('.:53 {\n  kubernetes cluster.local\n  cache 30 {\n    keepttl\n  }\n  forward . 10.0.0.2\n}\n')).toContain('--cache-keep-ttl');
  });

  it('maps kubernetes ignore empty_service and namespaces', () => {
    expect(flat('.:53 {\n  kubernetes cluster.local {\n    ignore empty_service\n  }\n  forward . 10.0.0.2\n}\n')).toContain('--ignore-empty-service');
    expect(flat('.:53 {\n  kubernetes cluster.local {\n    namespaces default team-a\n  }\n  forward . 10.0.0.2\n}\n')).toContain('--namespaces=default,team-a');
  });

  it("maps forward's except", () => {
    expect(flat('.:53 {\n  kubernetes cluster.local\n  forward . 10.0.0.2 {\n    except internal.corp Lab.Example.\n  }\n}\n').filter((f) => f.startsWith('--forward-except'))).toEqual(['--forward-except=internal.corp', '--forward-except=lab.example']);
  });

  it("maps forward's max_fails and health_check", () => {
    const text = '.:53 {\n  kubernetes cluster.local\n  forward . 10.0.0.2 {\n    max_fails 0\n    health_check 2s no_rec\n  }\n}\n';
    expect(flat(text).filter((f) => f.startsWith('--max-fails') || f.startsWith('--health-check'))).toEqual(['--max-fails=0', '--health-check=2s']);
    expect(notes(text)).toEqual(['Corefile:5: forward health_check no_rec: probes ask ". IN NS" over the upstream\'s own transport; only the interval is read']);
  });

  it("maps k8s_external to the external zones, and notes what it does not answer", () => {
    const text = '.:53 {\n  kubernetes cluster.local\n  k8s_external example.org EXAMPLE.net. {\n    apex ns\n    ttl 30\n    headless\n  }\n  forward . 10.0.0.2\n}\n';
    expect(flat(text).filter((f) => f.startsWith('--external'))).toEqual(['--external-zone=example.org', '--external-zone=example.net', '--external-apex=ns', '--external-ttl=30']);
    expect(notes(text)).toEqual(["Corefile:6: k8s_external headless: headless Services' endpoints are not answered in the external zone"]);
    expect(notes('.:53 {\n  kubernetes cluster.local\n  k8s_external\n  forward . 10.0.0.2\n}\n')).toEqual(['Corefile:3: k8s_external without a zone: CoreDNS would answer every name as external; write the zone (k8s_external example.org)']);
  });

  it('reads the Caddyfile syntax: comments, quotes, environment variables, lines joined by a backslash', () => {
    const text = '# the cluster\n.:{$DNS_PORT} { # root\n  kubernetes "cluster.local" \\\n    in-addr.arpa {\n    ttl {%TTL%}\n  }\n  forward . `10.0.0.2`\n}\n';
    expect(flat(text, { DNS_PORT: '1053', TTL: '7' })).toEqual(['--zone=cluster.local', '--ttl=7', '--reverse-cidr=0.0.0.0/0', '--upstream=10.0.0.2:53', '--listen=0.0.0.0:1053', '--cache-size=0', '--loadbalance=off']);
    expect(parseCorefile('a.com b.com:53 {\n errors\n}\n')[0]).toMatchObject({ keys: ['a.com', 'b.com:53'], line: 1 });
  });

  it("reads imports as k3s's Corefile makes them: server blocks at the top, directives inside a block, globs in name order", () => {
    const files: Record<string, Array<{ file: string; text: string }>> = {
      'custom/*.server': [
        { file: 'custom/a.server', text: 'corp.internal {\n  forward . 10.150.0.1\n}\n' },
        { file: 'custom/b.server', text: '# none here\n' },
      ],
      'custom/*.override': [{ file: 'custom/x.override', text: 'rewrite name exact db.old db.default.svc.cluster.local\nwhoami\n' }],
      'custom/none.*': [],
      'loop.server': [{ file: 'loop.server', text: 'import loop.server\n' }],
      'bad.override': [{ file: 'bad.override', text: '\nforward . /etc/other\n' }],
    };
    const imports = (pattern: string) => files[pattern] ?? [];
    const root = '.:53 {\n  kubernetes cluster.local\n  import custom/*.override\n  import custom/none.*\n}\nimport custom/*.server\n';
    const got = corefileSettings(root, 'Corefile', { imports });
    expect(got.settings.map((x) => `--${x.flag}=${x.value} (${x.from})`)).toEqual([
      '--zone=cluster.local (Corefile:2: kubernetes)',
      '--rewrite-name=exact:db.old:db.default.svc.cluster.local (custom/x.override:1: rewrite name exact)',
      '--cache-size=0 (Corefile:1: no cache plugin)',
      '--loadbalance=off (Corefile:1: no loadbalance plugin)',
      '--stub-domain=corp.internal=10.150.0.1:53 (custom/a.server:2: corp.internal forward)',
    ]);
    expect(got.notes).toEqual(['custom/x.override:2: the plugin whoami is not one netplane has; ignored']);
    const fails = (text: string, o: Parameters<typeof corefileSettings>[2] = { imports }) => () => corefileSettings(text, 'Corefile', o);
    expect(fails('. {\n import bad.override\n}\n')).toThrow(new UsageError('netplane dns: --conf Corefile: bad.override line 2: forward /etc/other: netplane forwards to the nameservers of /etc/resolv.conf (its default) or to addresses; give the addresses'));
    expect(fails('import loop.server\n')).toThrow(new UsageError('netplane dns: --conf Corefile: loop.server line 1: imports nest deeper than 10: does a file import itself?'));
    expect(fails('. {\n import x\n}\n', {})).toThrow(new UsageError('netplane dns: --conf Corefile: line 2: import x: imports are read only from a Corefile file'));
    expect(fails('(common) {\n errors\n}\n')).toThrow(new UsageError('netplane dns: --conf Corefile: line 1: the snippet (common): snippets are not read; write its lines where it is imported'));
  });

  it.each<[string, string, string]>([
    ['no root block', 'example.org {\n forward . 10.0.0.2\n}\n', 'line 1: no server block for the root zone (.:53): netplane reads the block that serves every name'],
    ['two root blocks', '. {\n errors\n}\n.:5353 {\n errors\n}\n', 'line 4: a second server block for the root zone: netplane serves one'],
    ['an unclosed block', '.:53 {\n errors\n', 'line 1: the server block .:53 is not closed with }'],
    ['a stray }', '}\n', 'line 1: a } without its {'],
    ['an unclosed quote', '.:53 {\n forward . "10.0.0.2\n}\n', 'line 2: a quoted token is not closed'],
    ['DNS over HTTPS', 'https://.:443 {\n errors\n}\n', 'line 1: https://.:443: netplane serves plain DNS (dns://) only, not https://'],
    ['forward of a zone in the root block', '. {\n forward example.org 10.0.0.2\n}\n', 'line 2: forward example.org: the root block forwards . (every name it does not answer); a zone of its own goes in a server block of its own'],
    ['another resolv.conf', '. {\n forward . /etc/other-resolv.conf\n}\n', 'line 2: forward /etc/other-resolv.conf: netplane forwards to the nameservers of /etc/resolv.conf (its default) or to addresses; give the addresses'],
    ['a kubernetes plugin without a zone', '. {\n kubernetes in-addr.arpa\n}\n', 'line 2: kubernetes without a cluster zone (such as cluster.local)'],
  ])('refuses %s in one sentence with its line', (_what, text, why) => {
    expect(() => corefileSettings(text, 'Corefile')).toThrow(new UsageError(`netplane dns: --conf Corefile: ${why}`));
  });
});

describe('netplane dns --conf Corefile', () => {
  let root: FakeUpstream;
  let stub: FakeUpstream;
  let dir: string;
  let dns: DnsProcess | undefined;
  const dig = digWithTtl;

  beforeAll(async () => {
    root = await startUpstream((q) => ({ answers: [a(q.name, '192.0.2.7', 60)] }));
    stub = await startUpstream((q) => ({ answers: [a(q.name, '192.0.2.99', 60)] }));
    dir = await mkdtemp(join(tmpdir(), 'netplane-corefile-'));
  });
  afterAll(async () => {
    await dns?.stop();
    await root?.close();
    await stub?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("answers, forwards and stub-forwards as the Corefile says, serves its health and ready addresses, and notes what it overrides", async () => {
    const [port, health, ready] = [await freePort(), await freePort(), await freePort()];
    const file = join(dir, 'Corefile');
    await writeFile(file, `.:${port} {
    errors
    bind 127.0.0.1
    health 127.0.0.1:${health} {
       lameduck 0s
    }
    ready 127.0.0.1:${ready}
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 17
    }
    prometheus :9153
    forward . ${root.hostPort.text}
    cache 30
    reload
    loadbalance
    import custom/*.override
}
import custom/*.server
`);
    // As k3s lays them out: a stub domain in custom/, and no override at all.
    await mkdir(join(dir, 'custom'));
    await writeFile(join(dir, 'custom', 'corp.server'), `corp.internal:${port} {\n    forward . ${stub.hostPort.text}\n}\n`);
    dns = await startDns(['--conf', file]);
    await waitFor('dns listening', () => dns!.logs().includes(`udp://127.0.0.1:${port}`), 15_000);
    // The zone answers SERVFAIL until the first full view of the manifests is loaded, which may come after listening.
    await waitFor('the zone loaded', async () => (await dig(port, 'web.default.svc.cluster.local')).length > 0, 15_000, 100);
    expect(await dig(port, 'web.default.svc.cluster.local')).toEqual(['web.default.svc.cluster.local. 17 10.96.0.10']);
    expect(await dig(port, '10-1-2-3.default.pod.cluster.local')).toEqual(['10-1-2-3.default.pod.cluster.local. 17 10.1.2.3']);
    expect(await dig(port, 'www.example.com')).toEqual(['www.example.com. 30 192.0.2.7']);
    expect(await dig(port, 'git.corp.internal')).toEqual(['git.corp.internal. 30 192.0.2.99']);
    expect(stub.seen.map((q) => q.name)).toContain('git.corp.internal');
    expect(root.seen.map((q) => q.name)).not.toContain('git.corp.internal');
    expect((await fetch(`http://127.0.0.1:${health}/health`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${ready}/ready`)).status).toBe(200);
    const warned = dns.logs().split('\n').filter((l) => l.includes('"level":40')).map((l) => (JSON.parse(l) as { msg: string }).msg);
    expect(warned).toEqual([`${file}:13: prometheus is overridden by --admin on the command line`]);
  });

  it('refuses a Corefile it cannot use: exit code 2, one sentence on stderr', async () => {
    const file = join(dir, 'Bad');
    await writeFile(file, '.:53 {\n  forward . /etc/other-resolv.conf\n}\n');
    const bad = await startDns(['--conf', file]);
    expect(await bad.exited).toBe(2);
    expect(bad.logs().trim().split('\n').filter((l) => !l.startsWith('{'))).toEqual([`netplane dns: --conf ${file}: line 2: forward /etc/other-resolv.conf: netplane forwards to the nameservers of /etc/resolv.conf (its default) or to addresses; give the addresses`]);
    await bad.stop();
  });
});
