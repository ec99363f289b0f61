#!/usr/bin/env node
/** img-store: the store's images listed, tagged, removed, and its garbage collected (like podman images, tag, rmi, image prune). */
import { defineCommand, isMainModule, main, withStore } from '../lib/cli/command.js';
import { UsageError } from '../lib/core/errors.js';
import { resolveStorePath } from '../lib/core/paths.js';
import { formatBytes } from '../lib/core/progress.js';
import { OciLayout } from '../lib/image/store/oci-layout.js';
import { formatImageTable, listImages, removeImages, tagImage } from '../lib/image/store/images.js';

const SUBCOMMANDS = ['ls', 'tag', 'rm', 'gc'] as const;
type Subcommand = (typeof SUBCOMMANDS)[number];
const ARITY: Record<Subcommand, [min: number, max: number, what: string]> = { ls: [0, 0, ''], tag: [2, 2, 'SOURCE NEW-NAME'], rm: [1, Infinity, 'NAME|ID...'], gc: [0, 0, ''] };

export const imgStore = defineCommand({
  name: 'img-store',
  purpose: 'Manage the store: ls lists its images (name, short id, created, size), tag gives an image another name, rm removes names (an id that several names share, or an image a container uses, only with --force), gc removes what nothing names: blobs, cached layer dirs and flat trees, dead pulls\' staging dirs, dead containers\' dirs. Safe while other commands use the store.',
  usage: '$0 ls [--format table|json]\n$0 tag SOURCE NEW-NAME\n$0 rm [--force] NAME|ID...\n$0 gc [--format table|json]',
  examples: [
    ['$0 ls', 'the images, as podman images shows them'],
    ['$0 tag 127.0.0.1:5000/lab/busybox:latest lab/mine:1', 'a second name (localhost/lab/mine:1)'],
    ['$0 rm localhost/lab/mine:1 && $0 gc', 'remove a name, then free what no name keeps'],
  ],
  options: (y) =>
    withStore(y)
      .option('format', { choices: ['table', 'json'] as const, default: 'table' as const, describe: 'ls and gc: a table for people, or JSON' })
      .option('force', { alias: 'f', type: 'boolean', default: false, describe: 'rm: remove every name of an image given by its id, and an image a container still uses' }),
  async run(args, ctx) {
    const [subcommand, ...names] = args._.map(String);
    if (!SUBCOMMANDS.includes(subcommand as Subcommand)) throw new UsageError(subcommand === undefined ? `missing a subcommand: ${SUBCOMMANDS.join(', ')}` : `unknown subcommand ${JSON.stringify(subcommand)}: use ${SUBCOMMANDS.join(', ')}`);
    const [min, max, what] = ARITY[subcommand as Subcommand];
    if (names.length < min || names.length > max) throw new UsageError(`${subcommand} takes ${what || 'no arguments'}, got ${names.length === 0 ? 'none' : names.map((n) => JSON.stringify(n)).join(' ')}`);
    const store = resolveStorePath(args.store, ctx.io.env);
    if (args.explain) return ctx.explain((await import('../lib/cli/explain-store.js')).explainStore(store, subcommand as string, names));
    const layout = await OciLayout.open(store);
    const out = (text: string): void => void ctx.io.stdout.write(text);
    switch (subcommand as Subcommand) {
      case 'ls': {
        const rows = await listImages(layout);
        return out(args.format === 'json' ? `${JSON.stringify(rows)}\n` : formatImageTable(rows));
      }
      case 'tag':
        return ctx.log.info(`${names[0]} is also ${await tagImage(layout, names[0] as string, names[1] as string)}`);
      case 'rm': {
        const { imageUsers } = await import('../lib/runtime/image-users.js');
        const removal = await removeImages(layout, names, { force: args.force, users: () => imageUsers(layout) });
        return out([...removal.untagged.map((n) => `Untagged: ${n}`), ...removal.deleted.map((d) => `Deleted: ${d}`)].join('\n') + '\n');
      }
      case 'gc': {
        const { collectGarbage } = await import('../lib/image/store/gc.js');
        const { containersAndMounts } = await import('../lib/mount/store-users.js');
        const { cachedTrees } = await import('../lib/layer/store-trees.js');
        const report = await collectGarbage(layout, [containersAndMounts(layout), cachedTrees(layout)]);
        if (args.format === 'json') return out(`${JSON.stringify(report)}\n`);
        return out(`removed ${report.blobs.length} blobs (${formatBytes(report.freedBytes)}), ${report.removed.length} trees and container dirs, ${report.staging.length} staging dirs of dead pulls\n${report.removed.map((p) => `${p}\n`).join('')}`);
      }
    }
  },
});

if (isMainModule(import.meta.url)) main(imgStore);
