#!/usr/bin/env bash
# The environment of the labs (docs/labs/), printed as shell assignments for your shell to eval:
#
#   eval "$(scripts/lab-env.sh)"
#
#   REGISTRY               the lab registry, host:port (default 127.0.0.1:5000; scripts/lab-setup.sh starts it)
#   LAB                    the labs' scratch dir (default .lab in this checkout); lab NNN works in $LAB/NNN
#   CONTAINER_PARTS_STORE  the store the five commands share ($LAB/store)
#   PATH                   $LAB/bin first: the commands (links to dist/bin) and lab-clean
#
# A value already in the environment wins, so a test (or you) can point the labs elsewhere.
# When something the labs need is missing, the printed text says what and evaluates to false.
set -uo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
registry=${REGISTRY:-127.0.0.1:5000}
lab=${LAB:-$repo/.lab}
store=${CONTAINER_PARTS_STORE:-$lab/store}

fail() {
  printf 'echo %q >&2; false\n' "lab-env: $1"
  exit 1
}

[ -f "$repo/dist/bin/img-fetch.js" ] || fail "the commands are not built: run make build in $repo"
# The labs mount, make namespaces and run runc: they are written for root, as the tutorials' steps are.
[ "$(id -u)" = 0 ] || fail 'the labs run as root (sudo -i); the rootless steps switch user themselves'
curl -fsS -o /dev/null "http://$registry/v2/lab/busybox/manifests/latest" \
  -H 'Accept: application/vnd.oci.image.manifest.v1+json' 2>/dev/null \
  || fail "no lab/busybox image at $registry: run scripts/lab-setup.sh"

mkdir -p "$lab/bin"
for tool in img-fetch img-unpack ovl-mount ns-enter oci-spec img-commit img-push img-store oci-runtime; do ln -sfn "$repo/dist/bin/$tool.js" "$lab/bin/$tool"; done
ln -sfn "$repo/scripts/lab-clean.sh" "$lab/bin/lab-clean"

printf 'export REGISTRY=%q LAB=%q CONTAINER_PARTS_STORE=%q\n' "$registry" "$lab" "$store"
case ":$PATH:" in
  *":$lab/bin:"*) ;;
  *) printf 'export PATH=%q:"$PATH"\n' "$lab/bin" ;;
esac
