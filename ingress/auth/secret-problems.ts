// Basic-auth Secrets checked when the routes or a Secret change, not only when a request arrives: a Secret that is
// there but holds no usable htpasswd line (every line an unaccepted scheme, or no `auth` key) makes every request of
// the Ingress 503 — it still fails closed — and that is an Ingress not served as written, reported as its problem.
import { secretValue, type Secret } from '../../cluster/model/secret.ts';
import type { IngressPolicy, IngressProblem } from '../routes/types.ts';
import { parseHtpasswd } from './htpasswd.ts';
import { refKey, type SecretLookup } from './types.ts';

/** Why each Secret version cannot be used for basic auth ('' when it can); Secret objects are replaced, never changed. */
const verdicts = new WeakMap<Secret, string>();

/** The most refused lines named in one problem. */
const linesNamed = 3;

/**
 * The problems of the served Ingresses (`namespace/name` → policy) whose basic-auth Secret is there but cannot be
 * used. A Secret not there (yet) is not one: it may still be on its way, and the authenticator says so per request.
 */
export function basicAuthProblems(ingresses: ReadonlyMap<string, IngressPolicy>, secrets: SecretLookup): IngressProblem[] {
  const out: IngressProblem[] = [];
  for (const [ingress, policy] of ingresses) {
    const auth = policy.auth;
    if (auth?.type !== 'basic') continue;
    const secret = secrets(auth.secret);
    if (secret === undefined) continue;
    const why = unusable(secret);
    if (why !== '') out.push({ ingress, reason: `basic auth Secret ${refKey(auth.secret)} ${why}, so every request gets 503`, keptLastGood: false });
  }
  return out;
}

function unusable(secret: Secret): string {
  let why = verdicts.get(secret);
  if (why === undefined) {
    const text = secretValue(secret, 'auth');
    if (text === undefined) why = 'has no key "auth"';
    else {
      const { entries, refused } = parseHtpasswd(text.toString('utf8'));
      const named = refused.slice(0, linesNamed).map((r) => `line ${r.line}: ${r.reason}`);
      if (refused.length > linesNamed) named.push(`${refused.length - linesNamed} more`);
      why = entries.length > 0 ? '' : refused.length === 0 ? 'has no htpasswd line' : `has no usable htpasswd line (${named.join('; ')})`;
    }
    verdicts.set(secret, why);
  }
  return why;
}
