// The environment `nft` runs in. nft 1.0.6 allocates about 2 KB of small heap objects per set element it loads
// (262 MB for 121,000 elements), and with glibc's defaults the heap grows 128 KB at a time in 4 KB pages: a
// quarter of its time went to malloc and a sixth to page faults. Two glibc tunables let the heap grow 16 MiB at a
// time on transparent huge pages (where the host allows them for madvise(), the default of Debian, Ubuntu and
// RHEL; elsewhere they change nothing): loading 10,000 Services x 10 endpoints took 1.06-1.14 s of CPU (user and
// system) instead of 2.13-2.29 s on the benchmark machine, with 2,000 page faults instead of 65,000 (huge pages
// alone: 1.63-1.67 s; a 64 MiB step measured no better than 16). A host's own GLIBC_TUNABLES is left as it is.
import type { RunOptions } from '../../runtime/exec.ts';

/** glibc.malloc.hugetlb=1: madvise(MADV_HUGEPAGE) on the heap; top_pad: grow it by 16 MiB at a time. */
export const nftTunables = 'glibc.malloc.hugetlb=1:glibc.malloc.top_pad=16777216';

/** Run options for nft commands that load or list whole tables; none when the host sets GLIBC_TUNABLES itself. */
export function nftRunOptions(env: NodeJS.ProcessEnv = process.env): RunOptions {
  return env.GLIBC_TUNABLES === undefined ? { env: { GLIBC_TUNABLES: nftTunables } } : {};
}
