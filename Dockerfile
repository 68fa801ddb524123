# meshgate's container image: `meshgate serve` as a non-root process on a read-only root
# filesystem, with only production dependencies and tini as PID 1.
#
#   docker build -t meshgate:0.1.0 .
#   docker run --read-only -v meshgate-state:/var/lib/meshgate -v meshgate-audit:/var/log/meshgate \
#     -v "$PWD/deploy/examples:/etc/meshgate:ro" meshgate:0.1.0
#
# Where meshgate writes (mount a volume, e.g. an emptyDir or a PersistentVolumeClaim, on each):
#   /var/lib/meshgate   state.embedded.dir (leases, CA state) and the policy git work directory
#   /var/log/meshgate   audit.file (hash-chained JSONL, its rotations and checkpoints)
# Everything it reads comes from /etc/meshgate: meshgate.yaml, policy/, tls/, trust/, secrets/
# (ConfigMap and Secret volumes). Nothing else on the root filesystem is written.
#
# NODE_IMAGE is an argument so a mirror, a pinned digest or a locally made base can replace it
# (scripts/image-build-local.sh builds with one made from debootstrap). The runtime stage
# installs its few Debian packages with apt-get, so the base must be Debian-based.
ARG NODE_IMAGE=node:20-bookworm-slim

# ---- build: the TypeScript compiler and every devDependency, dist/ out ----
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` would compile before src/ is here; the build runs below, once.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# ---- deps: production dependencies only, resolved from the same lock file ----
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: the only production install script (protobufjs's postinstall) merely warns
# about version schemes, and `prepare` (tsc) is a devDependency's job done in the build stage.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force

# ---- runtime ----
FROM ${NODE_IMAGE} AS runtime

# git and ssh run policy.git (src/policy-git); set EXTRA_PACKAGES="" for an image that only
# reads policy from a directory.
ARG EXTRA_PACKAGES="git openssh-client"

# Node as PID 1 gets no default signal handlers and reaps no zombies (git and ssh children):
# tini forwards SIGTERM to meshgate, which drains, and reaps. npm, npx, corepack and yarn go:
# nothing runs them at runtime, and without them nothing tries to write an npm cache.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends tini ca-certificates ${EXTRA_PACKAGES} \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
 && rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack /opt/yarn-* \
           /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack /usr/local/bin/yarn /usr/local/bin/yarnpkg \
 && groupadd --gid 10001 meshgate \
 && useradd --uid 10001 --gid 10001 --home-dir /var/lib/meshgate --no-create-home \
            --shell /usr/sbin/nologin meshgate \
 && mkdir -p /var/lib/meshgate /var/log/meshgate /etc/meshgate \
 && chown 10001:10001 /var/lib/meshgate /var/log/meshgate \
 && chmod 0750 /var/lib/meshgate /var/log/meshgate

# NODE_ENV: libraries skip development paths. HOME: ssh (policy.git) and anything else that
# looks for a home directory find the writable state volume rather than a read-only /.
ENV NODE_ENV=production \
    HOME=/var/lib/meshgate

WORKDIR /app
# Owned by root and not writable by meshgate's user: the process cannot change its own code.
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY bin ./bin
COPY package.json ./

# Numeric, so Kubernetes' runAsNonRoot can check it without reading /etc/passwd.
USER 10001:10001

VOLUME ["/var/lib/meshgate", "/var/log/meshgate"]

# 3307 MySQL (listener.port), 8443 Firestore gRPC (firestore.port; the signer's default too),
# 9440 admin HTTPS API (admin.port), 9464 metrics, /healthz and /readyz (metrics.listen).
EXPOSE 3307 8443 9440 9464

# Last, so a new revision or build date reuses every layer above from the cache.
ARG NODE_IMAGE
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown

LABEL org.opencontainers.image.title="meshgate" \
      org.opencontainers.image.description="Identity-aware database proxy for service meshes: SPIFFE/mTLS identity, policy as code, audited MariaDB and Firestore access" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="${NODE_IMAGE}"

# No HEALTHCHECK: Kubernetes ignores it and probes /readyz and /healthz on the metrics port.
ENTRYPOINT ["/usr/bin/tini", "--", "node", "/app/bin/meshgate.js"]
CMD ["serve", "--config", "/etc/meshgate/meshgate.yaml"]
