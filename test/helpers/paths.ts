/** Paths the tests need: the checkout, the compiled tools, the shared specs. */
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';

/** The repository root (tests run from dist/test/…). */
export const REPO = fileURLToPath(new URL('../../../', import.meta.url));
/**
 * The commands as users run them: esbuild's bundles in dist/bin/. A mutation run (Stryker
 * mutates tsc's output in dist/lib/) sets CP_TOOLS_UNBUNDLED so spawned commands run the mutants.
 */
export const TOOLS = join(REPO, 'dist', process.env.CP_TOOLS_UNBUNDLED ? 'tools' : 'bin');
export const SCRIPTS = join(REPO, 'scripts');
/**
 * The official OCI specs and schemas, the tests' oracle (never copied into the project):
 * $CONTAINER_PARTS_SPECS, else shared/specs beside this checkout, else beside the checkout this
 * one was cloned from, so a clone made elsewhere (`git clone . /tmp/fresh`) still finds them.
 */
export const SPECS = locateSpecs();

function locateSpecs(): string {
  const beside = (checkout: string) => join(checkout, '..', 'shared', 'specs');
  const candidates = [process.env.CONTAINER_PARTS_SPECS, beside(REPO)];
  const found = candidates.find((c) => c !== undefined && existsSync(c));
  if (found) return found;
  try {
    const origin = execFileSync('git', ['-C', REPO, 'config', '--get', 'remote.origin.url'], { encoding: 'utf8' }).trim();
    if (isAbsolute(origin) && existsSync(beside(origin))) return beside(origin);
  } catch {
    // not a clone of a local checkout
  }
  return beside(REPO);
}

export function toolPath(name: string): string {
  return join(TOOLS, `${name}.js`);
}

/** A command as tsc wrote it, module by module (dist/tools/): for tests of what its import graph loads. */
export function unbundledToolPath(name: string): string {
  return join(REPO, 'dist', 'tools', `${name}.js`);
}

/**
 * Synchronous cleanups still due when the process exits, run last-registered first. A test file
 * can end before its after() hooks: a failed assertion under StrykerJS's bail kills it
 * (SIGTERM, which the runner's hook turns into process.exit), and so does a timeout. Without
 * these, every killed mutant left a /tmp/cp-* directory (and a registry server) behind.
 */
const dueAtExit = new Set<() => void>();
let exitHookInstalled = false;

/** Runs `cleanup` when the process exits, unless the returned function is called first (it then runs nothing). */
export function cleanUpAtExit(cleanup: () => void): () => void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const due of [...dueAtExit].reverse()) {
        try {
          due();
        } catch {
          // best effort: the process is going away
        }
      }
    });
  }
  dueAtExit.add(cleanup);
  return () => dueAtExit.delete(cleanup);
}

/** A fresh temporary directory, removed by the returned cleanup, or at exit if that never runs. */
export async function tempDir(prefix = 'cp-test-'): Promise<{ path: string; cleanup: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  const cancel = cleanUpAtExit(() => rmSync(path, { recursive: true, force: true }));
  return {
    path,
    cleanup: () => {
      cancel();
      return rm(path, { recursive: true, force: true });
    },
  };
}

/** Runs `fn` in a fresh temporary directory, removed after it (also when it fails). */
export async function withTempDir(prefix: string, fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await tempDir(prefix);
  try {
    await fn(dir.path);
  } finally {
    await dir.cleanup();
  }
}
