# netplane: one image for all four processes (`proxy`, `dns`, `ingress`, `overlay`).
# Node 24 runs the .ts sources directly (type stripping), so there is no build stage.
FROM node:24-slim

# Tools the backends drive: nft (proxy, overlay masquerade), iptables-restore (iptables backend), conntrack
# (flushing stale UDP entries when an endpoint goes away); ip for the node-local DNS address (an init container).
# The overlay programs links, neighbours, FDB and routes over netlink itself.
RUN apt-get update \
 && apt-get install -y --no-install-recommends nftables iptables iproute2 conntrack \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
ENV NODE_ENV=production

# Dependencies first so source edits reuse this layer. netlink ships N-API prebuilds for linux-x64/arm64,
# so no compiler toolchain is needed.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force

COPY bin ./bin
COPY cluster ./cluster
COPY runtime ./runtime
COPY proxy ./proxy
COPY dns ./dns
COPY ingress ./ingress
COPY overlay ./overlay

# Node's compile cache, filled here (bin/warm-compile-cache.ts) for the user IDs deploy/ runs the processes as: 0
# (proxy, overlay, node-local DNS), 65534 (dns, ingress), this image's 1000, and 101, which ingress-nginx's Helm chart
# runs its controller as. Each process then starts from the
# type-stripped text and V8 code of every module instead of loading Node's TypeScript stripper: about 25 MiB less
# resident memory per process and half the start-up time. Under another user ID the files are stripped as before.
# Node also keys the cache by the V8 flags that change compiled code, so it is warmed with the entry point's flags.
ENV NODE_COMPILE_CACHE=/app/.compile-cache
RUN node --expose-gc bin/warm-compile-cache.ts 0 1000 65534 101

# The programs netplane stands in for, at the paths their own manifests start them from, linked to bin/anchor, which
# runs netplane under the program's name: kube-proxy's and Flannel's DaemonSets (`command: [/usr/local/bin/kube-proxy]`,
# `[/opt/bin/flanneld]`) and manifests that name /coredns, /node-cache or /nginx-ingress-controller run with the image
# swapped. (ingress-nginx's chart, a CoreDNS Deployment and NodeLocal DNSCache's DaemonSet give args to the entry
# point, which reads them as they are.) The
# chart's preStop hook, /wait-shutdown, returns at once: the SIGTERM that follows drains (bin/wait-shutdown).
RUN mkdir -p /opt/bin \
 && ln -s /app/bin/anchor /usr/local/bin/kube-proxy \
 && ln -s /app/bin/anchor /opt/bin/flanneld \
 && ln -s /app/bin/anchor /coredns \
 && ln -s /app/bin/anchor /node-cache \
 && ln -s /app/bin/anchor /nginx-ingress-controller \
 && ln -s /app/bin/wait-shutdown /wait-shutdown

# Root by default, as kube-proxy's and Flannel's images: their DaemonSets, and kubeadm's CoreDNS Deployment (which
# drops every capability but NET_BIND_SERVICE), name no user, and the proxy and the overlay need root's
# capabilities (a capability a pod adds reaches a process that is not root only through file capabilities, which
# node has none of). deploy/ names the user of every container: 65534 for dns and ingress, 0 for the node agents.
USER 0:0
# --expose-gc: each process collects, once, the garbage of loading its first view of the cluster
# (runtime/startup-gc.ts), which V8 would otherwise keep in a grown heap.
ENTRYPOINT ["node", "--expose-gc", "/app/bin/netplane.ts"]
