#!/usr/bin/env node
/** img-push: copy an image of the store to a registry, an OCI layout, a docker archive or a dir: layout (like `skopeo copy`, `podman push`). */
import { defineCommand, isMainModule, main, withProgress, withRegistryOptions, withStore, withTlsVerify } from '../lib/cli/command.js';
import { withSection } from '../lib/cli/document.js';
import { commandDeadline } from '../lib/core/deadline.js';
import { UsageError } from '../lib/core/errors.js';
import { resolveStorePath } from '../lib/core/paths.js';
import { createProgress } from '../lib/core/progress.js';
import { formatDestination, openStoreImage, parsePushDestination, pushImage } from '../lib/image/push.js';
import { parseCredsFlag } from '../lib/image/transport/auth.js';
import { planPull } from '../lib/image/transport/registry-pull.js';

export const imgPush = defineCommand({
  name: 'img-push',
  purpose: 'Push an image of the store (the piped one, or --image) to a registry, an OCI layout, a docker archive or a dir: layout. Blobs the destination has are skipped, blobs of another repository of the same registry are mounted, an upload a killed push began is resumed; the manifest (the tag) is written last.',
  usage: '$0 [options] DESTINATION\n\nDESTINATION: docker://HOST/REPO[:TAG|@DIGEST], oci:DIR[:TAG], docker-archive:FILE[:REF], dir:DIR',
  examples: [
    ['img-fetch docker://127.0.0.1:5000/lab/debian:latest --tls-verify=false | $0 docker://127.0.0.1:5000/lab/copy:1 --tls-verify=false', 'push the piped image to another repository (its blobs are mounted)'],
    ['$0 --image 127.0.0.1:5000/lab/busybox:latest docker-archive:busybox.tar', 'write an archive for podman load'],
    ['$0 --image 3f2a9c docker://127.0.0.1:5000/lab/busybox:v2 --tls-verify=false', 'an image by its short id'],
  ],
  options: (y) =>
    withRegistryOptions(withProgress(withTlsVerify(withStore(y))), 'push')
      .option('image', { type: 'string', requiresArg: true, describe: 'Push this image of the store (its name, full digest or a unique short id) instead of the piped one' })
      .option('jobs', { type: 'number', default: 6, describe: 'Blobs uploaded at once' })
      .option('chunk-size', { type: 'number', requiresArg: true, describe: 'A blob larger than this many bytes goes up in PATCH chunks of this size (at least what the registry asks for), each recorded so a killed push resumes (default 32 MiB); a smaller one in one PUT' }),
  async run(args, ctx) {
    const positional = args._.map(String);
    if (positional.length !== 1) throw new UsageError(positional.length === 0 ? 'missing DESTINATION (e.g. docker://127.0.0.1:5000/lab/busybox:v2)' : `one DESTINATION only, got ${positional.length}`);
    const destination = parsePushDestination(positional[0] as string);
    const doc = await ctx.document({ inputFromFlags: args.image !== undefined });
    const store = args.image !== undefined ? resolveStorePath(args.store, ctx.io.env) : doc?.image?.store;
    const wanted = args.image ?? doc?.image?.digest;
    if (!store || !wanted) throw new UsageError('no image: pipe in img-fetch (or img-commit) output, or give --image REF (and --store)');
    if (args.image === undefined && doc?.image?.layout !== 'oci') throw new UsageError(`the piped image is in a dir: layout (${store}), not in the store: img-fetch it into the store first`);
    const registries = { certDir: args['cert-dir'], registriesConf: args['registries-conf'], tlsVerify: args['tls-verify'], env: ctx.io.env, warn: (m: string) => ctx.log.warn(m) };
    // Both read files (registries.conf, certs.d; index.json, the manifest): at once.
    const [plan, image] = await Promise.all([destination.transport === 'docker' ? planPull(destination.reference, registries) : undefined, openStoreImage(store, wanted)]);
    if (args.explain) {
      const name = image.named.annotations?.['org.opencontainers.image.ref.name'] ?? wanted;
      return ctx.explain((await import('../lib/cli/explain.js')).explainPush({ store, name, digest: image.rawManifest.digest }, formatDestination(destination), { tlsVerify: args['tls-verify'], certDir: args['cert-dir'] }));
    }
    const progress = createProgress(args.progress, ctx.io.stderr, args.quiet);
    try {
      const pushed = await pushImage(image, destination, {
        store,
        plan,
        credentials: args.creds ? parseCredsFlag(args.creds) : undefined,
        concurrency: args.jobs,
        retries: args.retries,
        chunkBytes: chunkSize(args['chunk-size']),
        signal: commandDeadline(args.timeout),
        env: ctx.io.env,
        progress,
        debug: (m) => ctx.log.debug(m),
      });
      const counts = (['sent', 'skipped', 'mounted', 'resumed'] as const).map((k) => `${pushed.blobs[k].length} ${k}`).join(', ');
      ctx.log.info(`pushed ${pushed.digest} to ${pushed.destination} (blobs: ${counts})`);
      ctx.emit(withSection(doc, 'push', pushed));
    } finally {
      progress.finish();
    }
  },
});

function chunkSize(value: number | undefined): number | undefined {
  if (value !== undefined && (!Number.isSafeInteger(value) || value < 1)) throw new UsageError(`--chunk-size: want a number of bytes, 1 or more, got ${String(value)}`);
  return value;
}

if (isMainModule(import.meta.url)) main(imgPush);
