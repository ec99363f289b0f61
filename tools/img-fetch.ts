#!/usr/bin/env node
/** img-fetch: pull an image into the content-addressed store (like `skopeo copy`, `crane pull`). */
import { defineCommand, isMainModule, main, withProgress, withRegistryOptions, withStore, withTlsVerify } from '../lib/cli/command.js';
import { parseCredsFlag } from '../lib/image/transport/auth.js';
import { withSection } from '../lib/cli/document.js';
import { commandDeadline } from '../lib/core/deadline.js';
import { UsageError } from '../lib/core/errors.js';
import { fetchImage, parseFetchSource } from '../lib/image/fetch.js';
import { parsePlatform } from '../lib/image/manifest.js';
import { resolveStorePath } from '../lib/core/paths.js';
import { createProgress } from '../lib/core/progress.js';
import { planPull } from '../lib/image/transport/registry-pull.js';

export const imgFetch = defineCommand({
  name: 'img-fetch',
  purpose: 'Pull an image (manifest, config, layers) from a registry, an OCI layout or a docker save archive into a local content-addressed store, verifying every blob.',
  usage: '$0 [options] SOURCE\n\nSOURCE: docker://HOST/REPO[:TAG|@DIGEST], oci:LAYOUTDIR[:NAME], docker-archive:FILE.tar[:TAG], tarball:FILE (a root filesystem tar, plain, gzip or zstd: a one-layer image, as docker import), or a bare reference like busybox',
  examples: [
    ['$0 docker://127.0.0.1:5000/lab/busybox:latest --tls-verify=false', 'pull from the lab registry into the default store'],
    ['$0 oci:/tmp/layout:latest --store ./store', 'copy an image from an OCI layout written by skopeo or umoci'],
    ['$0 docker://127.0.0.1:5000/lab/busybox:latest --tls-verify=false --dir ./busybox', "write skopeo's dir: layout, as in the tutorial"],
  ],
  options: (y) =>
    withRegistryOptions(withProgress(withTlsVerify(withStore(y))), 'pull')
      .option('dir', { type: 'string', requiresArg: true, describe: "Write skopeo's dir: layout to DIR instead of the store" })
      .option('name', { type: 'string', requiresArg: true, describe: 'The name the image gets in the store (default: its full reference)' })
      .option('change', { type: 'string', array: true, requiresArg: true, describe: 'tarball: only: a Dockerfile instruction for the config, as docker import --change: CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE, VOLUME, STOPSIGNAL (repeatable)' })
      .option('platform', { type: 'string', requiresArg: true, describe: 'OS/ARCH[/VARIANT] to choose from a multi-platform image (default: the host)' })
      .option('jobs', { type: 'number', default: 6, describe: 'Blobs downloaded at once' }),
  async run(args, ctx) {
    const positional = args._.map(String);
    if (positional.length !== 1) throw new UsageError(positional.length === 0 ? 'missing SOURCE (e.g. docker://127.0.0.1:5000/lab/busybox:latest)' : `one SOURCE only, got ${positional.length}`);
    const typed = positional[0] as string;
    const source = parseFetchSource(typed);
    const store = resolveStorePath(args.store, ctx.io.env);
    const registries = { certDir: args['cert-dir'], registriesConf: args['registries-conf'], tlsVerify: args['tls-verify'] };
    const plan = source.transport === 'docker' ? await planPull(source.reference, { ...registries, typed: typed.startsWith('docker://') ? undefined : typed, env: ctx.io.env, warn: (m) => ctx.log.warn(m) }) : undefined;
    if (args.explain) return ctx.explain((await import('../lib/cli/explain.js')).explainFetch(source, { store, dir: args.dir, plan, ...registries }));
    const doc = await ctx.document({ inputFromFlags: true });
    const progress = createProgress(args.progress, ctx.io.stderr, args.quiet);
    try {
      const image = await fetchImage(source, {
        store,
        dir: args.dir,
        name: args.name,
        changes: (args.change ?? []).map(String),
        tlsVerify: args['tls-verify'] ?? true,
        plan,
        credentials: args.creds ? parseCredsFlag(args.creds) : undefined,
        platform: args.platform ? parsePlatform(args.platform) : undefined,
        concurrency: args.jobs,
        retries: args.retries,
        signal: commandDeadline(args.timeout),
        env: ctx.io.env,
        progress,
        warn: (m) => ctx.log.warn(m),
        debug: (m) => ctx.log.debug(m),
      });
      ctx.emit(withSection(doc, 'image', image));
    } finally {
      progress.finish();
    }
  },
});

if (isMainModule(import.meta.url)) main(imgFetch);
