#!/usr/bin/env node
/** ovl-mount: merge image layers and a writable upper dir into one tree (mount -t overlay, fuse-overlayfs). */
import { defineCommand, isMainModule, main, withStore } from '../lib/cli/command.js';
import { diffContainerRoot, mountContainerRoot, pipedStore, unmountContainerRoot } from '../lib/mount/container.js';
import { isRootless } from '../lib/mount/owners.js';
import { withSection, type PipeDocument } from '../lib/cli/document.js';
import { UsageError } from '../lib/core/errors.js';
import { formatChange } from '../lib/mount/diff.js';
import type { DriverChoice } from '../lib/mount/model.js';
import { resolveStorePath } from '../lib/core/paths.js';

export const ovlMount = defineCommand({
  name: 'ovl-mount',
  purpose: "Mount an overlay: the image's layers (read-only lower dirs) under a container's writable upper dir, merged at a target dir; show what a container changed; unmount.",
  usage: '$0 [options]\n$0 --lower L3:L2:L1 --upper U --work W --target MERGED\n$0 --diff [MERGED]\n$0 --unmount [MERGED]',
  examples: [
    ['img-fetch docker://127.0.0.1:5000/lab/busybox:latest --tls-verify=false | img-unpack --layers | $0', "mount the image's layers under a new container's dirs in the store"],
    ['$0 --lower /l2:/l1 --upper /u --work /w --target /merged', 'like mount -t overlay overlay -o lowerdir=/l2:/l1,upperdir=/u,workdir=/w /merged'],
    ['$0 --diff /merged', 'list what the container added (A), changed (C), deleted (D) and made opaque (O)'],
    ['$0 --unmount /merged', 'unmount (or pipe the document in)'],
  ],
  options: (y) =>
    withStore(y)
      .option('lower', { type: 'string', requiresArg: true, describe: 'Lower dirs, top first, colon-separated (default: the piped rootfs)' })
      .option('upper', { type: 'string', requiresArg: true, describe: "Writable dir for the container's changes (default: the container's dir in the store)" })
      .option('work', { type: 'string', requiresArg: true, describe: 'Scratch dir on the same filesystem as --upper' })
      .option('target', { type: 'string', requiresArg: true, describe: "Where to mount the merged tree (default: the container's dir in the store)" })
      .option('name', { type: 'string', requiresArg: true, describe: 'Container name: its dirs are STORE/containers/NAME (default: a new id); the same name again shows its earlier changes (of the same image: another is refused)' })
      .option('read-only', { type: 'boolean', default: false, describe: 'No upper dir: a read-only merge' })
      .option('driver', { choices: ['auto', 'kernel', 'fuse'] as const, default: 'auto' as const, describe: "auto: the kernel's overlay, else fuse-overlayfs; kernel; fuse: fuse-overlayfs" })
      .option('diff', { type: 'boolean', default: false, describe: 'Print what the container changed (MERGED, or the piped document) and do nothing else' })
      .option('unmount', { type: 'boolean', default: false, describe: 'Unmount MERGED (or the piped document) and do nothing else: only an overlay ovl-mount mounted, and not while a process (a container) uses it' }),
  async run(args, ctx) {
    const positional = args._.map(String);
    if (positional.length > 1 || (positional.length === 1 && !args.diff && !args.unmount)) throw new UsageError(`unexpected argument ${JSON.stringify(positional[positional.length - 1])} (MERGED goes with --diff or --unmount)`);
    if (args.diff && args.unmount) throw new UsageError('--diff and --unmount do not go together');
    const doc = args.explain && positional.length > 0 ? undefined : await ctx.document({ inputFromFlags: args.lower !== undefined || positional.length > 0 });
    const storePath = pipedStore(args.store, doc) ?? resolveStorePath(args.store, ctx.io.env);

    if (args.diff || args.unmount) {
      const target = positional[0] ?? doc?.mount?.target;
      if (args.explain) return ctx.explain((await import('../lib/cli/explain.js')).explainMount({ action: args.diff ? 'diff' : 'unmount', mount: doc?.mount, target }));
      if (args.diff) {
        for (const change of await diffContainerRoot(positional[0] === undefined ? doc?.mount : undefined, positional[0], storePath)) ctx.io.stdout.write(`${formatChange(change)}\n`);
        return;
      }
      if (target === undefined) throw new UsageError('--unmount needs MERGED, or the ovl-mount document on stdin');
      await unmountContainerRoot(doc?.mount && doc.mount.target === target ? doc.mount : { target }, { storePath, remove: false });
      return;
    }

    const lower = args.lower !== undefined ? args.lower.split(':').filter((l) => l !== '') : lowerFromDocument(doc);
    const request = {
      lower,
      unpackedLower: args.lower === undefined ? lower : [],
      image: doc?.image?.digest,
      upper: args.upper,
      work: args.work,
      target: args.target,
      readOnly: args['read-only'],
      driver: args.driver as DriverChoice,
      name: args.name,
      storePath,
      warn: (m: string) => ctx.log.warn(m),
    };
    if (args.explain) return ctx.explain((await import('../lib/cli/explain.js')).explainMount({ action: 'mount', request, rootless: isRootless() }));
    const mount = await mountContainerRoot(request);
    ctx.log.debug(`${mount.driver}${mount.mountedIn === 'container' ? ' (mounted inside the container\'s namespaces by ns-enter)' : ''} at ${mount.target}: ${mount.options ?? ''}`);
    ctx.emit(withSection(doc, 'mount', mount));
  },
});

/** img-unpack's rootfs: one flat dir, or one dir per layer lowest first (lowerdir= wants top first). */
function lowerFromDocument(doc: PipeDocument | undefined): string[] {
  const rootfs = doc?.rootfs;
  if (!rootfs) throw new UsageError('no lower dirs: give --lower L3:L2:L1, or pipe a document from img-unpack');
  if (rootfs.mode === 'layers') {
    if (!rootfs.layers?.length) throw new UsageError('input.rootfs: mode layers without layers');
    return [...rootfs.layers].reverse();
  }
  if (!rootfs.path) throw new UsageError('input.rootfs: mode flat without a path');
  return [rootfs.path];
}

if (isMainModule(import.meta.url)) main(ovlMount);
