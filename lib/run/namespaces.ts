/**
 * Running a container: one OCI runtime config (config.json) executed by bubblewrap. The
 * config is checked (config-checks) and planned as one command line (bwrap-plan: mounts in
 * mount-plan and mount-prelude, credentials in privileges), run in a staging dir of its own,
 * and supervised (supervise): --info-fd says the container's pid so it can be placed in its
 * cgroup before --block-fd lets it run, and --json-status-fd says how it ended.
 *
 * Everything in a config is either carried out or refused with an error naming the field.
 */
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { cgroupLimits, planExecution, type PlanOptions } from './bwrap-plan.js';
import { STAGED_ETC, withEtcFiles } from './etc-files.js';
import { rootOverlayOf } from './mount-plan.js';
import { deviceMakingCapability } from './cgroup-devices.js';
import { cgroupViews, createCgroup, planCgroup, type Cgroup, type CgroupPlan } from './cgroups.js';
import { watchInterruptions, type Interruption } from './interruption.js';
import { helperPath } from './privileges.js';
import { claimName, makeStagingDir, removeStagingDir, sweepStagingDirs } from './run-record.js';
import type { RuntimeConfig } from './runtime-spec.js';
import { spawnAndWait, type ExitStatus } from './supervise.js';

export type { ExitStatus } from './supervise.js';

export interface RunOptions extends PlanOptions {
  /** The container's name: its cgroup, and what two live runs may not share. */
  id: string;
  /** The container's stdin, when it is not ours (an fd of the terminal, see openTerminal). */
  stdin?: number;
  /** Called with the container's first process (host pid) once it exists. */
  onStart?: (pid: number) => void;
  debug?: (message: string) => void;
  /** A config built from an image (not a bundle's, run as it is): podman's /etc files, from the staging dir. */
  etcFiles?: boolean;
  /** Holds the set-up container before it runs (supervise.ts `hold`); give `startGate: true` with it. */
  hold?: (pid: number) => Promise<void>;
  /** With process.terminal: the pty's master goes to this unix socket (runc's --console-socket). */
  consoleSocket?: string;
}

/**
 * Runs the config to completion: claims the name, makes the cgroup and a private staging dir,
 * spawns bwrap, lets the container run once it is in its cgroup, forwards signals to it, and
 * returns its exit status. Whatever way it ends (a signal during start-up included), the
 * cgroup, the staging dir and the name's record are removed; a run killed with -9 is swept by
 * the next one (run-record.ts).
 */
export async function runContainer(config: RuntimeConfig, options: RunOptions): Promise<ExitStatus> {
  const interruption = watchInterruptions();
  try {
    sweepStagingDirs();
    const claim = await claimName(options.id);
    try {
      interruption.check('before the container was made');
      const cgroupPlan = planContainerCgroup(config, options.id);
      claim.update(cgroupPlan?.removable ?? []);
      const stagingDir = makeStagingDir();
      try {
        return await runStaged(config, { ...options, stagingDir }, { cgroupPlan, interruption });
      } finally {
        removeStagingDir(stagingDir);
      }
    } finally {
      claim.release();
    }
  } finally {
    interruption.dispose();
  }
}

/** The explain output's staging dir: the real one is made per run (mkdtemp), its owner in its name. */
export function stagingDirFor(pid: number): string {
  return join(tmpdir(), `ns-enter-${pid}.START-XXXXXX`);
}

/**
 * A cgroup as root whenever the config has something for one to carry out: limits, device
 * rules (runc's default denies all), or a cgroup namespace to root at it. Rootless, only for
 * limits, which then need a delegated tree (createCgroup says so).
 */
function planContainerCgroup(config: RuntimeConfig, id: string): CgroupPlan | undefined {
  const resources = config.linux?.resources ?? {};
  const limits = cgroupLimits(resources);
  const root = (process.geteuid?.() ?? 0) === 0;
  const wanted = limits !== undefined || (root && (!!resources.devices?.length || (config.linux?.namespaces ?? []).some((ns) => ns.type === 'cgroup')));
  if (!wanted) return undefined;
  // One level below the caller's cgroup, as runc's <id>: no parent shared with other containers to make and remove.
  return planCgroup({ path: config.linux?.cgroupsPath ?? `container-parts-${id}`, resources: root ? resources : { ...limits }, deviceCapability: deviceMakingCapability(config) });
}

async function runStaged(config: RuntimeConfig, options: RunOptions, context: { cgroupPlan?: CgroupPlan; interruption: Interruption }): Promise<ExitStatus> {
  const { cgroupPlan, interruption } = context;
  const readOnlyRoot = config.root?.readonly && !rootOverlayOf(config.mounts ?? []) ? resolve(options.bundleDir ?? process.cwd(), config.root.path) : undefined;
  const run = options.etcFiles ? withEtcFiles(config, join(options.stagingDir as string, STAGED_ETC), { rootOnHost: readOnlyRoot }) : config;
  const plan = planExecution(run, { ...options, cgroupViews: cgroupPlan ? cgroupViews(cgroupPlan) : undefined });
  for (let i = 0; i < plan.staged; i++) mkdirSync(join(options.stagingDir as string, String(i)), { mode: 0o700 });
  options.debug?.(`exec: ${plan.argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ')}`);
  let cgroup: Cgroup | undefined;
  const path = helperPath();
  const fd = openSync(path, 'r');
  const seccompFd = plan.seccompFilter === undefined ? undefined : openSync(plan.seccompFilter, 'r');
  try {
    if (cgroupPlan) {
      cgroup = createCgroup(cgroupPlan);
      options.debug?.(`cgroup: ${cgroup.paths.join(' ')}`);
    }
    interruption.check('before the container started');
    return await spawnAndWait({ plan, cgroup, stdin: options.stdin, onStart: options.onStart, hold: options.hold, consoleSocket: options.consoleSocket, helper: { path, fd }, seccompFd, interrupted: () => interruption.signal });
  } finally {
    closeSync(fd);
    if (seccompFd !== undefined) closeSync(seccompFd);
    await cgroup?.remove();
  }
}
