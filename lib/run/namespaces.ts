/**
 * Running a container: one OCI runtime config (config.json) executed by bubblewrap. The
 * config is checked (config-checks) and planned as one command line (bwrap-plan: mounts in
 * mount-plan and mount-prelude, credentials in privileges), run in a staging dir of its own,
 * and supervised (supervise): --info-fd says the container's pid so it can be placed in its
 * cgroup before --block-fd lets it run, and --json-status-fd says how it ended.
 *
 * Everything in a config is either carried out or refused with an error naming the field.
 */
import { mkdirSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cgroupLimits, planExecution, type ExecutionPlan, type PlanOptions } from './bwrap-plan.js';
import type { Cgroup } from './cgroups.js';
import type { RuntimeConfig } from './runtime-spec.js';
import { spawnAndWait, type ExitStatus } from './supervise.js';

export type { ExitStatus } from './supervise.js';

export interface RunOptions extends PlanOptions {
  /** A name for the container's cgroup (default: a new one per run). */
  id: string;
  /** The container's stdin, when it is not ours (an fd of the terminal, see openTerminal). */
  stdin?: number;
  /** Called with the container's first process (host pid) once it exists. */
  onStart?: (pid: number) => void;
  debug?: (message: string) => void;
}

/**
 * Runs the config to completion: spawns bwrap, places its first process in a cgroup with the
 * config's limits while it waits, lets it run, forwards SIGINT/SIGTERM/SIGHUP/SIGQUIT/SIGUSR1/
 * SIGUSR2 to it, and returns its exit status. The cgroup is removed afterwards.
 */
export async function runContainer(config: RuntimeConfig, options: RunOptions): Promise<ExitStatus> {
  const stagingDir = options.stagingDir ?? stagingDirFor(process.pid);
  const plan = planExecution(config, { ...options, stagingDir });
  if (plan.staged > 0) {
    mkdirSync(stagingDir, { mode: 0o700 });
    for (let i = 0; i < plan.staged; i++) mkdirSync(join(stagingDir, String(i)));
  }
  try {
    return await runPlanned(plan, options);
  } finally {
    if (plan.staged > 0) removeStagingDir(stagingDir, plan.staged);
  }
}

/** The staging dir of one ns-enter process (it runs one container). */
export function stagingDirFor(pid: number): string {
  return join(tmpdir(), `ns-enter-staging-${pid}`);
}

/**
 * The staged mounts lived in the container's private mount namespace and went with it; their
 * mount points are empty dirs here. rmdir, not a recursive remove: it can never delete content.
 */
function removeStagingDir(dir: string, count: number): void {
  for (const path of [...Array.from({ length: count }, (_, i) => join(dir, String(i))), dir]) {
    try {
      rmdirSync(path);
    } catch {
      // not made (the run failed first), or not empty: left for the user to see
    }
  }
}

async function runPlanned(plan: ExecutionPlan, options: RunOptions): Promise<ExitStatus> {
  options.debug?.(`exec: ${plan.argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ')}`);
  const limits = cgroupLimits(plan.resources);
  let cgroup: Cgroup | undefined;
  if (limits) {
    const { createCgroup } = await import('./cgroups.js');
    cgroup = await createCgroup(plan.cgroupsPath ?? `container-parts/${options.id}`, limits);
  }
  try {
    return await spawnAndWait({ plan, cgroup, stdin: options.stdin, onStart: options.onStart });
  } finally {
    await cgroup?.remove();
  }
}
