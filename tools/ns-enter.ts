#!/usr/bin/env node
/** ns-enter: run a command in new namespaces on a root filesystem (like unshare + pivot_root, runc run, podman run). */
import type { Argv } from 'yargs';
import { defineCommand, isMainModule, main, withCommonOptions, withStore, type CommonArgs } from '../lib/cli/command.js';
import { openTerminal, pipedStore, prepareRun, runPrepared } from '../lib/run/container.js';
import { UsageError } from '../lib/core/errors.js';
import { planExecution } from '../lib/run/bwrap-plan.js';
import { stagingDirFor } from '../lib/run/namespaces.js';
import { resolveStorePath } from '../lib/core/paths.js';
import { parseRunFlags } from '../lib/run/runflags.js';
import { commandWithoutDashDash, RUN_FLAGS_SHORT_FLAGS, strayCommand, withRunFlags } from '../lib/cli/run-flags.js';

const options = (y: Argv<CommonArgs>) =>
  withRunFlags(
    withStore(y)
      .option('rootfs', { type: 'string', requiresArg: true, describe: 'Run on this root filesystem (no document is read: stdin is the container\'s)' })
      .option('bundle', { type: 'string', alias: 'b', requiresArg: true, describe: 'Run DIR/config.json as it is (written by oci-spec or runc spec)' })
      .option('name', { type: 'string', requiresArg: true, describe: "The container's name, for its cgroup (default: the piped container's id)" }),
  );

export const nsEnter = defineCommand({
  name: 'ns-enter',
  purpose:
    "Run a command as PID 1 in new mount, uts, ipc, pid and network namespaces on the piped root (ovl-mount's merged dir or img-unpack's rootfs), --rootfs DIR, or an OCI bundle: /proc, /sys read-only, a private /dev, root switched with pivot_root, podman's default capabilities, no_new_privs, cgroup limits. Exits with the command's status (128+N after signal N). The executor is bubblewrap.",
  usage: '$0 [RUN FLAGS] [-- CMD ARGS...]\n$0 --rootfs DIR [RUN FLAGS] [-- CMD ARGS...]\n$0 --bundle DIR',
  examples: [
    ['img-fetch docker://127.0.0.1:5000/lab/busybox:latest --tls-verify=false | img-unpack | ovl-mount | $0 -- cat /etc/os-release', "the tutorial's container"],
    ['img-fetch docker://127.0.0.1:5000/lab/busybox:latest --tls-verify=false | img-unpack --layers | ovl-mount | $0 --rm -- sh -c "echo $$"', 'PID 1; the container is removed afterwards'],
    ['$0 --rootfs ./rootfs --net none -u lab -v "$PWD:/src:ro" -- sh', 'standalone'],
    ['$0 --bundle ./box', 'run a bundle from oci-spec or runc spec'],
  ],
  claimsShortFlags: RUN_FLAGS_SHORT_FLAGS,
  explainRefusedLine: (argv) => strayCommand((y) => options(withCommonOptions(y, RUN_FLAGS_SHORT_FLAGS)), argv),
  options,
  async run(args, ctx) {
    const positional = args._.map(String);
    if (positional.length > 0) throw commandWithoutDashDash(positional[0] as string);
    if (args.rootfs !== undefined && args.bundle !== undefined) throw new UsageError('--rootfs and --bundle do not go together');
    const given = parseRunFlags(args, ctx.io.env);
    // With --rootfs or --bundle stdin belongs to the container, so no document is read from it.
    const document = args.rootfs === undefined && args.bundle === undefined ? await ctx.document() : undefined;
    // A document piped in on stdin used it up: the command reads the terminal, if there is one.
    const terminal = document !== undefined && args.input === undefined && !args.explain ? openTerminal() : undefined;
    const stdinIsTerminal = terminal !== undefined || ctx.io.stdin.isTTY === true;
    // Interactive use gets a new pty as with -t (job control, Ctrl-C for the shell's child); not
    // when stdout is a file or pipe, whose bytes a pty would change (\n to \r\n). A bundle says for itself.
    const tty = args.tty ?? (args.bundle === undefined && stdinIsTerminal && (ctx.io.stdout as { isTTY?: boolean }).isTTY === true);
    const flags = { ...given, tty };
    const prepared = prepareRun({ document, bundle: args.bundle, rootfs: args.rootfs, flags, args: (args['--'] ?? []).map(String), name: args.name });
    // Loaded only here: explain.js reaches the image code, which the hot path must not load.
    const { explainRun } = args.explain ? await import('../lib/cli/explain.js') : { explainRun: undefined };
    if (explainRun) return ctx.explain(explainRun(prepared.config, planExecution(prepared.config, { bundleDir: prepared.bundleDir, init: flags.init, stdinIsTerminal: true, overlayDir: prepared.mount?.optionsDir, stagingDir: stagingDirFor(process.pid) }).argv, { id: prepared.id, init: flags.init }));
    const status = await runPrepared(prepared, { flags, storePath: pipedStore(args.store, document) ?? resolveStorePath(args.store, ctx.io.env), stdinIsTerminal, stdin: terminal, debug: (m) => ctx.log.debug(m), warn: (m) => ctx.log.warn(m) });
    for (const message of status.messages) ctx.io.stderr.write(`ns-enter: ${message}\n`);
    if (status.oomKilled) ctx.log.warn('the container went over its memory limit and was killed (OOM)');
    return status.code;
  },
});

if (isMainModule(import.meta.url)) main(nsEnter);
