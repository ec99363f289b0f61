/**
 * scripts/run-tests.sh cannot hang: a hung test fails with its name and the run goes on; a hang
 * that holds the runner itself (a child on the runner's stdout) is stopped by the suite timeout.
 * The hung tests are a fixture (dist/test/fixtures/hangs.fixture.js) run in a child process.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { exec } from './helpers/exec.js';
import { REPO, SCRIPTS } from './helpers/paths.js';

const FIXTURE = join(REPO, 'dist', 'test', 'fixtures', 'hangs.fixture.js');

function runFixture(env: NodeJS.ProcessEnv) {
  return exec(join(SCRIPTS, 'run-tests.sh'), [FIXTURE], { env: { CP_TEST_TIMEOUT_MS: '1000', CP_EXIT_GRACE_MS: '500', ...env }, timeoutMs: 60_000 });
}

test('a test that hangs fails with its name after the per-test timeout; the tests after it run', async () => {
  const started = process.hrtime.bigint();
  const result = await runFixture({ CP_FILE_TIMEOUT_MS: '50000' });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  assert.equal(result.status, 1, result.stdout + result.stderr);
  assert.match(result.stdout, /✖ this test never ends \(\d+(\.\d+)?ms\)\n\s*'test timed out after 1000ms'/);
  assert.match(result.stdout, /✔ a quick test passes/);
  assert.match(result.stdout, /✔ a test after the hung one still runs/);
  assert.match(result.stdout, /ℹ pass 2\n/);
  // The leaked child holds the file's event loop: the file exits after its grace, not at the file timeout.
  assert.match(result.stdout, /hangs\.fixture\.js: still running 500 ms after its last test \(this test never ends timed out\): ending the file/);
  assert.ok(seconds < 45, `ended after ${seconds.toFixed(1)} s, before the 50 s file timeout`);
});

test('a hang that holds the runner itself is stopped by the suite timeout, exit 124, the hung test named', async () => {
  const result = await runFixture({ FIXTURE_HOLD_RUNNER: '1', CP_SUITE_TIMEOUT: '6s', CP_FILE_TIMEOUT_MS: '3000' });
  assert.equal(result.status, 124, result.stdout + result.stderr);
  assert.match(result.stdout, /✖ this test never ends/);
  assert.match(result.stderr, /run-tests\.sh: the test run took longer than 6s and was stopped/);
});
