/**
 * oci-runtime vs runc on the same bundle (runc spec's config for the lab busybox rootfs,
 * running `true`), A B A B in one run: `run` start-to-exit, and create + start + delete (the
 * detached lifecycle: a supervisor process per container, then two more commands). Each run
 * uses a fresh id ($$: the bash pid of the run) and state dir of its own. Targets from the
 * issue: at most 1.5x runc's time for both.
 */
import { join } from 'node:path';
import { compare } from './harness.js';
import { busyboxRootfs } from '../test/helpers/mounts.js';
import { writeBundle } from '../test/helpers/runtimes.js';
import { tempDir, toolPath } from '../test/helpers/paths.js';
import { shellQuote } from '../lib/core/shell.js';

export async function run(): Promise<void> {
  const work = await tempDir('cp-bench-rt-');
  try {
    const { rootfs } = await busyboxRootfs(work.path);
    const bundle = await writeBundle(join(work.path, 'runc-bundle'), rootfs, ['true']);
    const q = shellQuote;
    const ours = `node ${q(toolPath('oci-runtime'))} --root ${q(join(work.path, 'ours'))}`;
    const runc = `runc --root ${q(join(work.path, 'runc'))}`;
    await compare(
      'start-to-exit of `true`: run',
      { name: 'runc run', command: `${runc} run -b ${q(bundle)} b-$$ < /dev/null` },
      [{ name: 'oci-runtime run', command: `${ours} run -b ${q(bundle)} b-$$ < /dev/null` }],
      { rounds: 15, targets: { 'oci-runtime run': 1.5 } },
    );
    // The container's stdio is the create's: /dev/null, so the shell does not wait for it.
    // delete --force: the same for both, whether `true` has ended yet or not.
    const lifecycle = (cli: string) => `${cli} create -b ${q(bundle)} l-$$ < /dev/null > /dev/null 2>&1 && ${cli} start l-$$ && ${cli} delete --force l-$$`;
    await compare(
      'create + start + delete of `true`',
      { name: 'runc create/start/delete', command: lifecycle(runc) },
      [{ name: 'oci-runtime create/start/delete', command: lifecycle(ours) }],
      { rounds: 10, targets: { 'oci-runtime create/start/delete': 1.5 } },
    );
  } finally {
    await work.cleanup();
  }
}
