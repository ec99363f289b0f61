/**
 * Detached containers from the pipe: `ns-enter -d [--name web] [--rm]` creates the container
 * it prepared (from the piped image, --rootfs or --bundle) under oci-runtime's default state
 * dir and starts it, so that `oci-runtime list`, `exec`, `kill` and `delete` find it by name;
 * its output goes to container.log in its state dir. With --rm its state goes when it ends,
 * and a piped overlay is unmounted and its dirs removed (podman run -d --rm).
 */
import { UsageError } from '../core/errors.js';
import { readyPrepared, type PreparedRun } from '../run/container.js';
import { runStateDir } from '../run/run-record.js';
import type { RunFlags } from '../run/runflags.js';
import { createContainer } from './create.js';
import { startContainer } from './lifecycle.js';
import { containerDir } from './state.js';

/** Creates and starts the container; returns its id (podman run -d prints it). */
export async function runDetached(prepared: PreparedRun, options: { flags: RunFlags; storePath: string; warn: (message: string) => void }): Promise<string> {
  const { flags } = options;
  if (prepared.config.process?.terminal) throw new UsageError('-d: a detached container has no terminal: drop -t (or give --tty=false)');
  await readyPrepared(prepared, options);
  const root = runStateDir();
  await createContainer({
    root,
    id: prepared.id,
    // No bundle of its own: the state dir, which holds its config.json, stands for one.
    bundle: prepared.bundleDir ?? containerDir(root, prepared.id),
    config: prepared.config,
    log: { format: 'text' },
    stdio: 'log',
    image: prepared.image,
    origin: 'ns-enter',
    removeWhenStopped: flags.rm,
    executor: { etcFiles: prepared.bundleDir === undefined, init: flags.init, overlayDir: prepared.mount?.optionsDir },
    unmountAfter: flags.rm && prepared.mount ? { mount: prepared.mount, storePath: options.storePath } : undefined,
  });
  await startContainer(root, prepared.id);
  return prepared.id;
}
