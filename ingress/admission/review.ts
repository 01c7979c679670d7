// The AdmissionReview exchange (admission.k8s.io/v1, and v1beta1 as older API servers send it): the request read and
// checked, the response written in the version asked. Pure.
import { InvalidObjectError, parseObject } from '../../cluster/model/index.ts';
import type { Ingress } from '../../cluster/model/ingress.ts';
import type { Verdict } from './check.ts';

const versions = new Set(['admission.k8s.io/v1', 'admission.k8s.io/v1beta1']);

/** A request the webhook answers. */
export interface ReviewRequest {
  apiVersion: string;
  uid: string;
  /** CREATE, UPDATE, DELETE or CONNECT. */
  operation: string;
  /** The object as it would be stored (absent for DELETE). */
  object: unknown;
  /** The request's namespace and name, for an object that does not carry them. */
  namespace?: string;
  name?: string;
}

/** A body that is no AdmissionReview: answered 400 with this message. */
export class BadReviewError extends Error {
  override readonly name = 'BadReviewError';
}

/** Reads an AdmissionReview's request; throws BadReviewError saying what is missing. */
export function readReview(body: unknown): ReviewRequest {
  const review = body as { apiVersion?: unknown; kind?: unknown; request?: { uid?: unknown; operation?: unknown; object?: unknown; namespace?: unknown; name?: unknown } } | null;
  if (review === null || typeof review !== 'object' || Array.isArray(review)) throw new BadReviewError('the body is not an AdmissionReview object');
  if (review.kind !== 'AdmissionReview' || typeof review.apiVersion !== 'string' || !versions.has(review.apiVersion)) {
    throw new BadReviewError('the body is not an AdmissionReview of admission.k8s.io/v1 or v1beta1');
  }
  const request = review.request;
  if (request === null || typeof request !== 'object' || typeof request.uid !== 'string' || request.uid === '') throw new BadReviewError('the AdmissionReview has no request.uid');
  return {
    apiVersion: review.apiVersion,
    uid: request.uid,
    operation: typeof request.operation === 'string' ? request.operation : '',
    object: request.object,
    ...(typeof request.namespace === 'string' && request.namespace !== '' ? { namespace: request.namespace } : {}),
    ...(typeof request.name === 'string' && request.name !== '' ? { name: request.name } : {}),
  };
}

/** What the webhook makes of a request's object: an Ingress to check, something it lets through, or a refusal. */
export type Subject = { ingress: Ingress } | { pass: string } | { refuse: string };

/** The Ingress a CREATE or UPDATE would store; other operations and kinds pass (with why, for a warning). */
export function subjectOf(request: ReviewRequest): Subject {
  if (request.operation !== 'CREATE' && request.operation !== 'UPDATE') return { pass: '' };
  const raw = request.object as { apiVersion?: unknown; kind?: unknown } | null | undefined;
  if (raw?.kind !== 'Ingress' || raw.apiVersion !== 'networking.k8s.io/v1') {
    return { pass: `netplane's admission webhook checks Ingresses of networking.k8s.io/v1; this ${String(raw?.kind ?? 'object')} is let through unchecked` };
  }
  try {
    const [parsed] = parseObject(withName(raw, request), new Set(['Ingress']));
    if (parsed?.kind === 'Ingress') return { ingress: parsed.object };
    return { pass: 'the object is not an Ingress netplane reads; let through unchecked' };
  } catch (e) {
    if (e instanceof InvalidObjectError) return { refuse: `netplane cannot read this ${e.message}` };
    throw e;
  }
}

/** The object with the request's namespace and name where its metadata has none (the API server fills them in). */
function withName(raw: object, request: ReviewRequest): object {
  const metadata = ((raw as { metadata?: unknown }).metadata ?? {}) as Record<string, unknown>;
  if (typeof metadata !== 'object' || Array.isArray(metadata)) return raw;
  const fill = {
    ...(metadata.namespace === undefined && request.namespace !== undefined ? { namespace: request.namespace } : {}),
    ...(metadata.name === undefined && request.name !== undefined ? { name: request.name } : {}),
  };
  return Object.keys(fill).length === 0 ? raw : { ...raw, metadata: { ...metadata, ...fill } };
}

/** Longest warning kept whole: the API server cuts what is longer (and drops warnings past 4 KiB in all). */
const maxWarning = 256;

/** The AdmissionReview answering `request`. */
export function reviewResponse(request: Pick<ReviewRequest, 'apiVersion' | 'uid'>, verdict: Verdict): object {
  const warnings = verdict.warnings.map((w) => (w.length > maxWarning ? `${w.slice(0, maxWarning - 1)}…` : w));
  return {
    apiVersion: request.apiVersion,
    kind: 'AdmissionReview',
    response: {
      uid: request.uid,
      allowed: verdict.allowed,
      ...(verdict.allowed ? {} : { status: { code: 400, reason: 'BadRequest', message: verdict.message ?? 'refused' } }),
      ...(warnings.length > 0 ? { warnings } : {}),
    },
  };
}
