/**
 * ns-enter vs `runc run` vs bare `bwrap`: start-to-exit of `true` in the lab busybox image,
 * A B A B in one run. runc runs a bundle whose config is `runc spec`'s for the same rootfs;
 * ns-enter runs that bundle too (--bundle: the config is validated) and builds its own from
 * flags (--rootfs); bwrap is the executor alone, with the namespaces and /proc /dev /sys
 * mounts, and `node -e 0` is node's own start-up: together the floor of a node front on bwrap.
 * Target from the issue: ns-enter at most 1.0x runc.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { compare } from './harness.js';
import { busyboxRootfs } from '../test/helpers/mounts.js';
import { mustExec } from '../test/helpers/exec.js';
import { tempDir, toolPath } from '../test/helpers/paths.js';
import { shellQuote } from '../lib/core/shell.js';

export async function run(): Promise<void> {
  const work = await tempDir('cp-bench-ns-');
  try {
    const { rootfs } = await busyboxRootfs(work.path);
    const bundle = join(work.path, 'runc-bundle');
    await mustExec('mkdir', ['-p', bundle]);
    await mustExec('runc', ['spec', '--bundle', bundle]);
    const config = JSON.parse(await readFile(join(bundle, 'config.json'), 'utf8'));
    config.root = { path: rootfs, readonly: true };
    config.process.terminal = false;
    config.process.args = ['true'];
    await writeFile(join(bundle, 'config.json'), JSON.stringify(config, null, '\t'));
    const nsEnter = `node ${shellQuote(toolPath('ns-enter'))}`;
    const q = shellQuote;
    await compare(
      'start-to-exit of `true` in the busybox image',
      // $$: each run's bash pid, a container name runc has not seen.
      { name: 'runc run', command: `runc run -b ${q(bundle)} cp-bench-$$` },
      [
        { name: 'ns-enter --rootfs', command: `${nsEnter} --rootfs ${q(rootfs)} -- true` },
        { name: 'ns-enter --bundle', command: `${nsEnter} --bundle ${q(bundle)}` },
        { name: 'node -e 0 (start-up floor)', command: 'node -e 0' },
        { name: 'bwrap (executor alone)', command: `bwrap --bind ${q(rootfs)} / --unshare-pid --unshare-net --unshare-ipc --unshare-uts --proc /proc --dev /dev --ro-bind /sys /sys --as-pid-1 --die-with-parent -- /bin/true` },
      ],
      { rounds: 15, targets: { 'ns-enter --rootfs': 1.0, 'ns-enter --bundle': 1.0 } },
    );
  } finally {
    await work.cleanup();
  }
}
