#!/usr/bin/env node
/** oci-spec: write an OCI runtime config.json (like `runc spec`, or the one podman builds from an image and run flags). */
import { resolve } from 'node:path';
import { defineCommand, isMainModule, main } from '../lib/cli/command.js';
import { withSection } from '../lib/cli/document.js';
import { UsageError } from '../lib/core/errors.js';
import { resolveStorePath } from '../lib/core/paths.js';
import { hasRunFlags, parseRunFlags } from '../lib/run/runflags.js';
import { RUN_FLAGS_SHORT_FLAGS, withRunFlags } from '../lib/cli/run-flags.js';
import { formatConfig, readRuntimeConfig, validateRuntimeConfig } from '../lib/run/spec.js';
import { configForRequest, writeBundleConfig } from '../lib/run/bundle.js';

export const ociSpec = defineCommand({
  name: 'oci-spec',
  purpose:
    'Write an OCI runtime config.json. Alone it prints exactly what `runc spec` writes; after img-unpack or ovl-mount it builds the config from the image config (Entrypoint + Cmd, Env, WorkingDir, User, Labels, ExposedPorts, StopSignal; image Volumes become tmpfs mounts) and podman-style run flags, writes DIR/config.json and passes the document on. Every config is validated before it is written.',
  usage: '$0 [--rootless] [--bundle DIR] [RUN FLAGS] [-- CMD ARGS...]\n$0 --validate FILE',
  examples: [
    ['$0 > config.json', 'the config `runc spec` writes'],
    ['$0 --rootless', 'the config `runc spec --rootless` writes'],
    ['img-fetch docker://127.0.0.1:5000/lab/busybox:latest --tls-verify=false | img-unpack | $0 --bundle ./box -e GREETING=hi --tmpfs /scratch -- sh -c "id; env"', 'a bundle from the image; then: runc run -b ./box box'],
    ['img-fetch docker://127.0.0.1:5000/lab/busybox:latest --tls-verify=false | img-unpack --layers | ovl-mount | $0 --bundle ./box --read-only -v "$PWD/data:/data:ro"', 'the root is the merged overlay'],
    ['$0 --validate ./box/config.json', 'check any config.json; errors name the JSON path'],
  ],
  claimsShortFlags: RUN_FLAGS_SHORT_FLAGS,
  options: (y) =>
    withRunFlags(
      y
        .option('bundle', { type: 'string', alias: 'b', requiresArg: true, describe: 'Write DIR/config.json (root.path: the piped rootfs or merged overlay, else DIR/rootfs) and emit the document with a bundle section' })
        .option('rootless', { type: 'boolean', default: false, describe: 'A config for an unprivileged user, as `runc spec --rootless`: a user namespace maps you to root' })
        .option('validate', { type: 'string', requiresArg: true, describe: 'Check FILE against the runtime config schema and exit (0: valid; 2: the first problem, by JSON path)' }),
    )
      // ns-enter's --init and --rm have no place in a config.json: refused here, so not offered in --help.
      .hide('init')
      .hide('rm'),
  async run(args, ctx) {
    const positional = args._.map(String);
    if (positional.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positional[0])}`, { hint: 'put the command after --, e.g. -- sh -c "id"' });
    const flags = parseRunFlags(args, ctx.io.env);
    const command = (args['--'] ?? []).map(String);
    if (args.validate !== undefined) {
      if (args.bundle !== undefined || args.rootless || hasRunFlags(flags) || command.length > 0) throw new UsageError('--validate FILE takes no other flags or command');
      if (args.explain) return ctx.explain([{ comment: "the OCI's own validator (opencontainers/runtime-tools) does the same check", command: `oci-runtime-tool validate --path "$(dirname ${args.validate})"` }]);
      readRuntimeConfig(args.validate);
      ctx.log.info(`${args.validate}: valid`);
      return;
    }
    if (flags.rm) throw new UsageError('--rm is for ns-enter: a config.json has no place for it');
    const bundle = args.bundle === undefined ? undefined : resolve(args.bundle);
    const document = await ctx.document();
    if (document && !bundle) throw new UsageError('a piped document needs --bundle DIR', { hint: 'the config goes to DIR/config.json and the document goes on' });
    // A user's rootless bundle from an image maps the user's subordinate ids too (lib/userns.ts), as podman does.
    const idMappings = args.rootless && document && !args.explain && (process.geteuid?.() ?? 0) !== 0
      ? await import('../lib/run/container.js').then((m) => m.rootlessBundleMappings(document, m.pipedStore(undefined, document) ?? resolveStorePath(undefined, ctx.io.env), (w) => ctx.log.warn(w)))
      : undefined;
    const { config, rootfs, notice, bare } = configForRequest({ document, bundle, flags, rootless: args.rootless, args: command, cwd: process.cwd(), idMappings });
    if (args.explain) return ctx.explain((await import('../lib/cli/explain.js')).explainSpec(config, { bundle, rootless: args.rootless }));
    if (notice) ctx.log.warn(notice);
    if (!bundle) {
      validateRuntimeConfig(config, 'config.json (generated)');
      // runc's exact bytes (no final newline), plus one on a terminal so the prompt starts on its own line.
      ctx.io.stdout.write(formatConfig(config) + ((ctx.io.stdout as { isTTY?: boolean }).isTTY ? '\n' : ''));
      return;
    }
    const configPath = await writeBundleConfig(bundle, config, { etcFiles: !bare });
    ctx.log.debug(`wrote ${configPath}`);
    ctx.emit(withSection(document, 'bundle', { path: bundle, config: configPath, root: resolve(bundle, rootfs), rootless: args.rootless }));
  },
});

if (isMainModule(import.meta.url)) main(ociSpec);
