// Network namespaces made for one test or lab run, and removed with everything in them when it ends, also when
// it fails. Names carry a random id so that parallel runs never collide.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { CommandError, HostRunner, type CommandOutput } from '../runtime/exec.ts';

const host = new HostRunner();

/** One end of a veth pair or a bridge port: namespace, interface name, addresses with prefix length. */
export interface LinkEnd {
  ns: string;
  ifname: string;
  addrs?: string[];
}

/** A set of namespaces, links and processes, all removed by `destroy()`. */
export class NetnsLab {
  readonly id: string;
  #namespaces: string[] = [];
  #processes: ChildProcess[] = [];

  private constructor(id: string) {
    this.id = id;
  }

  /** Starts an empty lab; names get the prefix `np<id>-`. */
  static create(): NetnsLab {
    return new NetnsLab(randomBytes(3).toString('hex'));
  }

  /** Creates a namespace with loopback up; returns its full name. */
  async ns(name: string): Promise<string> {
    const full = `np${this.id}-${name}`;
    await host.run('ip', ['netns', 'add', full]);
    this.#namespaces.push(full);
    await this.exec(full, 'ip', ['link', 'set', 'lo', 'up']);
    // No duplicate address detection: link-local addresses are usable at once, so IPv6 neighbour discovery does
    // not hold the first packets for a second.
    await this.exec(full, 'sysctl', ['-qw', 'net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0']);
    return full;
  }

  /** Runs a command inside a namespace. Rejects with CommandError on failure. */
  exec(ns: string, command: string, args: readonly string[], input?: string): Promise<CommandOutput> {
    return host.run('ip', ['netns', 'exec', ns, command, ...args], input);
  }

  /** Starts a long-running process inside a namespace; it is killed by destroy(). */
  spawn(ns: string, command: string, args: readonly string[]): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', ns, command, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#processes.push(child);
    return child;
  }

  /** Connects two namespaces with a veth pair, addresses them and brings both ends up. */
  async veth(a: LinkEnd, b: LinkEnd): Promise<void> {
    const tmp = `v${randomBytes(4).toString('hex')}`;
    await host.run('ip', ['link', 'add', `${tmp}a`, 'type', 'veth', 'peer', 'name', `${tmp}b`]);
    await host.run('ip', ['link', 'set', `${tmp}a`, 'netns', a.ns]);
    await host.run('ip', ['link', 'set', `${tmp}b`, 'netns', b.ns]);
    for (const [end, name] of [[a, `${tmp}a`], [b, `${tmp}b`]] as const) {
      await this.exec(end.ns, 'ip', ['link', 'set', name, 'name', end.ifname]);
      await this.#address(end);
    }
  }

  /** Creates a bridge in a namespace with addresses, up. */
  async bridge(end: LinkEnd): Promise<void> {
    await this.exec(end.ns, 'ip', ['link', 'add', end.ifname, 'type', 'bridge']);
    await this.#address(end);
  }

  /** Connects `pod` (a namespace) to `bridge` in `node` with a veth pair; the pod side gets addrs. */
  async attach(bridge: LinkEnd, pod: LinkEnd, nodeSide: string): Promise<void> {
    await this.veth({ ns: bridge.ns, ifname: nodeSide }, pod);
    await this.exec(bridge.ns, 'ip', ['link', 'set', nodeSide, 'master', bridge.ifname]);
  }

  async #address(end: LinkEnd): Promise<void> {
    for (const addr of end.addrs ?? []) {
      await this.exec(end.ns, 'ip', ['addr', 'add', addr, 'dev', end.ifname]);
    }
    await this.exec(end.ns, 'ip', ['link', 'set', end.ifname, 'up']);
  }

  /** Kills every process started here and deletes every namespace (their links go with them). Never throws. */
  async destroy(): Promise<void> {
    for (const p of this.#processes) {
      if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    }
    await Promise.all(this.#processes.map((p) => (p.exitCode === null && p.signalCode === null ? new Promise((r) => p.once('exit', r)) : undefined)));
    for (const ns of this.#namespaces.reverse()) {
      // Processes started by `ip netns exec` outside spawn() (a component under test) are killed with the namespace.
      await host.run('ip', ['netns', 'pids', ns]).then(
        ({ stdout }) => Promise.all(stdout.split('\n').filter(Boolean).map((pid) => host.run('kill', ['-9', pid]).catch(() => undefined))),
        () => undefined,
      );
      await host.run('ip', ['netns', 'del', ns]).catch((e: CommandError) => process.stderr.write(`netns ${ns}: ${e.message}\n`));
    }
    this.#namespaces = [];
    this.#processes = [];
  }
}
