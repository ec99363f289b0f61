/** Paths the tests need: the checkout, the compiled tools, the shared specs beside the repo. */
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';

/** The repository root (tests run from dist/test/…). */
export const REPO = fileURLToPath(new URL('../../../', import.meta.url));
export const TOOLS = join(REPO, 'dist', 'tools');
export const SCRIPTS = join(REPO, 'scripts');
/** ../shared/specs: the official OCI specs and schemas, the tests' oracle. */
export const SPECS = join(REPO, '..', 'shared', 'specs');

export function toolPath(name: string): string {
  return join(TOOLS, `${name}.js`);
}

/** A fresh temporary directory, removed by the returned cleanup. */
export async function tempDir(prefix = 'cp-test-'): Promise<{ path: string; cleanup: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, cleanup: () => rm(path, { recursive: true, force: true }) };
}
