// A client of the ingress gateway's admission webhook, as the API server is one: an AdmissionReview POSTed over HTTPS,
// the server's certificate checked against the CA the ValidatingWebhookConfiguration's caBundle holds.
import { randomUUID } from 'node:crypto';
import { Agent, request } from 'undici';

/** Where the webhook is and how its certificate is checked. */
export interface WebhookTarget {
  port: number;
  /** The CA (PEM) of the webhook's certificate: here the self-signed certificate itself. */
  ca: string;
  /** The name the certificate is checked for: the admission Service's DNS name. */
  servername: string;
  /** The ValidatingWebhookConfiguration's path (default: ingress-nginx chart's). */
  path?: string;
}

/** The response part of an AdmissionReview. */
export interface ReviewAnswer {
  apiVersion: string;
  kind: string;
  response: { uid: string; allowed: boolean; status?: { code: number; reason: string; message: string }; warnings?: string[] };
}

/** Sends `object` for review as the API server does for a write (`operation`); resolves with the answer, checked to carry the request's uid. */
export async function admissionReview(target: WebhookTarget, object: unknown, operation = 'CREATE', extra: Record<string, unknown> = {}): Promise<ReviewAnswer> {
  const uid = randomUUID();
  const dispatcher = new Agent({ connect: { ca: target.ca, servername: target.servername } });
  try {
    const r = await request(`https://127.0.0.1:${target.port}${target.path ?? '/networking/v1/ingresses'}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid, operation, object, ...extra } }),
      dispatcher,
    });
    const text = await r.body.text();
    if (r.statusCode !== 200) throw new Error(`the webhook answered ${r.statusCode}: ${text}`);
    const answer = JSON.parse(text) as ReviewAnswer;
    if (answer.response.uid !== uid) throw new Error(`the webhook answered uid ${answer.response.uid} for ${uid}`);
    return answer;
  } finally {
    await dispatcher.close();
  }
}

/** An Ingress object as the API server sends it: class, rules of `host path -> service:port`, annotations, creation time. */
export function ingressObject(o: { name: string; namespace?: string; className?: string; rules: Array<[host: string, path: string, service: string]>; annotations?: Record<string, string>; created?: string }): object {
  const hosts = new Map<string, Array<[string, string]>>();
  for (const [host, path, service] of o.rules) hosts.set(host, [...(hosts.get(host) ?? []), [path, service]]);
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: { name: o.name, namespace: o.namespace ?? 'default', uid: randomUUID(), creationTimestamp: o.created ?? new Date().toISOString().replace(/\.\d+Z$/, 'Z'), annotations: o.annotations ?? {} },
    spec: {
      ingressClassName: o.className ?? 'netplane',
      rules: [...hosts].map(([host, paths]) => ({ host, http: { paths: paths.map(([path, service]) => ({ path, pathType: 'Prefix', backend: { service: { name: service, port: { number: 80 } } } })) } })),
    },
  };
}
