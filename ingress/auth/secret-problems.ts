// Basic-auth Secrets checked when the routes or a Secret change, not only when a request arrives: a Secret that is
// there but holds no usable htpasswd line (every line an unaccepted scheme, or no `auth` key) makes every request of
// the Ingress 503 — it still fails closed — and that is an Ingress not served as written, reported as its problem.
import type { Secret } from '../../cluster/model/secret.ts';
import type { IngressPolicy, IngressProblem } from '../routes/types.ts';
import { basicUsers, describePlace, type BasicSecretType } from './basic-secret.ts';
import { refKey, type SecretLookup } from './types.ts';

/**
 * Why each Secret version cannot be used for basic auth ('' when it can), per layout; Secret objects are replaced,
 * never changed.
 */
const verdicts: Record<BasicSecretType, WeakMap<Secret, string>> = { 'auth-file': new WeakMap(), 'auth-map': new WeakMap() };

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
    const why = unusable(secret, auth.secretType ?? 'auth-file');
    if (why !== '') out.push({ ingress, reason: `basic auth Secret ${refKey(auth.secret)} ${why}, so every request gets 503`, keptLastGood: false });
  }
  return out;
}

function unusable(secret: Secret, type: BasicSecretType): string {
  let why = verdicts[type].get(secret);
  if (why === undefined) {
    const users = basicUsers(secret, type);
    if ('missing' in users) why = users.missing;
    else {
      const { entries, refused } = users;
      const named = refused.slice(0, linesNamed).map((r) => `${describePlace(r)}: ${r.reason}`);
      if (refused.length > linesNamed) named.push(`${refused.length - linesNamed} more`);
      const what = type === 'auth-map' ? 'auth-map entry' : 'htpasswd line';
      why = entries.length > 0 ? '' : refused.length === 0 ? `has no ${what}` : `has no usable ${what} (${named.join('; ')})`;
    }
    verdicts[type].set(secret, why);
  }
  return why;
}
