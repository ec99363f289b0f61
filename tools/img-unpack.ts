#!/usr/bin/env node
/** img-unpack: apply an image's layers into a root filesystem (like `umoci unpack`, or `tar xf` of each layer). */
import { defineCommand, isMainModule, main, withProgress, withStore } from '../lib/cli/command.js';
import { withSection } from '../lib/cli/document.js';
import { UsageError } from '../lib/core/errors.js';
import { parsePlatform } from '../lib/image/manifest.js';
import { resolveStorePath } from '../lib/core/paths.js';
import { createProgress } from '../lib/core/progress.js';
import { readStoredImage, unpackImage } from '../lib/layer/unpack.js';

export const imgUnpack = defineCommand({
  name: 'img-unpack',
  purpose: "Apply an image's layers, in order, into a root filesystem: one flat directory, or one directory per layer (cached in the store) for a multi-lowerdir overlay. Each layer is checked against the config's diff_ids; nothing is written outside the destination.",
  usage: '$0 [options]\n$0 --store STORE --image REF --dest ROOTFS',
  examples: [
    ['img-fetch docker://127.0.0.1:5000/lab/busybox:latest --tls-verify=false | $0 --dest ./rootfs', 'flatten the image into ./rootfs (like umoci unpack)'],
    ['img-fetch docker://127.0.0.1:5000/lab/busybox:latest --tls-verify=false | $0 --layers', "one directory per layer in the store's cache, for ovl-mount"],
    ['$0 --store ./store --image lab/busybox:latest --dest ./rootfs', 'standalone: an image already in the store'],
  ],
  options: (y) =>
    withProgress(withStore(y))
      .option('dest', { type: 'string', requiresArg: true, describe: 'Flat: the root filesystem to create (missing or empty; default: under the store). --layers: the dir that gets one dir per layer (default: the layer cache in the store)' })
      .option('layers', { type: 'boolean', default: false, describe: 'One directory per layer, whiteouts in overlayfs form, lowest first in the output' })
      .option('image', { type: 'string', requiresArg: true, describe: 'Unpack this image from the store (its name in index.json) instead of the piped one' })
      .option('platform', { type: 'string', requiresArg: true, describe: 'With --image: OS/ARCH[/VARIANT] to choose from a multi-platform image (default: the host)' }),
  async run(args, ctx) {
    const positional = args._.map(String);
    if (positional.length) throw new UsageError(`unexpected argument ${JSON.stringify(positional[0])} (the image comes from stdin or --image)`);
    const doc = await ctx.document({ inputFromFlags: args.image !== undefined });
    const image = args.image !== undefined ? await readStoredImage(resolveStorePath(args.store, ctx.io.env), args.image, args.platform ? parsePlatform(args.platform) : undefined) : doc?.image;
    if (!image) throw new UsageError('no image: pipe in img-fetch output, or give --image REF (and --store)');
    if (args.explain) return ctx.explain((await import('../lib/cli/explain.js')).explainUnpack(image, { dest: args.dest, layers: args.layers }));
    const progress = createProgress(args.progress, ctx.io.stderr, args.quiet);
    try {
      const rootfs = await unpackImage(image, {
        dest: args.dest,
        layers: args.layers,
        progress,
        warn: (m) => ctx.log.warn(m),
        debug: (m) => ctx.log.debug(m),
      });
      for (const entry of rootfs.skipped ?? []) ctx.log.debug(`skipped ${entry.path}: ${entry.reason}`);
      if (rootfs.skipped?.length) ctx.log.warn(`${rootfs.skipped.length} entries skipped (listed in rootfs.skipped), e.g. ${rootfs.skipped[0]?.path}: ${rootfs.skipped[0]?.reason}`);
      ctx.emit(withSection(image === doc?.image ? doc : { ...doc, documentVersion: 1, image }, 'rootfs', rootfs));
    } finally {
      progress.finish();
    }
  },
});

if (isMainModule(import.meta.url)) main(imgUnpack);
