#!/usr/bin/env bash
# Leaves nothing of a lab behind under DIR: stops and deletes the runc containers whose bundle is
# in DIR, unmounts every mount at or below DIR (deepest first), then removes DIR.
#
#   lab-clean DIR     (on PATH after eval "$(scripts/lab-env.sh)"; the tests call it too)
#
# Unmounting comes before rm -rf for a reason: rm through a mounted overlay deletes from its
# upper dir, and through a bind mount it deletes the host's files.
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: lab-clean DIR" >&2; exit 2; }
[ -e "$1" ] || exit 0
dir=$(realpath "$1")
case $dir in
  / | /root | /home | /tmp | /var | /usr | /etc) echo "lab-clean: refusing to remove $dir" >&2; exit 2 ;;
esac

if command -v runc >/dev/null; then
  runc list --format json 2>/dev/null | jq -r --arg dir "$dir" '.[]? | select(.bundle == $dir or (.bundle | startswith($dir + "/"))) | .id' |
    while read -r id; do runc delete --force "$id" >/dev/null 2>&1 || true; done
fi

# Field 5 of mountinfo is the mount point (a space in it is written \040); deepest first.
mounts_under() {
  awk '{ print $5 }' /proc/self/mountinfo | sed 's/\\040/ /g' |
    awk -v dir="$dir" '$0 == dir || index($0, dir "/") == 1 { print length($0) "\t" $0 }' | sort -rn | cut -f2-
}
mounts_under | while IFS= read -r mountpoint; do umount "$mountpoint" 2>/dev/null || umount -l "$mountpoint"; done
if [ -n "$(mounts_under)" ]; then
  echo "lab-clean: still mounted under $dir, not removing it: $(mounts_under | head -1)" >&2
  exit 1
fi
rm -rf "$dir"
