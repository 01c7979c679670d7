// JSON logs for every process, through pino.
import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger } from 'pino';

/** Log levels accepted by `--log-level`. */
export const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const satisfies readonly LevelWithSilent[];
export type LogLevel = (typeof logLevels)[number];

/** A JSON logger to stdout (or `destination`), tagged with the component name. */
export function createLogger(component: string, level: LogLevel = 'info', destination?: NodeJS.WritableStream): Logger {
  const options = { level, base: { component }, timestamp: pino.stdTimeFunctions.isoTime };
  return destination ? pino(options, destination as pino.DestinationStream) : pino(options);
}

/** A logger that drops everything, for tests that do not read logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
