// Why one Ingress cannot be served as written. The compiler catches these and turns them into IngressProblems;
// they never escape compileRoutes.

/** The spec of an Ingress asks for something netplane cannot serve (bad host, path, backend or TLS entry). */
export class IngressSpecError extends Error {
  override readonly name: string = 'IngressSpecError';
  readonly code: string = 'NETPLANE_INGRESS_SPEC';
}

/** An annotation of an Ingress has a value netplane cannot honour; `annotation` is its full key. */
export class AnnotationError extends IngressSpecError {
  override readonly name = 'AnnotationError';
  override readonly code = 'NETPLANE_INGRESS_ANNOTATION';
  readonly annotation: string;
  constructor(annotation: string, message: string) {
    super(message);
    this.annotation = annotation;
  }
}

/** A value quoted for a problem sentence: JSON-escaped, DEL and C1 controls too, so nothing invisible reaches a log; cut at 80 characters. */
export function quote(value: string): string {
  const json = JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
  return json.replace(/[\x7f-\x9f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
