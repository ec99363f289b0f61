#!/usr/bin/env node
/** img-commit: a container's changes (an overlay upper dir) become a new image in the store (like buildah commit, podman commit, umoci repack). */
import { defineCommand, isMainModule, main, withStore } from '../lib/cli/command.js';
import { DOCUMENT_VERSION, type PipeDocument } from '../lib/cli/document.js';
import { UsageError } from '../lib/core/errors.js';
import { resolveStorePath } from '../lib/core/paths.js';
import type { StoredImage } from '../lib/image/model.js';
import { join, resolve } from 'node:path';

export const imgCommit = defineCommand({
  name: 'img-commit',
  purpose: "Commit a container's changes: its overlay upper dir becomes one new layer (whiteouts and opaque dirs in OCI form) on top of its image, with a new config and manifest, written to the store as one transaction and named. The output document's image section is the new image.",
  usage: '$0 [options]\n$0 --store STORE --image REF --upper DIR --name NAME',
  examples: [
    ['$0 --input c.json --name localhost/lab/debian-motd:1 --change \'CMD ["cat","/etc/motd"]\'', 'commit what the container of c.json (ovl-mount output) changed'],
    ['$0 --store ./store --image lab/busybox:latest --upper ./upper --name localhost/mine:1', 'standalone: an upper dir onto an image in the store'],
    ['SOURCE_DATE_EPOCH=0 $0 --input c.json | img-unpack --dest ./rootfs', 'a reproducible commit, unpacked again'],
  ],
  options: (y) =>
    withStore(y)
      .option('upper', { type: 'string', requiresArg: true, describe: 'The upper dir to commit (default: the piped mount section\'s)' })
      .option('image', { type: 'string', requiresArg: true, describe: 'With --upper: the image (its name in the store) the upper dir holds changes to' })
      .option('name', { type: 'string', requiresArg: true, describe: 'The new image\'s name in the store (default: localhost/CONTAINER:latest)' })
      .option('change', { type: 'string', array: true, requiresArg: true, describe: 'A Dockerfile instruction for the config: CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE, VOLUME, STOPSIGNAL (repeatable)' })
      .option('message', { alias: 'm', type: 'string', requiresArg: true, describe: 'The history entry\'s comment' })
      .option('author', { type: 'string', requiresArg: true, describe: 'The config\'s and the history entry\'s author' })
      .option('compression', { choices: ['gzip', 'zstd', 'none'] as const, default: 'gzip' as const, describe: 'How the layer is stored (the diff_id is of the uncompressed tar)' })
      .option('format', { choices: ['oci', 'docker'] as const, default: 'oci' as const, describe: 'The manifest: OCI, or Docker schema2' })
      .option('timestamp', { type: 'number', requiresArg: true, describe: 'Seconds since the epoch: clamps every mtime and sets created (default: $SOURCE_DATE_EPOCH), for reproducible commits' }),
  async run(args, ctx) {
    const positional = args._.map(String);
    if (positional.length) throw new UsageError(`unexpected argument ${JSON.stringify(positional[0])} (the container comes from stdin or --upper)`);
    const doc = args.upper !== undefined && args.image !== undefined ? undefined : await ctx.document();
    const { upper, lower, base, container } = await commitInput(doc, args, ctx.io.env);
    const name = args.name ?? (container ? `localhost/${container}:latest` : undefined);
    if (name === undefined) throw new UsageError('--upper without a container needs --name NAME');
    const changes = (args.change ?? []).map(String);
    const timestamp = timestampOf(args.timestamp, ctx.io.env.SOURCE_DATE_EPOCH);
    if (args.explain) return ctx.explain((await import('../lib/cli/explain-commit.js')).explainCommit({ upper, base, name, compression: args.compression, changes, timestamp }));
    const { checkUpperImage } = await import('../lib/mount/container.js');
    await checkUpperImage(upper, base);
    const { commitUpper } = await import('../lib/layer/commit.js');
    const meta = { createdBy: 'img-commit', message: args.message, author: args.author, changes };
    const result = await commitUpper({ upper, lower, base, name, compression: args.compression, format: args.format, timestamp, meta });
    for (const path of result.skipped) ctx.log.warn(`skipped ${path}: a socket cannot be in a layer`);
    ctx.log.info(`${name}: ${result.image.digest} (layer ${result.layer.digest}, ${result.layer.size} bytes)`);
    const out: PipeDocument = { documentVersion: DOCUMENT_VERSION, image: result.image, commit: { layer: result.layer, skipped: result.skipped } };
    ctx.emit(out);
  },
});

interface CommitInput {
  upper: string;
  /** The overlay's lower dirs (the document's, or the container's record beside the upper dir). */
  lower?: string[];
  base: StoredImage;
  container?: string;
}

async function commitInput(doc: PipeDocument | undefined, args: { upper?: string; image?: string; store?: string }, env: NodeJS.ProcessEnv): Promise<CommitInput> {
  if (args.image !== undefined) {
    if (args.upper === undefined) throw new UsageError('--image goes with --upper DIR');
    const { readStoredImage } = await import('../lib/layer/unpack.js');
    const { readContainerRecord } = await import('../lib/mount/container.js');
    const lower = readContainerRecord(join(resolve(args.upper), '..', 'container.json'))?.lower;
    return { upper: args.upper, lower, base: await readStoredImage(resolveStorePath(args.store, env), args.image) };
  }
  if (!doc) throw new UsageError('no container: pipe in ovl-mount output (img-fetch … | img-unpack --layers | ovl-mount), or give --upper DIR --image REF');
  if (!doc.image) throw new UsageError('input: no image section: the document must come from img-fetch | img-unpack | ovl-mount');
  if (!doc.mount) throw new UsageError('input: no mount section: run ovl-mount on it first (img-unpack --layers | ovl-mount), then commit');
  const upper = args.upper ?? doc.mount.upper;
  if (upper === undefined) throw new UsageError(`input: the mount at ${doc.mount.target} is read-only: it has no changes to commit`);
  return { upper, lower: doc.mount.lower, base: doc.image, container: doc.mount.container?.id };
}

function timestampOf(flag: number | undefined, sourceDateEpoch: string | undefined): number | undefined {
  if (flag !== undefined) {
    if (!Number.isInteger(flag) || flag < 0) throw new UsageError(`--timestamp: give seconds since the epoch, a whole number (not ${flag})`);
    return flag;
  }
  if (sourceDateEpoch === undefined || sourceDateEpoch === '') return undefined;
  if (!/^\d+$/.test(sourceDateEpoch)) throw new UsageError(`SOURCE_DATE_EPOCH=${sourceDateEpoch}: seconds since the epoch, a whole number`);
  return Number(sourceDateEpoch);
}

if (isMainModule(import.meta.url)) main(imgCommit);
