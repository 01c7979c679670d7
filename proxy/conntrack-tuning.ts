// The conntrack settings kube-proxy makes on start (its --conntrack-* flags, with its defaults): a table large enough
// for a node full of Services (nf_conntrack_max raised, never lowered, to max(min, per-core × cores), with the hash
// table at a quarter of it), established TCP entries kept 24 h instead of the kernel's 5 days, CLOSE_WAIT ones 1 h
// instead of 60 s, optionally `tcp_be_liberal`, and the UDP time-outs when asked (kube-proxy leaves those by
// default). A value the kernel refuses (nf_conntrack_max is read-only outside the host's own network namespace) is
// logged and left: the rules matter more.
import { readFile, writeFile } from 'node:fs/promises';
import type { Logger } from '../runtime/logger.ts';

/** The settings as flags give them; 0 leaves that one as it is. */
export interface ConntrackSettings {
  maxPerCore: number;
  min: number;
  tcpEstablishedSeconds: number;
  tcpCloseWaitSeconds: number;
  tcpBeLiberal: boolean;
  /** An UNREPLIED UDP entry's time-out, and an ASSURED one's (nf_conntrack_udp_timeout, _stream); 0 leaves them. */
  udpSeconds?: number;
  udpStreamSeconds?: number;
}

/** kube-proxy's defaults. */
export const conntrackDefaults: ConntrackSettings = { maxPerCore: 32_768, min: 131_072, tcpEstablishedSeconds: 86_400, tcpCloseWaitSeconds: 3_600, tcpBeLiberal: false };

/** The files written, by name. */
export const conntrackFiles = {
  max: '/proc/sys/net/netfilter/nf_conntrack_max',
  hashsize: '/sys/module/nf_conntrack/parameters/hashsize',
  tcpEstablished: '/proc/sys/net/netfilter/nf_conntrack_tcp_timeout_established',
  tcpCloseWait: '/proc/sys/net/netfilter/nf_conntrack_tcp_timeout_close_wait',
  tcpBeLiberal: '/proc/sys/net/netfilter/nf_conntrack_tcp_be_liberal',
  udp: '/proc/sys/net/netfilter/nf_conntrack_udp_timeout',
  udpStream: '/proc/sys/net/netfilter/nf_conntrack_udp_timeout_stream',
} as const;

/** One write: which file, the value, and what it was. */
export interface ConntrackWrite {
  file: keyof typeof conntrackFiles;
  value: number;
  was: number;
}

/**
 * The writes that bring `current` to the settings on a machine with `cores` cores. Pure. A file whose current value
 * is unknown (the conntrack module not loaded) is left alone; the hash size follows the table only when it grows.
 */
export function planConntrack(s: ConntrackSettings, cores: number, current: Partial<Record<keyof typeof conntrackFiles, number>>): ConntrackWrite[] {
  const out: ConntrackWrite[] = [];
  const set = (file: keyof typeof conntrackFiles, value: number, when: (was: number) => boolean) => {
    const was = current[file];
    if (was !== undefined && when(was)) out.push({ file, value, was });
  };
  const max = s.maxPerCore > 0 ? Math.max(s.min, s.maxPerCore * cores) : 0;
  if (max > 0) {
    set('max', max, (was) => was < max);
    // Only with the table: writing the hash size alone would change it for every network namespace of the host.
    if (out.length > 0) set('hashsize', Math.floor(max / 4), (was) => was < Math.floor(max / 4));
  }
  if (s.tcpEstablishedSeconds > 0) set('tcpEstablished', s.tcpEstablishedSeconds, (was) => was !== s.tcpEstablishedSeconds);
  if (s.tcpCloseWaitSeconds > 0) set('tcpCloseWait', s.tcpCloseWaitSeconds, (was) => was !== s.tcpCloseWaitSeconds);
  if (s.tcpBeLiberal) set('tcpBeLiberal', 1, (was) => was !== 1);
  const udp = s.udpSeconds ?? 0;
  const udpStream = s.udpStreamSeconds ?? 0;
  if (udp > 0) set('udp', udp, (was) => was !== udp);
  if (udpStream > 0) set('udpStream', udpStream, (was) => was !== udpStream);
  return out;
}

/** Reads the current values, writes what differs in order, logs each; never throws. Returns the writes made. */
export async function applyConntrack(s: ConntrackSettings, cores: number, log: Logger, files: Record<keyof typeof conntrackFiles, string> = conntrackFiles): Promise<ConntrackWrite[]> {
  const current: Partial<Record<keyof typeof conntrackFiles, number>> = {};
  for (const [name, path] of Object.entries(files) as Array<[keyof typeof conntrackFiles, string]>) {
    const text = await readFile(path, 'utf8').catch(() => undefined);
    const n = text === undefined ? Number.NaN : Number(text.trim());
    if (Number.isFinite(n)) current[name] = n;
  }
  const done: ConntrackWrite[] = [];
  let maxRefused = false;
  for (const w of planConntrack(s, cores, current)) {
    if (w.file === 'hashsize' && maxRefused) continue;
    try {
      await writeFile(files[w.file], `${w.value}\n`);
      done.push(w);
      log.info({ setting: files[w.file], from: w.was, to: w.value }, 'conntrack setting changed');
    } catch (e) {
      if (w.file === 'max') maxRefused = true;
      log.warn({ setting: files[w.file], value: w.value, err: (e as Error).message }, 'cannot change a conntrack setting; leaving it as it is');
    }
  }
  return done;
}
