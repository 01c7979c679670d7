// The one error type of the overlay's kernel layer: what was attempted, and the errno name the kernel answered.
import { constants } from 'node:os';
import { getSystemErrorMessage } from 'node:util';

/** The stable `code` of every KernelError. */
export const KERNEL_ERROR_CODE = 'NETPLANE_KERNEL';

/** Errno names a delete gets when the entry (or its whole device) is already gone. */
export const ABSENT_ERRNOS: ReadonlySet<string> = new Set(['ENOENT', 'ESRCH', 'EADDRNOTAVAIL', 'ENODEV']);

/** A kernel operation failed; `errno` is the errno name ('EEXIST', 'ENOENT', 'EPERM', 'EINVAL'...). */
export class KernelError extends Error {
  override readonly name = 'KernelError';
  readonly code = KERNEL_ERROR_CODE;
  /** The errno name, as in `os.constants.errno`. */
  readonly errno: string;
  /** The operation and its subject, e.g. `createVxlan netplane.1`. */
  readonly op: string;

  /** `detail` says what was wrong with the input when there is more to say than the errno. */
  constructor(op: string, errno: string, options?: { cause?: unknown; detail?: string }) {
    super(`${op}: ${errno} (${describe(errno)})${options?.detail ? `: ${options.detail}` : ''}`, { cause: options?.cause });
    this.op = op;
    this.errno = errno;
  }
}

/** Whether `err` is a KernelError, with that errno name when one is given. */
export function isKernelError(err: unknown, errno?: string): err is KernelError {
  return err instanceof KernelError && (errno === undefined || err.errno === errno);
}

/** The errno name of a positive or negative errno number ('E123' when unknown). */
export function errnoName(errno: number): string {
  const n = Math.abs(errno);
  for (const [name, value] of Object.entries(constants.errno)) if (value === n) return name;
  return `E${n}`;
}

/** The errno name a failed system call carries as its `code` (an ErrnoException), else 'EIO'. */
export function errnoOf(e: unknown): string {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) ? code : 'EIO';
}

function describe(errno: string): string {
  const n = (constants.errno as Record<string, number>)[errno];
  return n === undefined ? 'unknown error' : getSystemErrorMessage(-n).toLowerCase();
}
