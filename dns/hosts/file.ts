// Keeps a HostsHandler fed from a file: read at start, read again when its size or time changes (polled, as
// CoreDNS's hosts plugin re-reads every 5 s; polling also sees a file replaced by rename, as ConfigMaps are).
import { readFile } from 'node:fs/promises';
import { unwatchFile, watchFile } from 'node:fs';
import type { Logger } from '../../runtime/logger.ts';
import { parseHosts, type HostsHandler } from './hosts.ts';

/** Loads `path` into `handler` now and on every change; resolves once the first read is done. Returns a stop. */
export async function followHostsFile(path: string, handler: HostsHandler, log: Logger, intervalMs = 5000): Promise<() => void> {
  let last = '';
  const load = async () => {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      log.warn({ file: path, err: (e as Error).message }, `cannot read the hosts file; ${handler.size > 0 ? 'keeping the names read before' : 'no names from it yet'}`);
      return;
    }
    if (text === last) return;
    last = text;
    const { table, problems } = parseHosts(text);
    for (const p of problems) log.warn({ file: path, line: p.line, reason: p.reason }, 'hosts file line left out');
    handler.replace(table);
    log.info({ file: path, names: table.byName.size, problems: problems.length }, 'hosts file loaded');
  };
  await load();
  const onChange = () => void load();
  watchFile(path, { interval: intervalMs, persistent: false }, onChange);
  return () => unwatchFile(path, onChange);
}
