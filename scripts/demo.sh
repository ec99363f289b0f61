#!/usr/bin/env bash
# The offline demo: start a registry on 127.0.0.1, build the lab busybox image from Debian's
# busybox-static and push it, then run the longest pipeline of container-parts on it.
set -euo pipefail
cd "$(dirname "$0")/.."
LAB=${LAB:-$PWD/.lab}
PORT=${PORT:-5000}
export CONTAINER_PARTS_STORE=${CONTAINER_PARTS_STORE:-$LAB/store}
export PATH="$PWD/dist/tools:$PATH"
unset NODE_EXTRA_CA_CERTS
mkdir -p "$LAB"
scripts/registry.sh start "$LAB/registry" "$PORT"
trap 'scripts/registry.sh stop "$LAB/registry"' EXIT
echo "== building the lab busybox image and pushing it to 127.0.0.1:$PORT" >&2
scripts/build-busybox-image.sh "$LAB/build" "docker://127.0.0.1:$PORT/lab/busybox:latest"

ref=docker://127.0.0.1:$PORT/lab/busybox:latest
echo "== img-fetch $ref --tls-verify=false" >&2
img-fetch "$ref" --tls-verify=false --progress=plain > "$LAB/image.json"
jq '{reference: .image.reference, digest: .image.digest, layers: [.image.layers[] | {digest, size}], cmd: .image.config.config.Cmd}' "$LAB/image.json"
echo "== the store is an OCI layout skopeo reads:" >&2
skopeo inspect "oci:$CONTAINER_PARTS_STORE:127.0.0.1:$PORT/lab/busybox:latest" | jq '{Digest, Layers}'
