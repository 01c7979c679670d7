import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { TestApiServer } from '../apiserver/server.ts';
import { childNodeFlags } from '../../runtime/supervisor.ts';
import { waitFor } from '../helpers/wait.ts';
import { freePort } from '../helpers/ports.ts';

const bin = fileURLToPath(new URL('../../bin/netplane.ts', import.meta.url));
const examples = fileURLToPath(new URL('../../examples/quickstart', import.meta.url));

function netplane(...args: string[]) {
  return spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 15_000 });
}

const run = promisify(execFile);


describe('netplane command line', () => {
  it('prints its version', () => {
    const r = netplane('--version');
    expect([r.status, r.stdout]).toEqual([0, 'netplane 0.1.0\n']);
  });

  it('prints help for -h as for --help', () => {
    const r = netplane('dns', '-h');
    expect([r.status, r.stderr]).toEqual([0, '']);
    expect(r.stdout).toContain('Usage: netplane dns [flags]');
  });

  it('prints the usage on stderr with exit 2 when no command is given', () => {
    for (const args of [[], ['lab']]) {
      const r = netplane(...args);
      expect([r.status, r.stdout]).toEqual([2, '']);
      expect(r.stderr).toMatch(/^Usage: netplane /);
    }
  });

  it('says "repeatable" once per flag, and up offers no in-cluster configuration', () => {
    for (const line of netplane('overlay', '--help').stdout.split('\n')) expect(line.match(/repeatable/g)?.length ?? 0).toBeLessThanOrEqual(1);
    expect(netplane('up', '--help').stdout).toMatch(/--kubeconfig FILE +read the cluster from the API server in this kubeconfig \(else \$KUBECONFIG\)\n/);
  });

  it('prints help for every command', () => {
    for (const cmd of ['proxy', 'dns', 'ingress', 'overlay', 'up']) {
      const r = netplane(cmd, '--help');
      expect(r.status).toBe(0);
      expect(r.stdout).toContain(`Usage: netplane ${cmd} [flags]`);
      expect(r.stdout).toContain('--manifests DIR');
      expect(r.stdout).not.toContain('[object Object]');
    }
    expect(netplane('dns', '--help').stdout).toMatch(/--dns-service NAMESPACE\/NAME .*\(default kube-system\/kube-dns\)/);
    expect(netplane('ingress', '--help').stdout).toMatch(/--hsts DURATION .*\(default 0s\)\n/);
  });

  const wrong: Array<[string[], RegExp]> = [
    [['frobnicate'], /^netplane: unknown command "frobnicate"/],
    [['dns', '--bogus'], /^netplane dns: unknown flag --bogus/],
    [['proxy', '--admin', 'nowhere'], /^netplane proxy: --admin "nowhere": must be ADDR:PORT/],
    [['ingress', '--manifests', '/does/not/exist'], /^netplane ingress: --manifests "\/does\/not\/exist": no such directory/],
    [['overlay', '--manifests', examples, '--kubeconfig', '/x'], /^netplane overlay: give --manifests or --kubeconfig, not both/],
    [['dns', '--kubeconfig', '/does/not/exist'], /^netplane dns: cannot load kubeconfig \/does\/not\/exist/],
    [['up', '--component', 'dnz', '--manifests', examples], /^netplane up: --component "dnz": must be one of proxy, dns, ingress, overlay/],
    [['dns', '--stub-domain', 'svc.cluster.local=10.0.0.10:53', '--manifests', examples], /^netplane dns: --stub-domain svc\.cluster\.local is inside the cluster zone cluster\.local, which is answered here/],
    [['overlay', '--iface-regex', '(eth', '--manifests', examples], /^netplane overlay: --iface-regex "\(eth": must be a regular expression/],
    [['dns', '--stub-domain', 'corp.test', '--manifests', examples], /^netplane dns: --stub-domain "corp\.test": must be DOMAIN=ADDR:PORT/],
    [['proxy', '--nodeport-addresses', 'primary', '--nodeport-addresses', '10.0.0.0/8', '--manifests', examples], /^netplane proxy: --nodeport-addresses primary takes no CIDRs beside it/],
    [['proxy', '--nodeport-addresses', 'primary,10.0.0.0/8', '--manifests', examples], /^netplane proxy: --nodeport-addresses "primary,10.0.0.0\/8": "primary" is not a CIDR/],
    [['dns', '--admin', '1.2.3.4.5:80', '--manifests', examples], /^netplane dns: --admin "1\.2\.3\.4\.5:80": must be ADDR:PORT with an IP address/],
    [['dns', '--ttl', '99999999999', '--manifests', examples], /^netplane dns: --ttl "99999999999": must be a whole number from 0 to 3600/],
    [['dns', '--ttl', '-1', '--manifests', examples], /^netplane dns: --ttl: a value that starts with "-" is written --ttl=VALUE/],
    [['proxy', '--help=yes'], /^netplane proxy: --help takes no value\n$/],
    [['up', '--component', '--manifests', examples], /^netplane up: --component needs a value NAME \(see netplane up --help\)\n$/],
    [['dns', '--upstream', '1.1.1.1:0', '--manifests', examples], /^netplane dns: --upstream "1\.1\.1\.1:0": must name a port from 1 to 65535/],
    [['proxy', '--mode', 'userspace', '--bind-address', '1.2.3', '--manifests', examples], /^netplane proxy: --bind-address "1\.2\.3": must be an IPv4 or IPv6 address/],
    [['proxy', '--mode', 'userspace', '--userspace-threads', '1000', '--manifests', examples], /^netplane proxy: --userspace-threads "1000": must be a whole number from 1 to 64/],
    [['proxy', '--mode', 'userspace', '--udp-timeout', '0s', '--manifests', examples], /^netplane proxy: --udp-timeout "0s": must be from 1ms to 576h/],
    [['proxy', '--sync-period', '0s', '--manifests', examples], /^netplane proxy: --sync-period "0s": must be from 1s to 24h/],
    [['dns', '--admin', '127.0.0.1:19153', '--health', '127.0.0.1:19153', '--manifests', examples], /^netplane dns: --admin and --health both listen on 127\.0\.0\.1:19153; give each its own address\n$/],
    [['dns', '--health', '127.0.0.1:18080', '--ready', '127.0.0.1:18080', '--manifests', examples], /^netplane dns: --health and --ready both listen on 127\.0\.0\.1:18080; give each its own address\n$/],
    [['dns', '--admin', '127.0.0.1:15353', '--listen', '127.0.0.1:15353', '--manifests', examples], /^netplane dns: --admin and --listen both listen on 127\.0\.0\.1:15353; give each its own address\n$/],
    [['dns', '--listen', '127.0.0.1:15353', '--listen', '127.0.0.1:15353', '--manifests', examples], /^netplane dns: --listen gives 127\.0\.0\.1:15353 twice; give each address once\n$/],
    [['ingress', '--admin', '127.0.0.1:18081', '--http', '127.0.0.1:18081', '--https', '127.0.0.1:0', '--manifests', examples], /^netplane ingress: --admin and --http both listen on 127\.0\.0\.1:18081; give each its own address\n$/],
    [['proxy', '--mode', 'userspace', '--admin', '127.0.0.1:18082', '--healthz-bind-address', '127.0.0.1:18082', '--manifests', examples], /^netplane proxy: --admin and --healthz-bind-address both listen on 127\.0\.0\.1:18082; give each its own address\n$/],
    [['dns', '--zone', `${'a'.repeat(60)}.${'b'.repeat(60)}.${'c'.repeat(60)}.${'d'.repeat(60)}`, '--manifests', examples], /^netplane dns: --zone "a+\.b+\.c+\.d+": is 243 characters long; it may be at most 242\n$/],
    [['dns', '--zone', `${'a'.repeat(64)}.local`, '--manifests', examples], /^netplane dns: --zone "a+\.local": has a label longer than 63 characters, which no DNS name can hold\n$/],
    [['ingress', '--proxy-protocol-timeout', '2s', '--manifests', examples], /^netplane ingress: --proxy-protocol-timeout is given without --proxy-protocol or --tcp-services-configmap\n$/],
    [['ingress', '--hsts-include-subdomains', '--manifests', examples], /^netplane ingress: --hsts-include-subdomains is given without --hsts DURATION, so no Strict-Transport-Security header is sent\n$/],
    [['proxy', '--min-sync-period', '1h', '--sync-period', '1s', '--manifests', examples], /^netplane proxy: --min-sync-period \(3600 s\) must not be longer than --sync-period \(1 s\)\n$/],
    [['ingress', '--keepalive-timeout', '0s', '--manifests', examples], /^netplane ingress: --keepalive-timeout "0s": must be from 1s to 1h/],
    [['overlay', '--resync-period', '0s', '--manifests', examples], /^netplane overlay: --resync-period "0s": must be from 1s to 24h/],
    [['overlay', '--resync-period', '600h', '--manifests', examples], /^netplane overlay: --resync-period "600h": must be from 1s to 24h/],
    [['up', '--manifests', '/does/not/exist'], /^netplane up: --manifests "\/does\/not\/exist": no such directory/],
    [['dns', '--hosts', '', '--manifests', examples], /^netplane dns: --hosts "": must not be empty\n$/],
    [['proxy', '--mode', 'userspace', '--zone', '', '--manifests', examples], /^netplane proxy: --zone "": must not be empty\n$/],
    [['ingress', '--hsts', '0.4s', '--manifests', examples], /^netplane ingress: --hsts "0\.4s": must be a whole number of seconds/],
    [['ingress', '--hsts', '1500ms', '--manifests', examples], /^netplane ingress: --hsts "1500ms": must be a whole number of seconds/],
    [['ingress', '--election-id', '', '--manifests', examples], /^netplane ingress: --election-id "": must be a Lease name/],
    [['dns', '--manifests', bin], /^netplane dns: --manifests ".*netplane\.ts": not a directory\n$/],
    // Checked by `up` as by the components, before any child starts (nothing on stdout).
    [['up', '--manifests', examples, '--kubeconfig', '/x'], /^netplane up: give --manifests or --kubeconfig, not both\n$/],
    [['up', '--kubeconfig', '/does/not/exist'], /^netplane up: cannot load kubeconfig \/does\/not\/exist: ENOENT/],
    [['proxy', '--mode', 'ipvs', '--mode', 'userspace', '--manifests', examples], /^netplane proxy: --mode is given twice; give it once\n$/],
    [['up', '--manifests', examples, '--manifests', examples], /^netplane up: --manifests is given twice; give it once\n$/],
    // Found before the admin port is bound: nothing on stdout, no stack trace.
    [['dns', '--upstream', 'tls://127.0.0.1:853', '--upstream-tls-ca', bin, '--admin', '127.0.0.1:0', '--manifests', examples], /^netplane dns: --upstream-tls-ca ".*netplane\.ts": holds no PEM certificate \(-----BEGIN CERTIFICATE-----\): it must hold the CA certificates that sign the upstream certificates\n$/],
    [['dns', '--upstream', 'tls://127.0.0.1:853', '--upstream-tls-ca', '/does/not/exist.pem', '--admin', '127.0.0.1:0', '--manifests', examples], /^netplane dns: --upstream-tls-ca "\/does\/not\/exist\.pem": cannot be read \(ENOENT/],
    [['ingress', '--default-certificate', '/does/not/exist.pem,/does/not/exist.key', '--admin', '127.0.0.1:0', '--http', '127.0.0.1:0', '--https', '127.0.0.1:0', '--manifests', examples], /^netplane ingress: --default-certificate "\/does\/not\/exist\.pem,\/does\/not\/exist\.key": cannot read the certificate file \/does\/not\/exist\.pem \(ENOENT\)\n$/],
    [['ingress', '--default-certificate', `${bin},${bin}`, '--admin', '127.0.0.1:0', '--http', '127.0.0.1:0', '--https', '127.0.0.1:0', '--manifests', examples], /^netplane ingress: --default-certificate ".*": the certificate file .*netplane\.ts holds no PEM certificate/],
  ];
  for (const [args, message] of wrong) {
    it(`exits 2 with one line for: ${args.join(' ')}`, () => {
      const r = netplane(...args);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stdout).toBe('');
    });
  }
});

describe('the source flags', () => {
  // Without nft and iptables-save on PATH, the proxy's privilege probe and clean-up fail (exit 1): the source flags
  // must be refused before either runs.
  const noTools = () => mkdtemp(join(tmpdir(), 'netplane-path-'));

  it.each([
    [['proxy', '--manifests', '/does/not/exist'], /^netplane proxy: --manifests "\/does\/not\/exist": no such directory\n$/],
    [['proxy', '--cleanup', '--manifests', '/does/not/exist', '--kubeconfig', '/does/not/exist'], /^netplane proxy: give --manifests or --kubeconfig, not both\n$/],
    [['proxy', '--cleanup', '--kubeconfig', '/does/not/exist'], /^netplane proxy: cannot load kubeconfig \/does\/not\/exist: ENOENT/],
  ])('are checked before the proxy probes or cleans the kernel: %j', async (args, message) => {
    const path = await noTools();
    try {
      const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 15_000, env: { ...process.env, PATH: path } });
      expect([r.status, r.stdout]).toEqual([2, '']);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    } finally {
      await rm(path, { recursive: true, force: true });
    }
  });

  it('are checked by up from $KUBECONFIG too, before any child starts', () => {
    const r = spawnSync(process.execPath, [bin, 'up'], { encoding: 'utf8', timeout: 15_000, env: { ...process.env, KUBECONFIG: '/does/not/exist' } });
    expect([r.status, r.stdout]).toEqual([2, '']);
    expect(r.stderr).toBe('netplane up: KUBECONFIG /does/not/exist: none of its files exists\n');
  });
});

describe('the proxy in userspace mode', () => {
  it('warns once that --health-check-address and --iptables-variant have no effect there', async () => {
    // No Services: nothing listens beside the admin port.
    const empty = await mkdtemp(join(tmpdir(), 'netplane-empty-'));
    const child = spawn(process.execPath, [bin, 'proxy', '--mode', 'userspace', '--health-check-address', '127.0.0.2', '--iptables-variant', 'nft', '--admin', '127.0.0.1:0', '--manifests', empty], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    try {
      await waitFor('started', () => out.includes('netplane proxy starting'), 10_000);
      const warnings = out.split('\n').filter((l) => l.includes('--health-check-address 127.0.0.2 has no effect in userspace mode'));
      expect(warnings).toHaveLength(1);
      expect(out.split('\n').filter((l) => l.includes('--iptables-variant nft has no effect in userspace mode'))).toHaveLength(1);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    await rm(empty, { recursive: true, force: true });
  });
});

describe('the overlay from manifests', () => {
  it('warns that --flannel-annotations has no effect there', async () => {
    const child = spawn(process.execPath, [bin, 'overlay', '--flannel-annotations', '--node-name', 'local', '--admin', '127.0.0.1:0', '--manifests', examples], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    try {
      // Warned before it starts; SIGTERM is handled once it has started (before that it would end the process by signal).
      await waitFor('started', () => out.includes('netplane overlay starting'), 10_000);
      expect(out).toContain('--flannel-annotations has no effect with --manifests');
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });
});

describe('an admin port that is taken', () => {
  it.each([['info'], ['silent']])('ends the process with one stderr sentence and exit 1, nothing started (--log-level %s)', async (level) => {
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as AddressInfo).port;
    try {
      const r = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
        execFile(process.execPath, [bin, 'dns', '--manifests', examples, '--listen', '127.0.0.1:0', '--admin', `127.0.0.1:${port}`, '--log-level', level], { timeout: 15_000 }, (e, stdout, stderr) =>
          resolve({ status: e ? ((e as { code?: number }).code ?? null) : 0, stdout, stderr }),
        );
      });
      expect(r.status).toBe(1);
      expect(r.stderr).toBe(`netplane dns: cannot serve the admin endpoints on 127.0.0.1:${port}: address in use (EADDRINUSE)\n`);
      expect(r.stdout).not.toContain('stack');
      expect(r.stdout).not.toContain('first full view loaded');
      expect(r.stdout).not.toContain('dns serving');
    } finally {
      taken.close();
    }
  });
});

describe('a component listen port that is taken', () => {
  // The components' own bind failures end the process through a fatal log line, which also goes to stderr.
  it.each([
    ['dns', (port: number) => ['--listen', `127.0.0.1:${port}`]],
    ['ingress', (port: number) => ['--http', `127.0.0.1:${port}`, '--https', '127.0.0.1:0']],
  ] as const)('%s: ends the process with one stderr sentence and exit 1 under --log-level silent', async (component, listenArgs) => {
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as AddressInfo).port;
    try {
      const r = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
        execFile(process.execPath, [bin, component, '--manifests', examples, '--admin', '127.0.0.1:0', ...listenArgs(port), '--log-level', 'silent'], { timeout: 15_000 }, (e, stdout, stderr) =>
          resolve({ status: e ? ((e as { code?: number }).code ?? null) : 0, stdout, stderr }),
        );
      });
      expect([r.status, r.stdout]).toEqual([1, '']);
      expect(r.stderr).toMatch(new RegExp(`^netplane ${component}: cannot listen on 127\\.0\\.0\\.1:${port}\\b.*EADDRINUSE.*\n$`));
    } finally {
      taken.close();
    }
  });
});

describe('a port below 1024 without the right to bind it', () => {
  // As in a pod that runs as a user (ingress-nginx's chart: 101), where a capability the pod adds does not reach node:
  // here root without CAP_NET_BIND_SERVICE (its files stay readable wherever the checkout is).
  it.each([
    ['dns', ['--listen', '127.0.0.1:53']],
    ['ingress', ['--http', '127.0.0.1:81', '--https', 'off']],
  ] as const)('%s: says what lets it bind', (component, listenArgs) => {
    const r = spawnSync('setpriv', ['--bounding-set=-net_bind_service', '--inh-caps=-net_bind_service', process.execPath, bin, component, '--manifests', examples, '--admin', '127.0.0.1:0', ...listenArgs, '--log-level', 'silent'], { encoding: 'utf8', timeout: 15_000 });
    expect([r.status, r.stdout]).toEqual([1, '']);
    expect(r.stderr).toMatch(/: permission denied \(a port below 1024 needs root, or net\.ipv4\.ip_unprivileged_port_start at or below it, which a pod sets in securityContext\.sysctls\) \(EACCES\)\n$/);
  });
});

describe('a component process', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('loads the view, serves the admin endpoints, follows edits, and stops cleanly on SIGTERM', async () => {
    dir = await mkdtemp(join(tmpdir(), 'netplane-cli-'));
    await writeFile(join(dir, 'svc.yaml'), 'apiVersion: v1\nkind: Service\nmetadata: { name: a }\nspec: { clusterIP: 10.96.0.1, ports: [{ port: 80 }] }\n');
    const port = await freePort();
    const child = spawn(process.execPath, [bin, 'dns', '--manifests', dir, '--admin', `127.0.0.1:${port}`, '--log-level', 'debug'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    try {
      const ready = await waitFor('readyz', async () => (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.status === 200, 10_000);
      expect(ready).toBe(true);
      const metrics = () => fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text());
      expect(await metrics()).toContain('netplane_cluster_objects{kind="Service"} 1');
      await writeFile(join(dir, 'svc2.yaml'), 'apiVersion: v1\nkind: Service\nmetadata: { name: b }\nspec: { clusterIP: 10.96.0.2 }\n');
      await waitFor('the new Service in the metrics', async () => (await metrics()).includes('netplane_cluster_objects{kind="Service"} 2'), 2000);
      // Every log line is one JSON object.
      const lines = out.trim().split('\n');
      for (const line of lines) expect(() => JSON.parse(line)).not.toThrow();
      expect(lines.map((l) => JSON.parse(l).msg)).toContain('first full view loaded');
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(out).toContain('"msg":"shutting down"');
  });
});

describe('a component process on the Kubernetes API', () => {
  it('is ready once every kind is listed, and stays ready, marked stale, when the API server goes away', async () => {
    const api = await TestApiServer.start();
    // Userspace mode on loopback: the test must not program the host's firewall (it runs as root).
    api.apply({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'a', namespace: 'default' }, spec: { clusterIP: '10.96.0.1', ports: [{ port: await freePort() }] } });
    const port = await freePort();
    const child = spawn(process.execPath, [bin, 'proxy', '--mode', 'userspace', '--bind-address', '127.0.0.1', '--kubeconfig', await api.kubeconfigPath(), '--admin', `127.0.0.1:${port}`], { stdio: 'ignore' });
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    const readyz = async () => {
      const r = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined);
      return r ? { status: r.status, body: (await r.json()) as { stale?: boolean } } : undefined;
    };
    try {
      await waitFor('ready', async () => (await readyz())?.status === 200, 10_000);
      expect(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()).toContain('netplane_cluster_objects{kind="Service"} 1');
      await api.goDown();
      const stale = await waitFor('stale', async () => {
        const r = await readyz();
        return r?.body.stale ? r : undefined;
      });
      expect(stale?.status).toBe(200);
    } finally {
      child.kill('SIGTERM');
      await api.close();
    }
    expect(await exited).toBe(0);
  });
});

/** `netplane up` with these arguments as a child process; `out` is what it has printed so far (stdout and stderr). */
function startUp(args: string[], nodeFlags: string[] = [], env: Record<string, string> = {}): { child: ChildProcess; exited: Promise<number | null>; readonly out: string } {
  const child = spawn(process.execPath, [...nodeFlags, bin, 'up', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return {
    child,
    exited,
    get out() {
      return out;
    },
  };
}

describe("the Node flags up gives its children", () => {
  it.each([
    [['--expose-gc', '--max-old-space-size=512'], ['--expose-gc', '--max-old-space-size=512']],
    [['--inspect=127.0.0.1:9229', '--expose-gc', '--inspect-brk', '--inspect-port', '9230', '--inspect-wait=9231', '--debug-port=9232'], ['--expose-gc']],
  ])('%j gives %j (one inspector port cannot serve every process)', (own, children) => {
    expect(childNodeFlags(own)).toEqual(children);
  });
});

describe('netplane up', () => {
  it('runs components as child processes with its own node flags and prefixed logs, and stops them all on SIGINT', async () => {
    const up = startUp(['--manifests', examples, '--component', 'dns', '--component', 'overlay', '--node-name', 'local'], ['--expose-gc']);
    try {
      await waitFor('both components loaded', () => /^dns +\| .*dns serving/m.test(up.out) && /^overlay +\| .*first full view loaded/m.test(up.out), 15_000);
      // Started with up's --expose-gc, each component collects the garbage of its first load before it is ready.
      await waitFor('both collections', () => /^dns +\| .*collected the garbage of loading the first view/m.test(up.out) && /^overlay +\| .*collected the garbage of loading the first view/m.test(up.out), 15_000);
      expect(up.out).toMatch(/^up +\| started dns \(pid \d+\), admin on http:\/\/127\.0\.0\.1:9153$/m);
      const pids = [...up.out.matchAll(/started \w+ \(pid (\d+)\)/g)].map((m) => Number(m[1]));
      expect(pids).toHaveLength(2);
      up.child.kill('SIGINT');
      expect(await up.exited).toBe(0);
      expect(up.out).toMatch(/^up +\| every component has stopped$/m);
      // No child is left running.
      for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
    } finally {
      up.child.kill('SIGKILL');
    }
  });

  // `npm start`'s command line, on the quick start's fixed ports; in this describe so that it never overlaps the
  // test above (dns on 5353), as tests within a file run one after another.
  it('runs the quick start: every example answers through dns, the ingress and the proxy; SIGINT stops it all', { timeout: 30_000 }, async () => {
    // package.json's start script: VAR=value ... node [node flags] bin/netplane.ts up [flags], run here as written.
    const script = (JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { scripts: { start: string } }).scripts.start;
    const m = /^((?:\w+=\S+ )*)node ((?:--[\w-]+ )*)bin\/netplane\.ts up (.*)$/.exec(script);
    if (!m) throw new Error(`unexpected start script: ${script}`);
    const env = Object.fromEntries(m[1]!.trim().split(' ').filter(Boolean).map((kv) => kv.split('=') as [string, string]));
    const cache = env.NODE_COMPILE_CACHE ? await mkdtemp(join(tmpdir(), 'netplane-cache-')) : undefined;
    const upArgs = m[3]!.split(' ').map((a) => (a === 'examples/quickstart' ? examples : a));
    const up = startUp(upArgs, m[2]!.trim().split(' ').filter(Boolean), cache ? { NODE_COMPILE_CACHE: cache } : {});
    try {
      await waitFor('the listening block', () => /^up +\| admin +/m.test(up.out), 15_000, 50);
      expect(up.out).not.toMatch(/not answering|not ready/);
      expect(up.out).toMatch(/^up +\| dns +udp\+tcp 127\.0\.0\.1:5353, zone cluster\.local +try: dig @127\.0\.0\.1 -p 5353 web\.default\.svc\.cluster\.local$/m);
      expect(up.out).toMatch(/^up +\| ingress +http:\/\/127\.0\.0\.1:8080 https:\/\/127\.0\.0\.1:8443, hosts web\.localhost +try: curl -H 'Host: web\.localhost' http:\/\/127\.0\.0\.1:8080\/$/m);
      expect(up.out).toMatch(/^up +\| proxy +userspace: default\/api:http at 127\.0\.0\.1:8001, default\/web:http at 127\.0\.0\.1:8000 +try: curl http:\/\/127\.0\.0\.1:8000\/$/m);
      expect(up.out).toMatch(/^up +\| backends api-1 127\.0\.0\.1:8083, web-1 127\.0\.0\.1:8081, web-2 127\.0\.0\.1:8082 /m);
      const pids = [...up.out.matchAll(/started [\w-]+ \(pid (\d+)\)/g)].map((m) => Number(m[1]));
      expect(pids).toHaveLength(7);
      // With the script's --expose-gc every component collected its start's garbage before it said it was ready, and
      // the processes filled the compile cache the script names.
      for (const c of ['proxy', 'dns', 'ingress', 'overlay']) expect(up.out).toMatch(new RegExp(`^${c} +\\| .*collected the garbage of loading the first view`, 'm'));
      if (cache) expect((await readdir(cache, { recursive: true })).length).toBeGreaterThan(0);

      const dig = await run('dig', ['@127.0.0.1', '-p', '5353', '+short', '+tries=1', '+time=2', 'web.default.svc.cluster.local']);
      expect(dig.stdout).toBe('10.96.0.20\n');
      const curl = async (...args: string[]) => (await run('curl', ['-sS', '--max-time', '5', ...args])).stdout;
      const viaIngress = new Set<string>();
      const viaProxy = new Set<string>();
      for (let i = 0; i < 4; i++) {
        viaIngress.add(await curl('-H', 'Host: web.localhost', 'http://127.0.0.1:8080/'));
        viaProxy.add(await curl('http://127.0.0.1:8000/'));
      }
      // Round robin over the two endpoints, in both.
      expect([...viaIngress].sort()).toEqual([1, 2].map((n) => `hello from web-${n} (127.0.0.1:808${n}): GET / host web.localhost\n`));
      expect([...viaProxy].sort()).toEqual([1, 2].map((n) => `hello from web-${n} (127.0.0.1:808${n}): GET / host 127.0.0.1:8000\n`));
      expect(await curl('-H', 'Host: web.localhost', 'http://127.0.0.1:8080/api/users')).toBe('hello from api-1 (127.0.0.1:8083): GET /api/users host web.localhost\n');
      expect(await curl('http://127.0.0.1:8001/')).toBe('hello from api-1 (127.0.0.1:8083): GET / host 127.0.0.1:8001\n');
      // kube-proxy's /proxyMode on the proxy's admin port.
      expect(await curl('http://127.0.0.1:10249/proxyMode')).toBe('userspace');
      expect(up.out).toMatch(/^web-1 +\| GET \/ host web\.localhost from 127\.0\.0\.1:\d+$/m);

      up.child.kill('SIGINT');
      expect(await up.exited).toBe(0);
      expect(up.out).toMatch(/^up +\| every component has stopped$/m);
      for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
    } catch (e) {
      // What the processes said is the first thing to read when this fails.
      (e as Error).message += `\n--- output of up ---\n${up.out.split('\n').filter((l) => !l.includes('"level":30')).join('\n')}`;
      throw e;
    } finally {
      up.child.kill('SIGKILL');
      // Retried: a file the last process wrote as it exited can land while the directory is being removed (ENOTEMPTY,
      // seen once in a fresh-clone run).
      if (cache) await rm(cache, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
    }
  });
});
