// JSON logs for every process, through pino.
import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger } from 'pino';

/** Log levels accepted by `--log-level`. */
export const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const satisfies readonly LevelWithSilent[];
export type LogLevel = (typeof logLevels)[number];

/**
 * A JSON logger to stdout (or `destination`), tagged with the component name. With `onFatal`, the message of every
 * fatal line is also handed to it, whatever the level (silent included): a fatal line ends the process, and why must
 * be said somewhere.
 */
export function createLogger(component: string, level: LogLevel = 'info', destination?: NodeJS.WritableStream, onFatal?: (message: string) => void): Logger {
  // Silent with onFatal: fatal lines are made (for the hook) and dropped.
  const dropAll = level === 'silent' && onFatal !== undefined;
  const options: pino.LoggerOptions = { level: dropAll ? 'fatal' : level, base: { component }, timestamp: pino.stdTimeFunctions.isoTime };
  if (onFatal) {
    options.hooks = {
      logMethod(args, method, levelValue) {
        if (levelValue === pino.levels.values.fatal) onFatal(messageOf(args as unknown[]));
        method.apply(this, args);
      },
    };
  }
  if (dropAll) return pino(options, { write: () => {} });
  return destination ? pino(options, destination as pino.DestinationStream) : pino(options);
}

/** The message of a pino call: `(msg)`, `(obj, msg)` or `(err)`. */
function messageOf(args: unknown[]): string {
  const [first, second] = args;
  if (typeof first === 'string') return first;
  if (typeof second === 'string') return second;
  if (first instanceof Error) return first.message;
  return 'fatal error';
}

/** A logger that drops everything, for tests that do not read logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
