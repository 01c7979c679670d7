// netplane started as the programs it stands in for: through links named as their binaries to bin/anchor (what the
// image puts at /usr/local/bin/kube-proxy, /opt/bin/flanneld, /coredns and /nginx-ingress-controller), and through the
// entry point with the args those programs' manifests give it (ingress-nginx's chart: /nginx-ingress-controller first;
// a CoreDNS Deployment: -conf first). Each runs the component that does the program's job, reading its flags.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/ports.ts';
import { waitFor } from '../helpers/wait.ts';
import { dig } from '../dns/process.ts';

const bin = fileURLToPath(new URL('../../bin/netplane.ts', import.meta.url));
const anchor = fileURLToPath(new URL('../../bin/anchor', import.meta.url));
const links = mkdtempSync(join(tmpdir(), 'netplane-anchor-'));
// bin/anchor runs `node` from PATH: this Node first, as the image's is its own.
const env = { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}` };

afterAll(() => rmSync(links, { recursive: true, force: true }));

/** A link named `program` to bin/anchor, as the image makes it (once); returns its path. */
function link(program: string): string {
  const path = join(links, program);
  if (!existsSync(path)) symlinkSync(anchor, path);
  return path;
}

describe('the anchors’ programs', () => {
  it.each([
    ['kube-proxy', 'proxy', "kube-proxy's flags"],
    ['flanneld', 'overlay', "flanneld's flags"],
    ['coredns', 'dns', "CoreDNS's flags"],
    ['node-cache', 'dns', "node-cache's flags"],
    ['nginx-ingress-controller', 'ingress', "ingress-nginx's flags"],
  ])('%s, a link to bin/anchor, is netplane %s reading its flags', (program, component, section) => {
    const r = spawnSync(link(program), ['--help'], { encoding: 'utf8', env, timeout: 15_000 });
    expect([r.status, r.stderr]).toEqual([0, '']);
    expect(r.stdout).toMatch(new RegExp(`^Usage: netplane ${component} \\[flags\\]\\n`));
    expect(r.stdout).toContain(`\n${section}, also taken`);
  });

  it("runs ingress-nginx's chart args given to the entry point, /nginx-ingress-controller first, refusing as netplane ingress does", () => {
    const r = spawnSync(process.execPath, [bin, '/nginx-ingress-controller', '--election-id=ingress-nginx-leader', '--watch-namespace=ingress-nginx'], { encoding: 'utf8', timeout: 15_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^netplane ingress: --watch-namespace "ingress-nginx": netplane ingress reads Ingresses in every namespace/);
  });

  it('serves through the nginx-ingress-controller link, and stops on SIGTERM', async () => {
    const dir = mkdtempSync(join(links, 'manifests-'));
    const [http, admin] = [await freePort(), await freePort()];
    const child = spawn(link('nginx-ingress-controller'), ['--manifests', dir, `--http-port=${http}`, '--https', 'off', '--healthz-host=127.0.0.1', `--healthz-port=${admin}`, '--v=1'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    try {
      await waitFor('the gateway ready', async () => (await fetch(`http://127.0.0.1:${admin}/readyz`)).ok, 15_000, 50).catch((e: Error) => {
        throw new Error(`${e.message}\n${output}`);
      });
      // --http-port is the listener on every IPv4 address: reached on loopback, it answers what no Ingress takes.
      expect((await fetch(`http://127.0.0.1:${http}/`)).status).toBe(404);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });

  it("runs a CoreDNS Deployment's args given to the entry point, -conf first, and answers from its Corefile", async () => {
    const dir = mkdtempSync(join(links, 'coredns-'));
    const port = await freePort();
    writeFileSync(join(dir, 'Corefile'), `.:${port} {\n    bind 127.0.0.1\n    kubernetes cluster.local\n}\n`);
    writeFileSync(join(dir, 'svc.yaml'), 'apiVersion: v1\nkind: Service\nmetadata: { name: web, namespace: default }\nspec: { clusterIP: 10.96.0.10, ports: [{ port: 80 }] }\n');
    const admin = await freePort();
    const child = spawn(process.execPath, [bin, '-conf', join(dir, 'Corefile'), '--manifests', dir, '--admin', `127.0.0.1:${admin}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    try {
      await waitFor('netplane dns to answer', async () => (await dig(port, 'web.default.svc.cluster.local')).status === 'NOERROR', 15_000, 100).catch((e: Error) => {
        throw new Error(`${e.message}\n${output}`);
      });
      expect((await dig(port, 'web.default.svc.cluster.local')).answer).toEqual(['web.default.svc.cluster.local. IN A 10.96.0.10']);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });
});
