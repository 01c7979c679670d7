// Answers over UDP to a wildcard listen address leave from the address the query went to, on a host with several
// addresses: which addresses get a socket of their own, and dig in a client namespace asking each of the server
// namespace's addresses (a secondary one, one added while it runs) of a real `netplane dns`.
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { NetworkInterfaceInfo } from 'node:os';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pinnedAddresses } from '../../dns/server/pinned.ts';
import { NetnsLab } from '../../lab/netns.ts';
import { service } from '../fixtures/objects.ts';
import { waitFor } from '../helpers/wait.ts';

const bin = fileURLToPath(new URL('../../bin/netplane.ts', import.meta.url));

function info(address: string): NetworkInterfaceInfo {
  const v6 = address.includes(':');
  return { address, family: v6 ? 'IPv6' : 'IPv4', netmask: v6 ? 'ffff:ffff:ffff:ffff::' : '255.255.255.0', mac: '00:00:00:00:00:00', internal: false, cidr: null, ...(v6 ? { scopeid: 0 } : {}) } as NetworkInterfaceInfo;
}

describe('pinnedAddresses', () => {
  const interfaces = {
    lo: [info('127.0.0.1'), info('::1'), info('127.0.0.53')],
    eth0: [info('10.1.0.2'), info('10.1.0.1'), info('fd00:1::1'), info('fe80::1')],
    dummy0: [info('169.254.20.10'), info('10.1.0.1')],
  };
  it.each([
    ['0.0.0.0', {}, ['10.1.0.1', '10.1.0.2', '127.0.0.53', '169.254.20.10'], 0],
    ['::', {}, ['10.1.0.1', '10.1.0.2', '127.0.0.53', '169.254.20.10', 'fd00:1::1'], 0],
    ['::', { ipv4: false }, ['fd00:1::1'], 0],
    ['0.0.0.0', { limit: 2 }, ['10.1.0.1', '10.1.0.2'], 2],
  ] as const)('%s %o pins %o (left out: %d)', (wildcard, options, addresses, leftOut) => {
    expect(pinnedAddresses(wildcard, interfaces, options)).toEqual({ addresses, leftOut });
  });
});

describe('netplane dns on a host with several addresses, listening on a wildcard', () => {
  let lab: NetnsLab;
  let server: string;
  let client: string;
  let dir: string;

  beforeAll(async () => {
    lab = NetnsLab.create();
    server = await lab.ns('server');
    client = await lab.ns('client');
    await lab.veth({ ns: server, ifname: 'eth0', addrs: ['10.1.0.1/24', '10.1.0.2/24', 'fd00:1::1/64', 'fd00:1::2/64'] }, { ns: client, ifname: 'eth0', addrs: ['10.1.0.9/24', 'fd00:1::9/64'] });
    dir = await mkdtemp(join(tmpdir(), 'netplane-dns-pinned-'));
    await writeFile(join(dir, 'web.yaml'), JSON.stringify(service('web', { clusterIP: '10.96.0.10', ports: [{ name: 'http', port: 80 }] })));
  });
  afterAll(async () => {
    await lab?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** dig from the client namespace: the answer's addresses, or dig's complaint (a reply from another address is one). */
  async function ask(at: string): Promise<string> {
    const out = await lab.exec(client, 'dig', [`@${at}`, '+time=1', '+tries=1', '+short', 'web.default.svc.cluster.local']).then(
      (r) => r.stdout,
      (e: { stdout?: string; message: string }) => e.stdout ?? e.message,
    );
    return out.includes('unexpected source') ? 'reply from an unexpected source' : out.trim();
  }

  async function start(listen: string): Promise<ChildProcess> {
    const proc = lab.spawn(server, process.execPath, [bin, 'dns', '--manifests', dir, '--listen', listen, '--admin', '127.0.0.1:0', '--node-name', 'n1', '--lameduck', '0s']);
    let out = '';
    proc.stdout!.on('data', (d) => (out += d));
    proc.stderr!.on('data', (d) => (out += d));
    await waitFor('dns listening', () => out.includes('dns serving') || proc.exitCode !== null, 15_000);
    expect(proc.exitCode, out).toBeNull();
    return proc;
  }

  it.each([
    ['0.0.0.0:53', ['10.1.0.1', '10.1.0.2'], '10.1.0.3'],
    ['[::]:53', ['10.1.0.1', '10.1.0.2', 'fd00:1::1', 'fd00:1::2'], 'fd00:1::3'],
  ] as const)('--listen %s: each address answers from itself, also one added while it runs', async (listen, addresses, added) => {
    const proc = await start(listen);
    try {
      for (const a of addresses) expect(await ask(a), a).toBe('10.96.0.10');
      await lab.exec(server, 'ip', ['addr', 'add', `${added}/${added.includes(':') ? 64 : 24}`, 'dev', 'eth0', ...(added.includes(':') ? ['nodad'] : [])]);
      // Read again within 5 s (the refresh period).
      await waitFor(`an answer from ${added}`, async () => (await ask(added)) === '10.96.0.10', 12_000);
      // A removed address's socket goes; the others keep answering.
      await lab.exec(server, 'ip', ['addr', 'del', `${addresses[1]}/${addresses[1].includes(':') ? 64 : 24}`, 'dev', 'eth0']);
      await new Promise((r) => setTimeout(r, 5500));
      expect(await ask(addresses[0]!)).toBe('10.96.0.10');
      expect(await ask(added)).toBe('10.96.0.10');
      await lab.exec(server, 'ip', ['addr', 'add', `${addresses[1]}/${addresses[1].includes(':') ? 64 : 24}`, 'dev', 'eth0', ...(addresses[1].includes(':') ? ['nodad'] : [])]);
      await lab.exec(server, 'ip', ['addr', 'del', `${added}/${added.includes(':') ? 64 : 24}`, 'dev', 'eth0']);
      expect(proc.exitCode).toBeNull();
    } finally {
      proc.kill('SIGKILL');
      await new Promise((r) => (proc.exitCode !== null || proc.signalCode !== null ? r(undefined) : proc.once('exit', r)));
    }
  }, 40_000);
});
