#!/usr/bin/env bash
# Installs what container-parts, its demo and its tests need on Debian, as root.
# Idempotent and quick when everything is there: apt runs only for missing packages.
set -euo pipefail
packages=(
  nodejs npm            # the toolkit itself (a machine that has node already keeps it)
  docker-registry       # the lab's local registry
  skopeo umoci          # image oracles and the demo image builder
  podman buildah        # oracles of img-push (podman pull/load read what it writes) and of img-commit (buildah commit)
  runc crun             # runtime oracles
  bubblewrap            # ns-enter's executor of namespace/mount/pivot_root syscalls
  gcc libc6-dev         # ns-enter's static helper (native/ns-enter-exec.c), built by npm run build
  podman buildah        # the oracle for the configs oci-spec builds (test/helpers/podman.ts)
  golang-github-containers-common  # the default seccomp profile, /usr/share/containers/seccomp.json
  python3-seccomp       # libseccomp, which compiles a config's linux.seccomp for bubblewrap (lib/run/seccomp-filter.ts)
  catatonit             # ns-enter --init: the PID 1 that forwards signals and reaps zombies (podman run --init)
  fuse-overlayfs        # overlay without kernel support or privileges
  busybox-static        # the demo image's contents
  zstd                  # tar+zstd layers
  uidmap                # newuidmap/newgidmap for rootless id ranges
  libcap2-bin attr      # getcap/setcap, getfattr/setfattr for the tests
  util-linux iproute2   # unshare/mount/nsenter, ip
  procps                # ps, for the labs (docs/labs/)
  debootstrap           # the debian lab image
  apache2-utils         # htpasswd for the auth registry
  openssl curl jq tmux hyperfine python3 ca-certificates time
)
missing=()
for p in "${packages[@]}"; do
  case $p in
    nodejs|npm) command -v "${p/nodejs/node}" >/dev/null && continue ;;
  esac
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then echo "install-deps: run as root to install: ${missing[*]}" >&2; exit 1; fi
  echo "install-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
