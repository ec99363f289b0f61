#!/usr/bin/env node
/** ns-enter: run a command in new namespaces on a root filesystem (like unshare + pivot_root, runc run, podman run). */
import type { Argv } from 'yargs';
import { defineCommand, isMainModule, main, withCommonOptions, withStore, type CommonArgs, type RunContext } from '../lib/cli/command.js';
import { openTerminal, pipedStore, prepareRun, runPrepared } from '../lib/run/container.js';
import { UsageError } from '../lib/core/errors.js';
import { planExecution } from '../lib/run/bwrap-plan.js';
import { stagingDirFor } from '../lib/run/namespaces.js';
import { resolveStorePath } from '../lib/core/paths.js';
import { hasRunFlags, parseRunFlags, type RunFlags } from '../lib/run/runflags.js';
import { commandWithoutDashDash, RUN_FLAGS_SHORT_FLAGS, strayCommand, withRunFlags } from '../lib/cli/run-flags.js';

const options = (y: Argv<CommonArgs>) =>
  withRunFlags(
    withStore(y)
      .option('rootfs', { type: 'string', requiresArg: true, describe: 'Run on this root filesystem (no document is read: stdin is the container\'s)' })
      .option('bundle', { type: 'string', alias: 'b', requiresArg: true, describe: 'Run DIR/config.json as it is (written by oci-spec or runc spec)' })
      .option('name', { type: 'string', requiresArg: true, describe: "The container's name, for its cgroup (default: the piped container's id); with -d, what oci-runtime list, exec, kill and delete call it" })
      .option('join', { type: 'string', requiresArg: true, describe: 'Run CMD in the running container NAME (ns-enter -d, or oci-runtime), in all its namespaces and its cgroup, as nsenter -t PID -a and podman exec do; takes -e, -u, -w and -t' }),
  );

export const nsEnter = defineCommand({
  name: 'ns-enter',
  purpose:
    "Run a command as PID 1 in new mount, uts, ipc, pid and network namespaces on the piped root (ovl-mount's merged dir or img-unpack's rootfs), --rootfs DIR, or an OCI bundle: /proc, /sys read-only, a private /dev, root switched with pivot_root, podman's default capabilities, no_new_privs, cgroup limits. Exits with the command's status (128+N after signal N). The executor is bubblewrap.",
  usage: '$0 [RUN FLAGS] [-- CMD ARGS...]\n$0 --rootfs DIR [RUN FLAGS] [-- CMD ARGS...]\n$0 --bundle DIR\n$0 -d [--name NAME] [--rm] ...   (in the background: see oci-runtime list)\n$0 --join NAME [-e K=V] [-u USER] [-w DIR] [-t] -- CMD ARGS...',
  examples: [
    ['img-fetch docker://127.0.0.1:5000/lab/busybox:latest --tls-verify=false | img-unpack | ovl-mount | $0 -- cat /etc/os-release', "the tutorial's container"],
    ['img-fetch docker://127.0.0.1:5000/lab/busybox:latest --tls-verify=false | img-unpack --layers | ovl-mount | $0 --rm -- sh -c "echo $$"', 'PID 1; the container is removed afterwards'],
    ['$0 --rootfs ./rootfs --net none -u lab -v "$PWD:/src:ro" -- sh', 'standalone'],
    ['$0 --bundle ./box', 'run a bundle from oci-spec or runc spec'],
    ['img-fetch docker://127.0.0.1:5000/lab/busybox:latest --tls-verify=false | img-unpack --layers | ovl-mount | $0 -d --name web --rm -- sleep 300', 'in the background, as podman run -d; then: ns-enter --join web -- sh'],
  ],
  claimsShortFlags: RUN_FLAGS_SHORT_FLAGS,
  explainRefusedLine: (argv) => strayCommand((y) => options(withCommonOptions(y, RUN_FLAGS_SHORT_FLAGS)), argv),
  options,
  async run(args, ctx) {
    const positional = args._.map(String);
    if (positional.length > 0) throw commandWithoutDashDash(positional[0] as string);
    if (args.rootfs !== undefined && args.bundle !== undefined) throw new UsageError('--rootfs and --bundle do not go together');
    // -d is ours (a detached container oci-runtime finds); the rest of podman's run flags are read as before.
    const detach = args.detach === true;
    const given = parseRunFlags({ ...args, detach: false }, ctx.io.env);
    if (args.join !== undefined) return joinContainer(args.join, { flags: given, args: (args['--'] ?? []).map(String), ctx, detach });
    // With --rootfs or --bundle stdin belongs to the container, so no document is read from it.
    const document = args.rootfs === undefined && args.bundle === undefined ? await ctx.document() : undefined;
    // A document piped in on stdin used it up: the command reads the terminal, if there is one.
    const terminal = document !== undefined && args.input === undefined && !args.explain && !detach ? openTerminal() : undefined;
    const stdinIsTerminal = terminal !== undefined || ctx.io.stdin.isTTY === true;
    // Interactive use gets a new pty as with -t (job control, Ctrl-C for the shell's child); not
    // when stdout is a file or pipe, whose bytes a pty would change (\n to \r\n). A bundle says for itself.
    const tty = args.tty ?? (!detach && args.bundle === undefined && stdinIsTerminal && (ctx.io.stdout as { isTTY?: boolean }).isTTY === true);
    const flags = { ...given, tty };
    const prepared = prepareRun({ document, bundle: args.bundle, rootfs: args.rootfs, flags, args: (args['--'] ?? []).map(String), name: args.name });
    // Loaded only here: explain.js reaches the image code, which the hot path must not load.
    const { explainRun } = args.explain ? await import('../lib/cli/explain.js') : { explainRun: undefined };
    if (explainRun) return ctx.explain(explainRun(prepared.config, planExecution(prepared.config, { bundleDir: prepared.bundleDir, init: flags.init, stdinIsTerminal: true, overlayDir: prepared.mount?.optionsDir, stagingDir: stagingDirFor(process.pid) }).argv, { id: prepared.id, init: flags.init }));
    const storePath = pipedStore(args.store, document) ?? resolveStorePath(args.store, ctx.io.env);
    if (detach) {
      const { runDetached } = await import('../lib/runtime/detached.js');
      ctx.io.stdout.write(`${await runDetached(prepared, { flags, storePath, warn: (m) => ctx.log.warn(m) })}\n`);
      return 0;
    }
    const status = await runPrepared(prepared, { flags, storePath, stdinIsTerminal, stdin: terminal, debug: (m) => ctx.log.debug(m), warn: (m) => ctx.log.warn(m) });
    for (const message of status.messages) ctx.io.stderr.write(`ns-enter: ${message}\n`);
    if (status.oomKilled) ctx.log.warn('the container went over its memory limit and was killed (OOM)');
    return status.code;
  },
});

/** --join NAME: CMD in a running container, by oci-runtime's exec (loaded only for it). */
async function joinContainer(name: string, request: { flags: RunFlags; args: string[]; ctx: RunContext; detach: boolean }): Promise<number> {
  const { flags, args, ctx } = request;
  if (request.detach || hasRunFlags({ ...flags, env: [], user: undefined, workdir: undefined, tty: false })) throw new UsageError('--join NAME takes -e, -u, -w and -t only (the container is made already)');
  if (args.length === 0) throw new UsageError('--join NAME needs the command: ns-enter --join NAME -- CMD ARGS...');
  const { execInContainer } = await import('../lib/runtime/exec.js');
  const { runStateDir } = await import('../lib/run/run-record.js');
  const result = await execInContainer({ root: runStateDir(ctx.io.env), id: name, args, tty: flags.tty, env: flags.env, user: flags.user, cwd: flags.workdir, detach: false });
  for (const message of result.messages) ctx.io.stderr.write(`ns-enter: ${message}\n`);
  return result.code;
}

if (isMainModule(import.meta.url)) main(nsEnter);
