// A probe loop for the lab's end-to-end tests: every EVERY ms, one HTTP GET on a new connection and/or one DNS
// query, printing one JSON line per attempt as it finishes, until MS have passed, COUNT rounds are done, or SIGTERM.
// Usage: node probe.ts [--http URL] [--host HOST] [--dns SERVER NAME] [--every MS] [--ms MS] [--count N] [--timeout MS]
import { Resolver } from 'node:dns/promises';
import { request } from 'node:http';

const argv = process.argv.slice(2);
const opt = (flag: string, n = 1): string[] | undefined => {
  const i = argv.indexOf(flag);
  return i >= 0 ? argv.slice(i + 1, i + 1 + n) : undefined;
};
const url = opt('--http')?.[0];
const host = opt('--host')?.[0];
const dns = opt('--dns', 2);
const every = Number(opt('--every')?.[0] ?? 50);
const ms = Number(opt('--ms')?.[0] ?? 60_000);
const count = Number(opt('--count')?.[0] ?? Infinity);
const timeout = Number(opt('--timeout')?.[0] ?? 500);

/** One attempt, as printed. */
type Line = { t: number; kind: 'http' | 'dns'; ok: boolean; pod?: string; node?: string; client?: string; status?: number; addrs?: string[]; error?: string };

function http(u: string): Promise<Line> {
  const t = Date.now();
  return new Promise((resolve) => {
    const req = request(u, { agent: false, timeout, headers: host ? { host } : {} }, (res) => {
      res.resume();
      res.on('end', () => {
        const ok = res.statusCode === 200;
        resolve({ t, kind: 'http', ok, status: res.statusCode, pod: res.headers['x-pod'] as string | undefined, node: res.headers['x-node'] as string | undefined, client: res.headers['x-client-address'] as string | undefined });
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ t, kind: 'http', ok: false, error: e.code ?? e.message }));
    req.end();
  });
}

const resolver = new Resolver({ timeout, tries: 1 });
if (dns) resolver.setServers([dns[0]!]);
async function query(name: string): Promise<Line> {
  const t = Date.now();
  try {
    return { t, kind: 'dns', ok: true, addrs: await resolver.resolve4(name) };
  } catch (e) {
    return { t, kind: 'dns', ok: false, error: (e as NodeJS.ErrnoException).code ?? (e as Error).message };
  }
}

let stopped = false;
process.on('SIGTERM', () => (stopped = true));
const end = Date.now() + ms;
for (let round = 0; round < count && !stopped && Date.now() < end; round++) {
  const next = Date.now() + every;
  const lines = await Promise.all([...(url ? [http(url)] : []), ...(dns ? [query(dns[1]!)] : [])]);
  process.stdout.write(lines.map((l) => `${JSON.stringify(l)}\n`).join(''));
  const wait = next - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
}
