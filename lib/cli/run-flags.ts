/**
 * The podman-run-style flags as one yargs builder that oci-spec and ns-enter both compose;
 * run/runflags.ts parses what it gives into the typed, checked `RunFlags`.
 */
import type { Argv } from 'yargs';
import { UsageError } from '../core/errors.js';
import { recordOptions } from './argv.js';

/** The common short flags the run flags take over: podman's -v is --volume, so --verbose keeps only its long form. */
export const RUN_FLAGS_SHORT_FLAGS = ['v'] as const;

/** Adds the run flags to a parser (set `claimsShortFlags: RUN_FLAGS_SHORT_FLAGS` in the command); compose it like the builders in cli/command.ts. */
export function withRunFlags<T>(y: Argv<T>) {
  // array + nargs 1: a repeatable flag that takes exactly one value, so `-e A=1 sh` keeps `sh`.
  const repeatable = { type: 'string', array: true, nargs: 1, requiresArg: true } as const;
  return y
    .option('env', { ...repeatable, alias: 'e', describe: 'Set NAME=VALUE in the container environment (NAME alone: take the value from this environment)', group: 'Run flags:' })
    .option('workdir', { type: 'string', alias: 'w', requiresArg: true, describe: 'Working directory inside the container (default: the image WorkingDir, else /)', group: 'Run flags:' })
    .option('user', { type: 'string', alias: 'u', requiresArg: true, describe: "USER[:GROUP], names or ids, resolved from the rootfs's /etc/passwd and /etc/group (default: the image User, else root)", group: 'Run flags:' })
    .option('hostname', { type: 'string', requiresArg: true, describe: 'Container host name', group: 'Run flags:' })
    .option('volume', { ...repeatable, alias: 'v', describe: 'Bind mount SRC:DST[:ro|rw] (SRC an absolute or ./relative host path)', group: 'Run flags:' })
    .option('tmpfs', { ...repeatable, describe: 'Mount a tmpfs at DST[:OPTIONS] (default options rw,noexec,nosuid,nodev,mode=1777)', group: 'Run flags:' })
    .option('network', { type: 'string', alias: 'net', requiresArg: true, choices: ['none', 'host'], describe: 'none: a private network namespace with only loopback; host: share the host network', group: 'Run flags:' })
    .option('memory', { type: 'string', alias: 'm', requiresArg: true, describe: 'Memory limit, e.g. 512m, 1g (units b, k, m, g)', group: 'Run flags:' })
    .option('pids-limit', { type: 'number', requiresArg: true, describe: 'Maximum number of processes (-1: unlimited)', group: 'Run flags:' })
    .option('cpus', { type: 'number', requiresArg: true, describe: 'CPU limit in CPUs, e.g. 1.5 (a CFS quota over a 100ms period)', group: 'Run flags:' })
    .option('cap-add', { ...repeatable, describe: 'Add a capability (NET_ADMIN or CAP_NET_ADMIN; comma-separated lists; ALL)', group: 'Run flags:' })
    .option('cap-drop', { ...repeatable, describe: 'Drop a capability (same forms as --cap-add)', group: 'Run flags:' })
    .option('read-only', { type: 'boolean', default: false, describe: 'Mount the root filesystem read-only', group: 'Run flags:' })
    .option('tty', { type: 'boolean', alias: 't', describe: 'Give the process a new terminal (ns-enter: the default when stdin and stdout are terminals; --tty=false: pass them through)', group: 'Run flags:' })
    .option('interactive', { type: 'boolean', alias: 'i', describe: "Keep stdin open (it always is: podman's -i, accepted)", group: 'Run flags:' })
    .option('entrypoint', { type: 'string', describe: 'Replace the image Entrypoint: a command, or a JSON array like \'["/bin/sh","-c"]\'; "" clears it', group: 'Run flags:' })
    .option('annotation', { ...repeatable, describe: 'Add an annotation KEY=VALUE to the config', group: 'Run flags:' })
    .option('init', { type: 'boolean', default: false, describe: 'Run an init as PID 1 that forwards signals and reaps zombies (ns-enter)', group: 'Run flags:' })
    .option('security-opt', { ...repeatable, describe: "seccomp=unconfined (no filter), seccomp=FILE (a profile in containers-common's format; default: /usr/share/containers/seccomp.json), no-new-privileges, label=disable", group: 'Run flags:' })
    .option('privileged', { type: 'boolean', describe: "podman's --privileged: every capability, the host's devices, no seccomp filter, no masked or read-only paths", group: 'Run flags:' })
    .option('env-file', { ...repeatable, describe: 'Read NAME=VALUE lines (or NAME: from this environment) from FILE, before -e', group: 'Run flags:' })
    .option('ulimit', { ...repeatable, describe: 'Set a resource limit NAME=SOFT[:HARD] (nofile, nproc, core, ...; -1: unlimited)', group: 'Run flags:' })
    .option('shm-size', { type: 'string', requiresArg: true, describe: 'Size of /dev/shm, e.g. 64m (default: runc\'s 64m)', group: 'Run flags:' })
    .option('group-add', { ...repeatable, describe: 'Add a supplementary group (a numeric gid)', group: 'Run flags:' })
    .option('stop-signal', { type: 'string', requiresArg: true, describe: 'The signal that stops the container (the config\'s org.opencontainers.image.stopSignal annotation)', group: 'Run flags:' })
    .option('pid', { type: 'string', requiresArg: true, choices: ['host', 'private'], describe: "host: share the host's PID namespace", group: 'Run flags:' })
    .option('ipc', { type: 'string', requiresArg: true, choices: ['host', 'private'], describe: "host: share the host's IPC namespace", group: 'Run flags:' })
    .option('uts', { type: 'string', requiresArg: true, choices: ['host', 'private'], describe: "host: share the host's UTS namespace (its host name)", group: 'Run flags:' })
    .option('label', { ...repeatable, hidden: true })
    .option('device', { ...repeatable, hidden: true })
    .option('sysctl', { ...repeatable, describe: 'Set a namespaced sysctl KEY=VALUE in the container (default: net.ipv4.ping_group_range=0 0 with a network namespace, as podman)', group: 'Run flags:' })
    .option('rm', { type: 'boolean', default: false, describe: "Remove the container's state when it exits (ns-enter)", group: 'Run flags:' })
    // podman's flags with no counterpart here: each refused with what to do instead (runflags.ts).
    .option('detach', { type: 'boolean', alias: 'd', hidden: true })
    .option('restart', { type: 'string', hidden: true })
    .option('publish', { ...repeatable, alias: 'p', hidden: true });
}

const DASH_DASH_HINT = 'put the command after --, e.g. -- sh -c "id"';

/** A command given without `--` before it (`ns-enter ls` or `ns-enter ls -la`): one error, one hint, for both. */
export function commandWithoutDashDash(word: string): UsageError {
  return new UsageError(`unexpected argument ${JSON.stringify(word)}`, { hint: DASH_DASH_HINT });
}

/**
 * When yargs refuses a line, the first word that is no flag's value: `ns-enter ls -la` is a
 * command without `--`, not two unknown flags -l and -a. Reads the command's own definitions.
 */
export function strayCommand(build: (y: Argv) => unknown, argv: string[]): UsageError | undefined {
  const options = recordOptions(build);
  if (!options || argv.includes('--')) return undefined;
  const takesValue = new Set<string>();
  for (const [name, definition] of options) {
    if (definition.type === 'boolean') continue;
    for (const flag of [name, ...[definition.alias ?? []].flat()]) takesValue.add(flag);
  }
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i] as string;
    if (!token.startsWith('-')) return commandWithoutDashDash(token);
    const flag = token.replace(/^--?/, '');
    if (!flag.includes('=') && takesValue.has(flag)) i++;
  }
  return undefined;
}

