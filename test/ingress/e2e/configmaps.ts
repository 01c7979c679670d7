// ConfigMap manifests for the ingress end-to-end tests (custom-headers, auth-proxy-set-headers).

/** A ConfigMap in namespace default; values JSON-quoted, so a test can write control characters into one. */
export function configMapYaml(name: string, data: Record<string, string>): string {
  const lines = Object.entries(data).map(([k, v]) => `  ${k}: ${JSON.stringify(v)}`);
  return `---\napiVersion: v1\nkind: ConfigMap\nmetadata: { name: ${name}, namespace: default }\ndata:\n${lines.join('\n')}\n`;
}
