// Runs before the test suite: names every missing tool at once, with the command that installs them.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const tools: Record<string, string> = { nft: 'nftables', iptables: 'iptables', ip: 'iproute2', dig: 'dnsutils', conntrack: 'conntrack', promtool: 'prometheus', curl: 'curl', sysctl: 'procps', ping: 'iputils-ping', unbound: 'unbound', haproxy: 'haproxy', nginx: 'nginx-light' };

const missing = Object.entries(tools).filter(([tool]) => {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    return false;
  } catch {
    return true;
  }
});
const listed = new Set(readFileSync(new URL('../.ci/packages', import.meta.url), 'utf8').split('\n').filter(Boolean));
const unlisted = Object.values(tools).filter((p) => !listed.has(p));
if (unlisted.length > 0) {
  process.stderr.write(`test/preflight.ts: packages ${unlisted.join(', ')} are used by tests but missing from .ci/packages\n`);
  process.exit(1);
}
if (missing.length > 0) {
  const pkgs = [...new Set(missing.map(([, p]) => p))].join(' ');
  process.stderr.write(
    `The tests need ${missing.map(([t]) => t).join(', ')}; install them with: apt-get install -y --no-install-recommends ${pkgs} (or run .ci/run as root)\n`,
  );
  process.exit(1);
}
