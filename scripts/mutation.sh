#!/usr/bin/env bash
# Mutation testing (StrykerJS), one module at a time: `scripts/mutation.sh [MODULE...]`
# (default: every module in stryker/modules.json), then a table of the scores per module.
#
# Incremental: each module's results are kept in stryker/incremental/MODULE.json (committed),
# so a re-run tests only the mutants of code or tests that changed since. A module's mutants
# run only the test files listed for it in stryker/modules.json. Reports: reports/mutation/.
# Targets (issue 14): 75% on the modules that keep the promises, 60% on the rest.
set -euo pipefail
cd "$(dirname "$0")/.."
unset NODE_EXTRA_CA_CERTS
export PATH="$PWD/dist/tools:$PATH" CP_TOOLS_UNBUNDLED=1
# A mutant can make a test throw before its cleanup, and Stryker kills a test run that bails or
# times out: every temporary dir of the run goes under one TMPDIR (mode 1777 as /tmp, for the
# rootless tests' users), removed when the run ends however it ends.
TMPDIR=$(mktemp -d /tmp/cp-mutation-XXXXXX)
chmod 1777 "$TMPDIR"
export TMPDIR
trap 'rm -rf "$TMPDIR"' EXIT
if [ $# -gt 0 ]; then modules=("$@"); else mapfile -t modules < <(node -e 'for (const m of Object.keys(require("./stryker/modules.json"))) if (m !== "//") console.log(m)'); fi
npm run --silent build
# The sandbox is a copy under .stryker-tmp/: it would not find the OCI specs beside this checkout.
CONTAINER_PARTS_SPECS=${CONTAINER_PARTS_SPECS:-$(node --input-type=module -e 'console.log((await import("./dist/test/helpers/paths.js")).SPECS)')}
export CONTAINER_PARTS_SPECS
mkdir -p stryker/incremental reports/mutation
for module in "${modules[@]}"; do
  echo "== mutation: $module" >&2
  CP_MUTATION_MODULE="$module" node_modules/.bin/stryker run stryker/stryker.config.mjs --logLevel "${CP_MUTATION_LOG_LEVEL:-warn}"
done
node scripts/mutation-table.mjs "${modules[@]}"
