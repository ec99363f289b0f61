#!/usr/bin/env node
/** oci-runtime: an OCI runtime with runc's command line (create, start, state, kill, delete, run, exec, list, ps, spec) on ns-enter's executor. */
import { defineCommand, isMainModule, runCommand } from '../lib/cli/command.js';
import { normalizeRuntimeArgv, runRuntimeCommand, runtimeOptions, spawnEarlySupervisor, type RuntimeArgs } from '../lib/cli/oci-runtime.js';

export const ociRuntime = defineCommand({
  name: 'oci-runtime',
  purpose:
    "An OCI runtime with runc's command line, on ns-enter's executor (bubblewrap and ns-enter-exec): create sets the container up and holds it (a supervisor process of its own keeps it and collects its exit status), start runs it, state prints the runtime-spec state, kill signals it, delete removes it; run does create and start; exec runs another process in it; list and ps show them; spec writes runc's default config.json. State lives in --root (one dir per container). Every error is one line, exit 1.",
  usage: '$0 [--root DIR] [--log FILE [--log-format json]] COMMAND [FLAGS] ID [ARGS...]\n$0 create [--bundle DIR] [--pid-file FILE] ID\n$0 start|state|delete [--force]|ps ID\n$0 kill [--all] ID [SIGNAL]\n$0 run [-d] [--bundle DIR] ID\n$0 exec [-t] [-e K=V] [-u UID[:GID]] [--cwd DIR] [--process FILE] ID [CMD ARGS...]\n$0 list [--format json]\n$0 spec [--bundle DIR] [--rootless]',
  examples: [
    ['$0 create --bundle ./box web && $0 start web', 'create, then start'],
    ['$0 state web', "the runtime-spec state: status created, running or stopped, the pid, the bundle"],
    ['$0 exec -t web sh', 'a shell in the running container'],
    ['$0 kill web TERM && $0 delete web', 'stop it and remove it'],
    ['podman --runtime $(command -v oci-runtime) run --rm IMAGE CMD', 'as podman\'s runtime'],
  ],
  claimsShortFlags: ['v'],
  options: (y) => runtimeOptions(y),
  run: (args, ctx) => runRuntimeCommand(args as unknown as RuntimeArgs, ctx),
});

if (isMainModule(import.meta.url)) {
  spawnEarlySupervisor(process.argv.slice(2));
  runCommand(ociRuntime, normalizeRuntimeArgv(process.argv.slice(2))).then(
    (status) => {
      process.exitCode = status;
    },
    () => {
      process.exitCode = 1;
    },
  );
}
