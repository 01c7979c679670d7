// The forward step of a route with mirror-target: the request goes upstream as any other, and a copy of it to the
// mirror (upstream/mirror.ts), started at the same time. As in ingress-nginx only requests that reach the forward
// step are copied (nginx's mirror runs after the access phase): refused, redirected or rate-limited ones are not.
import { mirrorPath, type MirrorPolicy } from '../routes/mirror.ts';
import { hasBody, type ForwardResult, type ForwardTarget } from '../upstream/forward.ts';
import type { Exchange, GatewayState } from './steps.ts';

/** Forwards `x` as `target` says and copies it to the route's mirror; resolves with the forward's result. Never rejects. */
export async function forwardMirrored(x: Exchange, s: GatewayState, m: MirrorPolicy, target: ForwardTarget): Promise<ForwardResult> {
  const route = x.route!;
  const copy = s.mirrors?.start({
    route,
    ingress: route.ingress,
    origin: m.origin,
    path: mirrorPath(m, x.path, x.query),
    method: x.req.method ?? 'GET',
    rawHeaders: x.req.rawHeaders,
    host: m.host,
    body: m.body && hasBody(x.req),
    timeoutMs: target.policy.connectTimeoutMs + target.policy.readTimeoutMs,
  });
  const tap = copy?.tap;
  const result = await s.upstreams.forward(x.req, x.res, tap === undefined ? target : { ...target, mirrorBody: tap });
  copy?.settle();
  return result;
}
