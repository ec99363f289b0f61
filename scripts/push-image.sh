#!/usr/bin/env bash
# Copies an image to each destination with skopeo: a docker:// registry (plain HTTP allowed, as
# the lab registry is; $DEST_CREDS as USER:PASS when it asks), or anything else skopeo writes.
#
#   scripts/push-image.sh SOURCE DEST [DEST...]      e.g. oci:build/layout:busybox docker://127.0.0.1:5000/lab/busybox:latest
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 SOURCE DEST [DEST...]" >&2; exit 2; }
source=$1; shift
for dest in "$@"; do
  case $dest in
    docker://*) skopeo copy -q --dest-tls-verify=false ${DEST_CREDS:+--dest-creds "$DEST_CREDS"} "$source" "$dest" ;;
    *) skopeo copy -q "$source" "$dest" ;;
  esac
done
