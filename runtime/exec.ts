// Running host commands (nft, iptables-restore, conntrack, ip) behind an interface, so that backends are given a
// runner and tests can give them a fake. Only this file starts processes for the data plane.
import { spawn } from 'node:child_process';

/** A command that failed: its exit code and what it printed on stderr. */
export class CommandError extends Error {
  override readonly name = 'CommandError';
  readonly code = 'NETPLANE_COMMAND_FAILED';
  readonly command: string;
  readonly exitCode: number | null;
  readonly stderr: string;
  constructor(command: string, exitCode: number | null, stderr: string, options?: ErrorOptions) {
    super(`${command} failed${exitCode === null ? '' : ` with exit code ${exitCode}`}: ${stderr.trim().split('\n').slice(0, 5).join(' | ') || '(no output)'}`, options);
    this.command = command;
    this.exitCode = exitCode;
    this.stderr = stderr;
  }
}

/** Output of a command that succeeded. */
export interface CommandOutput {
  stdout: string;
  stderr: string;
}

/** How to run a command: `env` is added to this process's environment for it. */
export interface RunOptions {
  env?: Readonly<Record<string, string>>;
}

/** Runs one command with optional stdin; rejects with CommandError on a non-zero exit or a failure to start. */
export interface CommandRunner {
  run(command: string, args: readonly string[], input?: string, options?: RunOptions): Promise<CommandOutput>;
}

/** Runs commands on this host (in this process's network namespace). */
export class HostRunner implements CommandRunner {
  run(command: string, args: readonly string[], input?: string, options?: RunOptions): Promise<CommandOutput> {
    return new Promise((resolve, reject) => {
      const env = options?.env ? { ...process.env, ...options.env } : undefined;
      const child = spawn(command, [...args], { stdio: ['pipe', 'pipe', 'pipe'], ...(env ? { env } : {}) });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on('data', (d: Buffer) => out.push(d));
      child.stderr.on('data', (d: Buffer) => err.push(d));
      child.on('error', (e) => reject(new CommandError(command, null, e.message, { cause: e })));
      child.on('close', (code) => {
        const stdout = Buffer.concat(out).toString('utf8');
        const stderr = Buffer.concat(err).toString('utf8');
        if (code === 0) resolve({ stdout, stderr });
        else reject(new CommandError(`${command} ${args.join(' ')}`.trim(), code, stderr));
      });
      // A command that exits before reading all of stdin (a syntax error) must not crash us with EPIPE.
      child.stdin.on('error', () => {});
      child.stdin.end(input ?? '');
    });
  }
}
