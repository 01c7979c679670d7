// Network namespaces made for one test or lab run, and removed with everything in them when it ends, also when
// it fails. Names carry a random id so that parallel runs never collide.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { CommandError, HostRunner, type CommandOutput, type RunOptions } from '../runtime/exec.ts';

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
  #hostLinks: string[] = [];

  private constructor(id: string) {
    this.id = id;
  }

  /** Starts an empty lab; names get the prefix `np<id>-` (id: random unless given, letters and digits). */
  static create(options: { id?: string } = {}): NetnsLab {
    const id = options.id ?? randomBytes(3).toString('hex');
    if (!/^[a-z0-9]{1,12}$/.test(id)) throw new Error(`lab id ${JSON.stringify(id)}: must be 1 to 12 lowercase letters or digits`);
    return new NetnsLab(id);
  }

  /**
   * A lab made earlier, maybe by another process: every existing namespace named `np<id>-*` and the given links of
   * the host's own namespace, so that `destroy()` removes them.
   */
  static async adopt(id: string, hostLinks: readonly string[] = []): Promise<NetnsLab> {
    const lab = NetnsLab.create({ id });
    const { stdout } = await host.run('ip', ['netns', 'list']);
    // `ip netns list` prints "name (id: N)" for namespaces with a peer id.
    lab.#namespaces = stdout.split('\n').map((l) => l.split(' ')[0]!).filter((n) => n.startsWith(lab.prefix));
    lab.#hostLinks = [...hostLinks];
    return lab;
  }

  /** The prefix of every namespace name of this lab. */
  get prefix(): string {
    return `np${this.id}-`;
  }

  /** The full names of the namespaces made (or adopted) so far. */
  get namespaces(): readonly string[] {
    return [...this.#namespaces];
  }

  /** Creates a namespace with loopback up; returns its full name. Rejects (CommandError) when it exists already. */
  async ns(name: string): Promise<string> {
    const full = `${this.prefix}${name}`;
    await host.run('ip', ['netns', 'add', full]);
    this.#namespaces.push(full);
    await this.exec(full, 'ip', ['link', 'set', 'lo', 'up']);
    // No duplicate address detection: link-local addresses are usable at once, so IPv6 neighbour discovery does
    // not hold the first packets for a second.
    await this.exec(full, 'sysctl', ['-qw', 'net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0']);
    return full;
  }

  /** Runs a command inside a namespace. Rejects with CommandError on failure. */
  exec(ns: string, command: string, args: readonly string[], input?: string, options?: RunOptions): Promise<CommandOutput> {
    return host.run('ip', ['netns', 'exec', ns, command, ...args], input, options);
  }

  /** Starts a long-running process inside a namespace; it is killed by destroy(). */
  spawn(ns: string, command: string, args: readonly string[]): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', ns, command, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#processes.push(child);
    return child;
  }

  /**
   * Starts a process inside a namespace that outlives this one: its own process group, output appended to
   * `logFile`. Returns its pid (`ip netns exec` execs the command, so it is the command's). destroy() kills it with
   * everything else in the namespace.
   */
  spawnDetached(ns: string, command: string, args: readonly string[], logFile: string): number {
    const fd = openSync(logFile, 'a');
    try {
      const child = spawn('ip', ['netns', 'exec', ns, command, ...args], { stdio: ['ignore', fd, fd], detached: true });
      child.on('error', () => {});
      child.unref();
      if (child.pid === undefined) throw new Error(`cannot start ${command} in ${ns}`);
      return child.pid;
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Connects the host's own namespace to `end` with a veth pair: `hostIfname` stays here with `hostAddrs`.
   * Rejects (CommandError) when a link of that name exists already. destroy() deletes it.
   */
  async hostVeth(hostIfname: string, hostAddrs: readonly string[], end: LinkEnd): Promise<void> {
    const tmp = `v${randomBytes(4).toString('hex')}`;
    await host.run('ip', ['link', 'add', hostIfname, 'type', 'veth', 'peer', 'name', tmp]);
    this.#hostLinks.push(hostIfname);
    await host.run('ip', ['link', 'set', tmp, 'netns', end.ns]);
    await this.exec(end.ns, 'ip', ['link', 'set', tmp, 'name', end.ifname]);
    await this.#address(end);
    for (const addr of hostAddrs) await host.run('ip', ['addr', 'add', addr, 'dev', hostIfname]);
    await host.run('ip', ['link', 'set', hostIfname, 'up']);
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
      // IPv6: no duplicate address detection, so the address is usable at once (nothing else is on these links).
      await this.exec(end.ns, 'ip', ['addr', 'add', addr, 'dev', end.ifname, ...(addr.includes(':') ? ['nodad'] : [])]);
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
    for (const link of this.#hostLinks.reverse()) {
      // Deleting one end of a veth pair deletes both; the peer may be gone already with its namespace.
      await host.run('ip', ['link', 'del', link]).catch(() => undefined);
    }
    this.#namespaces = [];
    this.#processes = [];
    this.#hostLinks = [];
  }
}
