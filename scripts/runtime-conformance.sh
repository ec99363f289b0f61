#!/bin/sh
# The OCI runtime-tools validation suite (validation/*.t) against an OCI runtime, with totals.
#
#   scripts/runtime-conformance.sh SUITE_DIR            # RUNTIME: oci-runtime of this checkout
#   RUNTIME=runc scripts/runtime-conformance.sh SUITE_DIR
#
# SUITE_DIR is a runtime-tools checkout (github.com/opencontainers/runtime-tools, commit a3a57a9
# builds with Debian's golang-go) where `GOFLAGS=-mod=vendor make runtimetest
# validation-executables` was run. Each program runs from SUITE_DIR (it reads runtimetest and
# rootfs-*.tar.gz there) with a time limit of its own (TIMEOUT, default 120 s). The output of
# each goes to OUT/NAME.tap (default OUT: a new temp dir); the totals count TAP lines: `ok`,
# `not ok`, and programs that printed neither (no result: a crash, a hang, an unsupported test).
# The project's own tests never need this suite (CI cannot fetch it).
set -eu
suite=${1:?usage: runtime-conformance.sh SUITE_DIR}
here=$(cd "$(dirname "$0")/.." && pwd)
runtime=${RUNTIME:-$here/dist/bin/oci-runtime.js}
timeout=${TIMEOUT:-120}
out=${OUT:-$(mktemp -d /tmp/runtime-conformance.XXXXXX)}
mkdir -p "$out"
cd "$suite"
[ -x runtimetest ] || { echo "runtime-conformance: $suite/runtimetest is missing: run GOFLAGS=-mod=vendor make runtimetest validation-executables there" >&2; exit 2; }
ok=0 notok=0 none=0 programs=0
for program in validation/*/*.t; do
  name=$(basename "$program" .t)
  programs=$((programs + 1))
  RUNTIME=$runtime timeout -k 5 "$timeout" "./$program" > "$out/$name.tap" 2>&1 || true
  passed=$(grep -cE '^[[:space:]]*ok[[:space:]]' "$out/$name.tap" || true)
  failed=$(grep -cE '^[[:space:]]*not ok[[:space:]]' "$out/$name.tap" || true)
  if [ "$passed" -eq 0 ] && [ "$failed" -eq 0 ]; then none=$((none + 1)); echo "$name: no result" >&2; fi
  [ "$failed" -gt 0 ] && echo "$name: $passed ok, $failed not ok" >&2
  ok=$((ok + passed)) notok=$((notok + failed))
done
echo "runtime: $runtime"
echo "programs: $programs"
echo "ok: $ok"
echo "not ok: $notok"
echo "no result: $none"
echo "output: $out"
