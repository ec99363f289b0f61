#!/usr/bin/env bash
# The offline demo: start a registry on 127.0.0.1, build the lab busybox image from Debian's
# busybox-static and push it, then run the whole pipeline on it — fetch, unpack one directory
# per layer, mount the overlay, run a shell in new namespaces — and the same rootfs as an OCI
# bundle under runc. Everything it starts, it stops; everything it mounts, it unmounts.
set -euo pipefail
cd "$(dirname "$0")/.."
LAB=${LAB:-$PWD/.lab}
PORT=${PORT:-5000}
export CONTAINER_PARTS_STORE=${CONTAINER_PARTS_STORE:-$LAB/store}
export PATH="$PWD/dist/bin:$PATH"
unset NODE_EXTRA_CA_CERTS
img-fetch() { node "$PWD/dist/bin/img-fetch.js" "$@"; }
img-unpack() { node "$PWD/dist/bin/img-unpack.js" "$@"; }
ovl-mount() { node "$PWD/dist/bin/ovl-mount.js" "$@"; }
ns-enter() { node "$PWD/dist/bin/ns-enter.js" "$@"; }
oci-spec() { node "$PWD/dist/bin/oci-spec.js" "$@"; }

step() { printf '\n== %s\n' "$*" >&2; }

mkdir -p "$LAB"
scripts/registry.sh start "$LAB/registry" "$PORT"
cleanup() {
  [ -f "$LAB/mounted.json" ] && ovl-mount --unmount --input "$LAB/mounted.json" -q 2>/dev/null || true
  runc delete -f demo-busybox >/dev/null 2>&1 || true
  scripts/registry.sh stop "$LAB/registry"
}
trap cleanup EXIT

step "build the lab busybox image from Debian's busybox-static and push it to 127.0.0.1:$PORT"
scripts/build-busybox-image.sh "$LAB/build" "docker://127.0.0.1:$PORT/lab/busybox:latest"
ref=docker://127.0.0.1:$PORT/lab/busybox:latest

step "img-fetch $ref --tls-verify=false   (into the store $CONTAINER_PARTS_STORE)"
img-fetch "$ref" --tls-verify=false --progress=plain > "$LAB/image.json"
jq '.image | {reference, digest, layers: [.layers[] | {digest, size}], cmd: .config.config.Cmd}' "$LAB/image.json"

step "the store is an OCI layout: skopeo reads it"
skopeo inspect "oci:$CONTAINER_PARTS_STORE:127.0.0.1:$PORT/lab/busybox:latest" | jq '{Digest, Layers}'

step "img-unpack --layers   (one directory per layer, whiteouts in overlay form)"
img-unpack --layers --input "$LAB/image.json" > "$LAB/layers.json"
jq '.rootfs.layers' "$LAB/layers.json"

step "ovl-mount   (lower = the layers, upper/work/merged = a new container's dirs)"
# The image is built anew each run, and a container keeps its image: the last run's demo container goes first.
ovl-mount --unmount "$CONTAINER_PARTS_STORE/containers/demo/merged" -q 2>/dev/null || true
rm -rf "$CONTAINER_PARTS_STORE/containers/demo"
ovl-mount --name demo --input "$LAB/layers.json" > "$LAB/mounted.json"
jq '.mount | {target, lower, upper, driver}' "$LAB/mounted.json"

step "ns-enter: a shell in new namespaces on the merged root (pid 1, its own /proc, hostname, no network)"
ns-enter --input "$LAB/mounted.json" --hostname demo --net none -- sh -c \
  'head -1 /etc/os-release; echo "my pid: $$"; echo "hostname: $(hostname)"; echo "processes: $(ls /proc | grep -c "^[0-9]")"; ip link 2>/dev/null | grep -c "^[0-9]" | sed "s/^/links: /"; echo hello > /root/greeting'

step "what the container changed, read from the upper dir (ovl-mount --diff)"
ovl-mount --diff --input "$LAB/mounted.json"

step "oci-spec --bundle: the same merged root as an OCI bundle, run by runc"
oci-spec --bundle "$LAB/bundle" --input "$LAB/mounted.json" -- sh -c 'echo "runc sees: $(cat /root/greeting)"; id' > "$LAB/bundle.json"
runc run -b "$LAB/bundle" demo-busybox

step "ovl-mount --unmount"
ovl-mount --unmount --input "$LAB/mounted.json"
rm -f "$LAB/mounted.json"

step "the whole thing as one pipe: img-fetch | img-unpack --layers | ovl-mount | ns-enter --rm"
img-fetch "$ref" --tls-verify=false -q | img-unpack --layers -q | ovl-mount -q | ns-enter --rm -- sh -c 'echo "pid $$ in $(hostname), running $(head -1 /etc/os-release)"'
echo "demo done" >&2
