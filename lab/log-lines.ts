// Reading a component's JSON log from its stdout, one record per line, for tests, benchmarks and the lab.
import type { Readable } from 'node:stream';

/** A log record: the JSON object of one line, or `{ msg: line }` for a line that is not JSON. */
export type LogRecord = Record<string, unknown>;

/** Calls `each` with every line of `stream` as a record, as lines complete. */
export function onLogLines(stream: Readable, each: (record: LogRecord) => void): void {
  let buf = '';
  stream.on('data', (d: Buffer | string) => {
    buf += d;
    let k;
    while ((k = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, k);
      buf = buf.slice(k + 1);
      let record: LogRecord;
      try {
        record = JSON.parse(line) as LogRecord;
      } catch {
        record = { msg: line };
      }
      each(record);
    }
  });
}
