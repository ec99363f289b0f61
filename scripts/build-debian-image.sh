#!/usr/bin/env bash
# Builds the lab's debian image (debootstrap --variant=minbase) and pushes it, e.g. as lab/debian:latest.
#
#   scripts/build-debian-image.sh WORKDIR DEST [DEST...]
#
# DEST is anything skopeo copy takes: docker://127.0.0.1:5000/lab/debian:latest, oci:DIR:latest.
# Two layers, as a real image has: the debootstrapped system, then a change set with whiteouts
# (documentation and apt caches deleted, a directory replaced by a file, a file with a
# capability, an edited config file). Built with umoci, pushed with skopeo.
#
# debootstrap takes minutes; its root filesystem is kept as a tarball in
# $CONTAINER_PARTS_CACHE (default /var/cache/container-parts), so a re-run takes seconds.
# The mirror is the one this machine's apt uses (DEBIAN_MIRROR overrides it).
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 WORKDIR DEST [DEST...]" >&2; exit 2; }
work=$1; shift
suite=${DEBIAN_SUITE:-bookworm}
cache=${CONTAINER_PARTS_CACHE:-/var/cache/container-parts}
arch=$(dpkg --print-architecture)
for tool in debootstrap umoci skopeo setcap; do command -v $tool >/dev/null || { echo "$0: $tool not found (scripts/install-deps.sh)" >&2; exit 1; }; done
[ "$(id -u)" = 0 ] || { echo "$0: debootstrap needs root" >&2; exit 1; }

apt_mirror() {
  # deb822 sources first (URIs: …), then one-line sources (deb URL SUITE …).
  local uri
  uri=$(awk '/^URIs:/ && !/security/ { print $2; exit }' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  [ -n "$uri" ] || uri=$(awk '$1 == "deb" && $2 !~ /^\[/ && $3 !~ /security/ { print $2; exit }' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true)
  echo "${uri:-http://deb.debian.org/debian}"
}

tarball=$cache/debian-$suite-minbase-$arch.tar
if [ ! -s "$tarball" ]; then
  mirror=${DEBIAN_MIRROR:-$(apt_mirror)}
  mkdir -p "$cache"
  staging=$(mktemp -d "$cache/debootstrap.XXXXXX")
  trap 'rm -rf "$staging"' EXIT
  echo "$0: debootstrap --variant=minbase $suite from $mirror (once; cached in $tarball)" >&2
  debootstrap --variant=minbase --arch="$arch" "$suite" "$staging/rootfs" "$mirror" >"$staging/debootstrap.log" 2>&1 ||
    { tail -20 "$staging/debootstrap.log" >&2; exit 1; }
  # The package caches are not part of an image (as the official debian images do).
  rm -rf "$staging"/rootfs/var/cache/apt/archives/*.deb "$staging"/rootfs/var/lib/apt/lists/*_*
  tar --numeric-owner --xattrs --xattrs-include='*' -C "$staging/rootfs" -cf "$tarball.partial" .
  mv "$tarball.partial" "$tarball"
  rm -rf "$staging"; trap - EXIT
fi

rm -rf "$work"; mkdir -p "$work"
layout=$work/layout bundle=$work/bundle root=$work/bundle/rootfs
umoci init --layout "$layout"
umoci new --image "$layout:debian"

# Layer 1: the debootstrapped system as it is.
umoci unpack --image "$layout:debian" "$bundle" >/dev/null
tar --numeric-owner --xattrs --xattrs-include='*' -xpf "$tarball" -C "$root"
umoci repack --image "$layout:debian" "$bundle" >/dev/null
rm -rf "$bundle"

# Layer 2: what an image build on top typically changes; umoci writes deletions as .wh. whiteouts.
umoci unpack --image "$layout:debian" "$bundle" >/dev/null
rm -rf "$root"/usr/share/doc/* "$root"/usr/share/info "$root"/usr/share/man/man8
rm -rf "$root"/var/cache/debconf/*-old "$root"/var/log/*.log
rm -rf "$root/srv" && printf 'a file where a directory was\n' > "$root/srv"
rm -f "$root/etc/motd" && mkdir -p "$root/etc/motd" && printf 'a directory where a file was\n' > "$root/etc/motd/lab"
printf 'container-parts lab debian\n' > "$root/etc/issue"
install -m 0755 "$root/usr/bin/true" "$root/usr/local/bin/cap-net-raw"
setcap cap_net_raw+ep "$root/usr/local/bin/cap-net-raw"
install -m 4755 "$root/usr/bin/true" "$root/usr/local/bin/setuid-true"
mkdir -p "$root/home/lab" && chown 1000:1000 "$root/home/lab" && chmod 0750 "$root/home/lab"
umoci repack --image "$layout:debian" "$bundle" >/dev/null
rm -rf "$bundle"

umoci config --image "$layout:debian" --os linux --architecture "$arch" \
  --config.cmd bash --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --config.workingdir / --config.label org.opencontainers.image.title=lab-debian >/dev/null
umoci gc --layout "$layout"

"$(dirname "$0")/push-image.sh" "oci:$layout:debian" "$@"
