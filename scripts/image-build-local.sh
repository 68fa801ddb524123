#!/usr/bin/env bash
# Builds and smoke-tests meshgate's image (Dockerfile) on a machine without a container
# registry: the base image (node:20-bookworm-slim) cannot be pulled, so a stand-in is made from
# debootstrap plus this machine's own node and npm, and podman (Debian's package) builds on it.
#
#   sudo scripts/image-build-local.sh            # base (once), build, smoke checks
#   REBUILD_BASE=1 scripts/image-build-local.sh  # remake the base too
#
# Not part of CI: a build takes minutes on vfs storage. test/integration/deploy/image-steps.test.ts
# checks the same steps without a container runtime.
#
# What this sandbox needed (and why each flag is here):
#   - runc, not crun: crun refuses the host's hybrid cgroup v1/v2 layout ("cgroups in hybrid
#     mode not supported"); runc with --cgroup-manager cgroupfs works.
#   - --ulimit nofile/nproc at or below the current limits: root here lacks CAP_SYS_RESOURCE, and
#     podman's defaults (1048576) fail with "setrlimit RLIMIT_NOFILE: Operation not permitted".
#   - the host's CA bundle in the stand-in base (NODE_EXTRA_CA_CERTS): the npm registry is reached
#     through a TLS-intercepting proxy ("SELF_SIGNED_CERT_IN_CHAIN" otherwise). It is a property of
#     the stand-in base only; the Dockerfile carries nothing of it.
#   - --network host: build steps reach the npm registry and the Debian mirror as the host does.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-/tmp/meshgate-image}
BASE=${BASE:-localhost/node:20-bookworm-slim}
IMAGE=${IMAGE:-localhost/meshgate:dev}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
NOFILE=$(ulimit -Hn)
NPROC=4096
PODMAN=(podman --cgroup-manager cgroupfs --events-backend file)
RUNOPTS=(--runtime runc --network host --ulimit "nofile=$NOFILE:$NOFILE" --ulimit "nproc=$NPROC:$NPROC")

step() { printf '\n== %s (%s)\n' "$*" "$(date -u +%T)"; }
need() { command -v "$1" >/dev/null || { step "installing $2"; DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$2" >/dev/null; }; }

[ "$(id -u)" = 0 ] || { echo "image-build-local: run as root (debootstrap and podman's storage need it)" >&2; exit 2; }
need podman podman; need runc runc; need debootstrap debootstrap
mkdir -p "$WORK"

# ---- the stand-in base: Debian bookworm minbase + this machine's Node 20 and npm, laid out as
# the official image lays them out (/usr/local/bin/node, /usr/local/lib/node_modules/npm).
if [ -n "${REBUILD_BASE:-}" ] || ! "${PODMAN[@]}" image exists "$BASE"; then
  NODE=$(command -v node)
  case "$("$NODE" --version)" in v20.*) ;; *) echo "image-build-local: $NODE is not Node 20" >&2; exit 2 ;; esac
  NPM_DIR=$(cd "$(dirname "$(readlink -f "$(command -v npm)")")/.." && pwd)
  step "debootstrap bookworm into $WORK/rootfs"
  rm -rf "$WORK/rootfs"
  debootstrap --variant=minbase --include=ca-certificates bookworm "$WORK/rootfs" "$MIRROR" >"$WORK/debootstrap.log"
  install -m 0755 "$NODE" "$WORK/rootfs/usr/local/bin/node"
  mkdir -p "$WORK/rootfs/usr/local/lib/node_modules"
  cp -a "$NPM_DIR" "$WORK/rootfs/usr/local/lib/node_modules/npm"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$WORK/rootfs/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$WORK/rootfs/usr/local/bin/npx"
  cp /etc/ssl/certs/ca-certificates.crt "$WORK/rootfs/etc/ssl/build-host-ca.crt"
  rm -rf "$WORK/rootfs/var/lib/apt/lists/"* "$WORK/rootfs/var/cache/apt/archives/"*.deb
  step "importing $BASE"
  tar -C "$WORK/rootfs" -c . | "${PODMAN[@]}" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/build-host-ca.crt' \
    --change 'CMD ["node"]' - "$BASE" >/dev/null
fi

step "podman build $IMAGE"
start=$(date +%s)
"${PODMAN[@]}" build "${RUNOPTS[@]}" \
  --build-arg "NODE_IMAGE=$BASE" \
  --build-arg "REVISION=$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)" \
  --build-arg "CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  -t "$IMAGE" "$ROOT"
echo "built in $(( $(date +%s) - start )) s; $("${PODMAN[@]}" image inspect "$IMAGE" --format '{{.Size}}') bytes"

# ---- smoke checks: as Kubernetes runs it (read-only root, non-root uid, no capabilities)
run() { "${PODMAN[@]}" run --rm "${RUNOPTS[@]}" --read-only --cap-drop ALL --security-opt no-new-privileges "$@"; }

step "image config"
"${PODMAN[@]}" image inspect "$IMAGE" --format 'user={{.Config.User}} entrypoint={{.Config.Entrypoint}} cmd={{.Config.Cmd}} ports={{.Config.ExposedPorts}} volumes={{.Config.Volumes}}'

step "--help as uid 10001 on a read-only root"
run "$IMAGE" --help | head -5
run "$IMAGE" serve --help | head -3

step "no devDependencies, no src/ or test/ in the image"
run --entrypoint /bin/sh "$IMAGE" -c '
  id; cd /app && ls -A
  for p in typescript tsx fast-check firebase-admin mariadb @google-cloud/firestore @kubernetes-models/istio; do
    if [ -e "node_modules/$p" ]; then echo "devDependency in the image: $p"; exit 1; fi
  done
  for d in src test bench .git; do [ ! -e "/app/$d" ] || { echo "/app/$d is in the image"; exit 1; }; done
  command -v npm && { echo "npm is in the runtime image"; exit 1; }
  touch /app/x 2>/dev/null && { echo "/app is writable"; exit 1; }
  touch /var/lib/meshgate/x /var/log/meshgate/x && echo "volumes writable, /app read-only: ok"'

step "config made by the image itself: ca init, ca issue-server, policy init"
SMOKE=$(mktemp -d "$WORK/smoke.XXXXXX")
mkdir -p "$SMOKE/etc/secrets" "$SMOKE/audit" "$SMOKE/state"
chown -R 10001:10001 "$SMOKE"
gen() { run -v "$SMOKE/etc:/etc/meshgate" --workdir /etc/meshgate "$IMAGE" "$@" >/dev/null; }
gen ca init --trust-domain cluster.local --dir ca
gen ca issue-server --dir ca --out tls
gen policy init --dir policy
# Static accounts: the host's MariaDB root (no password) stands in for the role accounts.
: >"$SMOKE/etc/secrets/upstream"
cat >"$SMOKE/etc/meshgate.yaml" <<YAML
listener: { host: 127.0.0.1, port: 0, tls: { cert: tls/server.crt, key: tls/server.key } }
trust: { bundles: [ca/bundle.pem], trustDomains: [cluster.local] }
upstream:
  host: ${MARIADB_HOST:-127.0.0.1}
  port: ${MARIADB_PORT:-3306}
  roles:
    app_writer: { user: root, password: { file: secrets/upstream } }
    app_reader: { user: root, password: { file: secrets/upstream } }
state: { embedded: { dir: /var/lib/meshgate/state } }
policy: { dir: policy }
audit: { file: /var/log/meshgate/audit.jsonl }
metrics: { listen: 127.0.0.1:0 }
YAML

step "serve (read-only root, uid 10001, config read-only), then SIGTERM"
name="meshgate-smoke-$$"
cleanup() { "${PODMAN[@]}" rm -f "$name" >/dev/null 2>&1 || true; }
trap cleanup EXIT
"${PODMAN[@]}" run -d --name "$name" "${RUNOPTS[@]}" --read-only --cap-drop ALL --security-opt no-new-privileges \
  -v "$SMOKE/etc:/etc/meshgate:ro" -v "$SMOKE/state:/var/lib/meshgate" \
  -v "$SMOKE/audit:/var/log/meshgate" "$IMAGE" >/dev/null
for _ in $(seq 1 60); do
  "${PODMAN[@]}" logs "$name" 2>&1 | grep -q '"meshgate listening"' && break
  sleep 0.5
done
logs=$("${PODMAN[@]}" logs "$name" 2>&1)
echo "$logs" | tail -3
metrics=$(echo "$logs" | sed -n 's/.*"metrics listening".*"port":\([0-9]*\).*/\1/p')
[ -n "$metrics" ] || { echo "meshgate did not start" >&2; exit 1; }
echo "readyz: $(node -e "fetch('http://127.0.0.1:$metrics/readyz').then(async r=>console.log(r.status,(await r.text()).slice(0,200)))")"
echo "processes: $("${PODMAN[@]}" top "$name" pid args 2>/dev/null | tail -n +2 | tr -s ' ' | paste -sd ';')"
stop=$(date +%s%N)
"${PODMAN[@]}" kill --signal TERM "$name" >/dev/null
code=$("${PODMAN[@]}" wait "$name")
echo "exit code after SIGTERM: $code, after $(( ($(date +%s%N) - stop) / 1000000 )) ms"
"${PODMAN[@]}" logs "$name" 2>&1 | tail -2
ls -ln "$SMOKE/audit" "$SMOKE/state"
[ "$code" = 0 ] || { echo "meshgate did not exit 0 on SIGTERM" >&2; exit 1; }
step "all smoke checks passed"
