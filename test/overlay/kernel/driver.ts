// Runs NetlinkKernel operations in the network namespace of this process (started with `ip netns exec`):
// argv[2] is a JSON array of KernelOp (see ops.ts); prints a JSON array of OpResult on one line.
import { NetlinkKernel } from '../../../overlay/kernel/netlink.ts';
import { runOps, type KernelOp } from './ops.ts';

const kernel = NetlinkKernel.open();
try {
  const results = await runOps(kernel, JSON.parse(process.argv[2] ?? '[]') as KernelOp[]);
  process.stdout.write(JSON.stringify(results) + '\n');
} finally {
  kernel.close();
}
