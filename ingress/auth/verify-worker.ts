// The worker thread of VerifyPool (verify-pool.ts): checks one password against one htpasswd hash per message, off
// the gateway's event loop. Messages in: { id, password, hash, scheme }; out: { id, ok }.
import { parentPort } from 'node:worker_threads';
import { verifyPassword, type HashScheme } from './htpasswd.ts';

/** One password check asked of the worker. */
export interface VerifyJob {
  id: number;
  password: string;
  hash: string;
  scheme: HashScheme;
}

/** The worker's answer to a VerifyJob. */
export interface VerifyAnswer {
  id: number;
  ok: boolean;
}

parentPort?.on('message', (job: VerifyJob) => {
  // verifyPassword never throws: a mismatch or a hash it cannot compute is false.
  void verifyPassword(job.password, { hash: job.hash, scheme: job.scheme }).then((ok) => parentPort!.postMessage({ id: job.id, ok } satisfies VerifyAnswer));
});
