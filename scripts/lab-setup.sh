#!/usr/bin/env bash
# The labs' registry, once before the labs and once after:
#
#   scripts/lab-setup.sh [start] [--debian]   # a registry at $REGISTRY (default 127.0.0.1:5000) with lab/busybox:latest
#   scripts/lab-setup.sh stop                 # stop the registry this script started
#
# start is idempotent: a registry already answering at $REGISTRY is used as it is, and the
# image is built and pushed only when the registry does not have it. --debian also pushes
# lab/debian:latest (debootstrap: minutes the first time). The registry's data is $LAB/registry.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
registry=${REGISTRY:-127.0.0.1:5000}
lab=${LAB:-$repo/.lab}
port=${registry##*:}

has_image() {
  curl -fsS -o /dev/null -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$registry/v2/lab/$1/manifests/latest" 2>/dev/null
}

start() {
  local debian=false
  for arg in "$@"; do
    case $arg in
      --debian) debian=true ;;
      *) echo "usage: $0 [start] [--debian] | stop" >&2; exit 2 ;;
    esac
  done
  case $registry in 127.0.0.1:*) ;; *) echo "lab-setup: REGISTRY must be 127.0.0.1:PORT, not $registry" >&2; exit 2 ;; esac
  if curl -fsS -o /dev/null "http://$registry/v2/" 2>/dev/null; then
    echo "lab-setup: a registry answers at $registry; using it" >&2
  else
    "$repo/scripts/registry.sh" start "$lab/registry" "$port"
    echo "lab-setup: registry started at $registry (data: $lab/registry; stop: $0 stop)" >&2
  fi
  if has_image busybox; then
    echo "lab-setup: $registry has lab/busybox:latest" >&2
  else
    "$repo/scripts/build-busybox-image.sh" "$lab/build/busybox" "docker://$registry/lab/busybox:latest"
    echo "lab-setup: pushed lab/busybox:latest" >&2
  fi
  if $debian && ! has_image debian; then
    "$repo/scripts/build-debian-image.sh" "$lab/build/debian" "docker://$registry/lab/debian:latest"
    echo "lab-setup: pushed lab/debian:latest" >&2
  fi
}

case ${1:-start} in
  start) [ $# -eq 0 ] || shift; start "$@" ;;
  stop) "$repo/scripts/registry.sh" stop "$lab/registry" ;;
  *) echo "usage: $0 [start] [--debian] | stop" >&2; exit 2 ;;
esac
