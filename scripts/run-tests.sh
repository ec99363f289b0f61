#!/usr/bin/env bash
# Runs the test suite: node's test runner over the compiled tests, one file at a time
# (tests start registries and mount filesystems; running them one by one keeps them apart).
# Unset NODE_EXTRA_CA_CERTS: it costs every node start ~80 ms and the tests start many.
#
# Nothing can hang: every test and hook has a default timeout (test/helpers/timeouts.ts:
# $CP_TEST_TIMEOUT_MS, 120 s; a known-long test sets its own { timeout }) and fails with its
# name; each file is bounded by $CP_FILE_TIMEOUT_MS (20 min, above the longest test: a debian
# image built from scratch); the whole run by $CP_SUITE_TIMEOUT (60 min: the suite takes ~2 min
# here, a fresh clone's first image builds more, CI allows 90), then exit 124.
set -euo pipefail
cd "$(dirname "$0")/.."
unset NODE_EXTRA_CA_CERTS NODE_TEST_CONTEXT
export PATH="$PWD/dist/bin:$PATH"
if [ $# -gt 0 ]; then files=("$@"); else mapfile -t files < <(find dist/test -name '*.test.js' | sort); fi
status=0
timeout --kill-after=30s "${CP_SUITE_TIMEOUT:-60m}" \
  node --expose-internals --import "$PWD/dist/test/helpers/timeouts.js" --test --test-concurrency=1 \
  --test-timeout="${CP_FILE_TIMEOUT_MS:-1200000}" --test-reporter=spec "${files[@]}" || status=$?
if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
  echo "run-tests.sh: the test run took longer than ${CP_SUITE_TIMEOUT:-60m} and was stopped (a hung test: the last one started above)" >&2
fi
exit "$status"
