/**
 * Loaded by scripts/run-tests.sh (`node --expose-internals --import`) into every test file, so
 * no test or hook can hang. node 20's --test-timeout bounds a whole file and names only the
 * file; this gives every test and hook without its own `{ timeout }` a default one
 * ($CP_TEST_TIMEOUT_MS, 120 s), so a stuck test fails with its own name and the file goes on to
 * its other tests and its cleanup. It hooks the runner's Test class rather than wrapping test():
 * a wrapper would become the location node reports for every failure.
 */
import { createRequire } from 'node:module';

interface TestOptions {
  timeout?: number;
}
interface RunnerTest {
  parent: RunnerTest | null;
  name: string;
  finished: boolean;
  subtests: RunnerTest[];
  error?: { failureType?: string } | null;
  createSubtest(factory: unknown, name: unknown, options: unknown, fn: unknown, overrides: unknown): unknown;
  createHook(name: string, fn: unknown, options?: TestOptions): unknown;
  postRun(...args: unknown[]): unknown;
}

const defaultTimeoutMs = Number(process.env.CP_TEST_TIMEOUT_MS ?? 120_000);
const graceMs = Number(process.env.CP_EXIT_GRACE_MS ?? 10_000);
const { Test } = createRequire(import.meta.url)('internal/test_runner/test') as { Test: { prototype: RunnerTest } };

const withTimeout = (options: unknown): TestOptions => {
  const given = options !== null && typeof options === 'object' ? (options as TestOptions) : {};
  return given.timeout === undefined ? { ...given, timeout: defaultTimeoutMs } : given;
};

const { createSubtest, createHook, postRun } = Test.prototype;
const timedOut: string[] = [];
/** test(name?, options?, fn?): the same normalisation the runner does, then a default timeout. */
Test.prototype.createSubtest = function (factory, name, options, fn, overrides) {
  if (typeof name === 'function') [name, options, fn] = [undefined, undefined, name];
  else if (name !== null && typeof name === 'object') [name, options, fn] = [undefined, name, options];
  else if (typeof options === 'function') [options, fn] = [undefined, options];
  return createSubtest.call(this, factory, name, withTimeout(options), fn, overrides);
};
Test.prototype.createHook = function (name, fn, options) {
  return createHook.call(this, name, fn, withTimeout(options));
};
/**
 * A timed-out test may leave what it started holding the event loop; node 20 ends a file (runs
 * its top-level after() hooks, reports) only when the loop empties. So once every top-level test
 * is over and one of them timed out, end the file the same way after a grace, then exit.
 */
Test.prototype.postRun = function (...args) {
  const result = postRun.apply(this, args);
  const root = this.parent;
  if (root === null) setTimeout(() => process.exit(), 1000).unref();
  else if (root.parent === null) {
    if (this.error?.failureType === 'testTimeoutFailure') timedOut.push(this.name);
    if (timedOut.length > 0 && root.subtests.every((t) => t.finished)) {
      setTimeout(() => {
        process.stderr.write(`${process.argv[1]}: still running ${graceMs} ms after its last test (${timedOut.join(', ')} timed out): ending the file\n`);
        process.emit('beforeExit', 0);
      }, graceMs).unref();
    }
  }
  return result;
};
