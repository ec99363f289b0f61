#!/usr/bin/env bash
# Runs the test suite: node's test runner over the compiled tests, one file at a time
# (tests start registries and mount filesystems; running them one by one keeps them apart).
# Unset NODE_EXTRA_CA_CERTS: it costs every node start ~80 ms and the tests start many.
set -euo pipefail
cd "$(dirname "$0")/.."
unset NODE_EXTRA_CA_CERTS
export PATH="$PWD/dist/tools:$PATH"
if [ $# -gt 0 ]; then files=("$@"); else mapfile -t files < <(find dist/test -name '*.test.js' | sort); fi
exec node --test --test-concurrency=1 --test-reporter=spec "${files[@]}"
