// Process and machine CPU figures for bench/ingress/ingress.ts, read from /proc (Linux).
import { readdirSync, readFileSync } from 'node:fs';

/** The pid and its descendants (nginx's workers), from /proc/PID/task/TID/children; [pid] alone once it has gone. */
export function tree(pid: number): number[] {
  const out = [pid];
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const kids = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
      for (const k of kids ? kids.split(' ') : []) out.push(...tree(Number(k)));
    }
  } catch {
    // The process has gone.
  }
  return out;
}

/** utime + stime of the process and its descendants, in seconds; processes that have gone count 0. */
export function cpuSeconds(pid: number): number {
  let ticks = 0;
  for (const p of tree(pid)) {
    try {
      const f = readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1]!.split(' ');
      ticks += Number(f[11]) + Number(f[12]);
    } catch {
      // Exited between the listing and the read.
    }
  }
  return ticks / 100;
}

/** Busy seconds of the whole machine (all CPUs added) from /proc/stat: everything but idle and iowait. */
export function machineBusySeconds(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  return (f.reduce((a, b) => a + b, 0) - f[3]! - f[4]!) / 100;
}

/** CPU seconds of this process and of its children that have exited and been waited for (utime, stime, cutime, cstime). */
export function selfSeconds(): number {
  const f = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ').slice(11, 15).map(Number);
  return f.reduce((a, b) => a + b, 0) / 100;
}
