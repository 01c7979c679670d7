// Errors every process shares.

/** A wrong command line: one sentence for the user; the process exits with code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  readonly code = 'NETPLANE_USAGE';
}

/** Exit code for a wrong command line, as most Unix tools use. */
export const usageExitCode = 2;
