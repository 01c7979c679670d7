// The `netplane lab` command: up, status, restart and down of a cluster in network namespaces on this machine.
import { stat } from 'node:fs/promises';
import { UsageError, usageExitCode } from '../runtime/errors.ts';
import { formatHelp, intInRange, nonEmpty, oneOf, parseFlags, switchFlag, valueFlag } from '../runtime/flags.ts';
import { labDown } from './down.ts';
import { labComponents } from './plan.ts';
import { labRestart } from './restart.ts';
import { defaultStateDir, LabExistsError, NoLabError } from './state.ts';
import { formatStatus, labStatus } from './status.ts';
import { labUp } from './up.ts';

/** The one-line summary of `netplane lab`. */
export const labSummary = 'Builds a cluster in network namespaces on this machine: nodes, pods, and every component (root).';

const stateDirFlag = () => valueFlag({ value: 'DIR', help: "where the lab's state, manifests and logs live", parse: nonEmpty, default: defaultStateDir });

/** Parses --nodes: a whole number from 2 to 9. */
const nodeCount = intInRange(2, 9);

const specs = {
  up: () => ({
    nodes: valueFlag({ value: 'N', help: 'how many nodes', parse: nodeCount, default: 3 }),
    manifests: valueFlag({ value: 'DIR', help: "extra manifests, copied into the lab's manifests", parse: nonEmpty }),
    'state-dir': stateDirFlag(),
  }),
  status: () => ({ 'state-dir': stateDirFlag(), json: switchFlag('print the status as JSON') }),
  restart: () => ({
    node: valueFlag({ value: 'NAME', help: 'the node, e.g. node1', parse: nonEmpty }),
    component: valueFlag({ value: 'NAME', help: `the component: ${labComponents.join(', ')}`, parse: oneOf(labComponents) }),
    'state-dir': stateDirFlag(),
  }),
  down: () => ({ 'state-dir': stateDirFlag() }),
};
type Sub = keyof typeof specs;

const summaries: Record<Sub, string> = {
  up: 'Builds the lab and starts everything in it; returns once every component is ready.',
  status: "Prints the lab's nodes, pods, Services and the health of every component; exits 1 unless all are ready.",
  restart: 'Stops one component on one node (if it runs) and starts it again; returns once it is ready.',
  down: 'Removes every namespace, link, process and file the lab made.',
};

const usage = `Usage: netplane lab <up|status|restart|down> [flags]

${labSummary}

Commands:
${(Object.keys(summaries) as Sub[]).map((s) => `  ${s.padEnd(9)} ${summaries[s]}`).join('\n')}

Run "netplane lab <command> --help" for its flags.
`;

/** Runs `netplane lab ARGV`; resolves with the exit code. Throws UsageError for a wrong command line. */
export async function labCommand(argv: readonly string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    (sub === undefined ? process.stderr : process.stdout).write(usage);
    return sub === undefined ? usageExitCode : 0;
  }
  if (!(sub in specs)) throw new UsageError(`netplane lab: unknown command ${JSON.stringify(sub)}; commands are up, status, restart, down (see netplane lab --help)`);
  const command = `netplane lab ${sub}`;
  const help = (s: object) => {
    process.stdout.write(formatHelp(command, summaries[sub as Sub], s as never));
    return 0;
  };
  try {
    switch (sub as Sub) {
      case 'up': {
        const s = specs.up();
        const f = parseFlags(command, s, rest);
        if (f === null) return help(s);
        if (f.manifests !== undefined && !(await stat(f.manifests).catch(() => undefined))?.isDirectory()) {
          throw new UsageError(`${command}: --manifests ${JSON.stringify(f.manifests)}: must be a directory of manifests`);
        }
        if (process.getuid?.() !== 0) {
          process.stderr.write(`${command}: needs root (it creates network namespaces, links and nftables rules); run it with sudo\n`);
          return 1;
        }
        return await up(f.nodes, f['state-dir'], f.manifests);
      }
      case 'status': {
        const s = specs.status();
        const f = parseFlags(command, s, rest);
        if (f === null) return help(s);
        const st = await labStatus(f['state-dir']);
        process.stdout.write(f.json ? `${JSON.stringify(st, null, 2)}\n` : formatStatus(st));
        return st.healthy ? 0 : 1;
      }
      case 'restart': {
        const s = specs.restart();
        const f = parseFlags(command, s, rest);
        if (f === null) return help(s);
        if (f.node === undefined || f.component === undefined) throw new UsageError(`${command}: give --node NAME and --component ${labComponents.join('|')}`);
        const r = await labRestart(f['state-dir'], f.node, f.component);
        process.stdout.write(`${r.process.name} ${r.wasRunning ? 'restarted' : 'was not running; started'} as pid ${r.process.pid}, ready in ${r.ms} ms\n`);
        return 0;
      }
      case 'down': {
        const s = specs.down();
        const f = parseFlags(command, s, rest);
        if (f === null) return help(s);
        const r = await labDown(f['state-dir']);
        process.stdout.write(`Lab removed: ${r.namespaces.length} namespaces, ${r.hostLinks.length ? `link ${r.hostLinks.join(', ')}, ` : ''}${r.processes} processes.\n`);
        return 0;
      }
    }
  } catch (e) {
    if (e instanceof UsageError) throw e;
    if (e instanceof LabExistsError || e instanceof NoLabError) {
      process.stderr.write(`${command}: ${e.message}\n`);
      return sub === 'down' && e instanceof NoLabError ? 0 : 1;
    }
    process.stderr.write(`${command}: ${(e as Error).message}\n`);
    return 1;
  }
}

async function up(nodes: number, stateDir: string, extraManifests: string | undefined): Promise<number> {
  const abort = new AbortController();
  const stop = (signal: NodeJS.Signals) => {
    process.stderr.write(`netplane lab up: ${signal}; removing what was made so far\n`);
    abort.abort(new Error(`interrupted by ${signal}`));
  };
  process.once('SIGINT', stop).once('SIGTERM', stop);
  try {
    const state = await labUp({ nodes, stateDir, extraManifests, signal: abort.signal, progress: (line) => process.stderr.write(`netplane lab up: ${line}\n`) });
    process.stdout.write(formatStatus(await labStatus(state.stateDir)));
    return 0;
  } finally {
    process.off('SIGINT', stop).off('SIGTERM', stop);
  }
}
