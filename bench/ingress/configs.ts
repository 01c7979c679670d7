// Configuration files of bench/ingress/ingress.ts: nginx (backend and reverse proxy) and the manifests netplane reads.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Writes DIR/NAME/nginx.conf and returns its path: one server on 127.0.0.1:`listen` with `workers` worker processes,
 * answering `body` from memory, or, with `upstream`, proxying to 127.0.0.1:`upstream` through a keepalive pool of 64.
 */
export function nginxConfig(dir: string, name: string, workers: number, listen: number, body: string, upstream?: number): string {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  const conf = join(d, 'nginx.conf');
  const location = upstream
    ? `location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
    }`
    : `location / { return 200 "${body.replace('\n', '\\n')}"; }`;
  // keepalive_requests: wrk's connections (and the pool's) stay open for the whole run, as Node's would.
  writeFileSync(
    conf,
    `worker_processes ${workers};
daemon off;
pid ${d}/nginx.pid;
error_log ${d}/error.log error;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path ${d}/body;
  proxy_temp_path ${d}/proxy;
  fastcgi_temp_path ${d}/fastcgi;
  uwsgi_temp_path ${d}/uwsgi;
  scgi_temp_path ${d}/scgi;
${upstream ? `  upstream backend {\n    server 127.0.0.1:${upstream};\n    keepalive 64;\n    keepalive_requests 1000000;\n  }\n` : ''}  server {
    listen 127.0.0.1:${listen} backlog=4096;
    ${location}
  }
}
`,
  );
  return conf;
}

/** Writes DIR/NAME/bench.yaml: a Service, EndpointSlice, IngressClass and Ingress that route `host` to 127.0.0.1:`backendPort`; returns DIR/NAME. */
export function manifests(dir: string, name: string, backendPort: number, host: string): string {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  writeFileSync(
    join(d, 'bench.yaml'),
    `apiVersion: v1
kind: Service
metadata: { name: bench, namespace: default }
spec:
  type: ClusterIP
  clusterIP: 10.96.200.10
  ports: [{ name: http, port: 80, targetPort: ${backendPort}, protocol: TCP }]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: bench-1
  namespace: default
  labels: { kubernetes.io/service-name: bench }
addressType: IPv4
ports: [{ name: http, port: ${backendPort}, protocol: TCP }]
endpoints:
  - addresses: ["127.0.0.1"]
    conditions: { ready: true }
---
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata:
  name: netplane
  annotations: { ingressclass.kubernetes.io/is-default-class: "true" }
spec: { controller: netplane.io/ingress }
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: { name: bench, namespace: default }
spec:
  ingressClassName: netplane
  rules:
    - host: ${host}
      http:
        paths:
          - path: /
            pathType: Prefix
            backend: { service: { name: bench, port: { number: 80 } } }
`,
  );
  return d;
}
