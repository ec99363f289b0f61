#!/usr/bin/env bash
# Builds the lab's busybox image from Debian's busybox-static and pushes it to a registry.
#
#   scripts/build-busybox-image.sh WORKDIR DEST [DEST...]
#
# DEST is anything skopeo copy takes, e.g. docker://127.0.0.1:5000/lab/busybox:latest.
# Two layers, as a real image has: the busybox binary with its applet links, then /etc.
# Built with umoci (an OCI layout) and pushed with skopeo, the tools the tutorials use.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 WORKDIR DEST [DEST...]" >&2; exit 2; }
work=$1; shift
busybox=${BUSYBOX:-/bin/busybox}
for tool in umoci skopeo; do command -v $tool >/dev/null || { echo "$0: $tool not found (apt-get install $tool)" >&2; exit 1; }; done
[ -x "$busybox" ] || { echo "$0: $busybox not found (apt-get install busybox-static)" >&2; exit 1; }

rm -rf "$work"; mkdir -p "$work"
layout=$work/layout bundle=$work/bundle
umoci init --layout "$layout"
umoci new --image "$layout:busybox"
umoci unpack --image "$layout:busybox" "$bundle" >/dev/null

root=$bundle/rootfs
mkdir -p "$root/bin"
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
done
umoci repack --image "$layout:busybox" "$bundle" >/dev/null
# umoci repacks relative to what was unpacked: unpack again so /etc becomes a layer of its own.
rm -rf "$bundle"
umoci unpack --image "$layout:busybox" "$bundle" >/dev/null

mkdir -p "$root/etc" "$root/root" "$root/tmp" "$root/home/lab" "$root/proc" "$root/sys" "$root/dev"
chmod 1777 "$root/tmp"; chmod 700 "$root/root"
cat > "$root/etc/os-release" <<'OS'
NAME="container-parts lab busybox"
ID=busybox
PRETTY_NAME="container-parts lab busybox"
HOME_URL="https://busybox.net/"
OS
printf 'root:x:0:0:root:/root:/bin/sh\nlab:x:1000:1000:lab user:/home/lab:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$root/etc/passwd"
printf 'root:x:0:\nwheel:x:10:lab\nlab:x:1000:\nnogroup:x:65534:\n' > "$root/etc/group"
echo lab-busybox > "$root/etc/hostname"
chown 1000:1000 "$root/home/lab"
umoci repack --image "$layout:busybox" "$bundle" >/dev/null

umoci config --image "$layout:busybox" --os linux --architecture "$(dpkg --print-architecture 2>/dev/null || echo amd64)" \
  --config.cmd sh --config.env PATH=/bin --config.workingdir / \
  --config.exposedports 8080/tcp --config.stopsignal SIGTERM \
  --config.label org.opencontainers.image.title=lab-busybox >/dev/null
umoci gc --layout "$layout"

"$(dirname "$0")/push-image.sh" "oci:$layout:busybox" "$@"
