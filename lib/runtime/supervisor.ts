/**
 * The supervisor of one container: the process that holds bwrap's fds for the container's
 * whole life (there is no daemon beyond it). It runs the container on ns-enter's executor
 * (lib/run/namespaces.ts) with bwrap's block fd held: once the namespaces, mounts and cgroup
 * are made it records the container `created` (state.json, the pid file), runs the prestart,
 * createRuntime and createContainer hooks, says so to `create` (which returns only then, or
 * reports the set-up error itself), and waits for `start` on its control socket; then the
 * startContainer hooks, the container runs, the poststart hooks. When the container ends its
 * exit status goes into state.json and the supervisor exits with it.
 *
 * `oci-runtime create` runs it detached (supervisor-main.ts); `oci-runtime run` in its own
 * process, started at once.
 */
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from '../core/atomic-write.js';
import { ContainerPartsError, describeError, UsageError } from '../core/errors.js';
import { currentHolder, processStartTime } from '../core/holder.js';
import { runContainer, type ExitStatus } from '../run/namespaces.js';
import type { OverlayMount } from '../mount/model.js';
import type { RuntimeConfig } from '../run/runtime-spec.js';
import type { ClaimRequest } from './claim.js';
import { serveControl } from './control.js';
import { runHooks } from './hooks.js';
import { RuntimeLog, type LogTarget } from './runtime-log.js';
import { configCopy, containerDir, ociState, readRecord, removeContainerDir, writeRecord, type ContainerRecord } from './state.js';

/** What create hands its supervisor (as JSON: the supervisor is another process). */
export interface SuperviseRequest {
  root: string;
  id: string;
  /** What to claim the container from, when the supervisor claims it (create.ts); else it is claimed already. */
  claim?: ClaimRequest;
  pidFile?: string;
  /**
   * What the pid file names: the container's first process (runc's), or under conmon (podman)
   * this supervisor: conmon waits for the pid it is given as its own child (it is a subreaper),
   * and the container is bwrap's child; the supervisor exits with the container's status.
   */
  pidFileNames?: 'container' | 'supervisor';
  /** --console-socket: where the pty's master of process.terminal goes. */
  consoleSocket?: string;
  log: LogTarget;
  /** false: run at once (oci-runtime run), no waiting for `start`. */
  waitForStart: boolean;
  /** ns-enter -d: a config built from an image (podman's /etc files), --init, a rootless overlay's option dir. */
  executor?: { etcFiles?: boolean; init?: boolean; overlayDir?: string };
  /** ns-enter -d --rm: the container's overlay, unmounted and its dirs removed when it ends. */
  unmountAfter?: { mount: OverlayMount; storePath: string };
}

/** What the supervisor tells create: the container exists (and waits), or why not. */
export type Report = { created: true; pid: number } | { created: false; error: string; exitCode: number };

/**
 * The config as the executor gets it: the hooks are run here, not by it. As runc 1.1 does,
 * kernel memory limits (deprecated; cgroup v2 has none) are not applied. And no_new_privs is
 * always set (bubblewrap sets it whatever the config says), so a config without it (podman's
 * default) runs with it, stricter than asked. The log says what was changed.
 */
function executorConfig(config: RuntimeConfig, log: RuntimeLog): RuntimeConfig {
  const { hooks: _hooks, ...rest } = config as RuntimeConfig & { hooks?: unknown };
  const memory = rest.linux?.resources?.memory;
  if (memory && (memory.kernel !== undefined || memory.kernelTCP !== undefined)) {
    log.warn('linux.resources.memory.kernel and kernelTCP are not applied (kernel memory limits are deprecated, as runc 1.1 ignores them)');
    const { kernel: _kernel, kernelTCP: _tcp, ...kept } = memory;
    rest.linux = { ...rest.linux, resources: { ...rest.linux?.resources, memory: kept } };
  }
  if (!rest.process || rest.process.noNewPrivileges === true) return rest;
  log.warn('process.noNewPrivileges is false: the container gets no_new_privs all the same (bubblewrap always sets it)');
  return { ...rest, process: { ...rest.process, noNewPrivileges: true } };
}

/**
 * Runs the container to its end and returns its exit status; `report` is called once, when
 * the container is created or when it cannot be (then its dir is removed: no state is left).
 */
export async function superviseContainer(request: SuperviseRequest, report: (report: Report) => void): Promise<ExitStatus> {
  const supervision = new Supervision(request, report);
  return supervision.run();
}

class Supervision {
  private readonly dir: string;
  private readonly config: RuntimeConfig;
  private readonly log: RuntimeLog;
  private record: ContainerRecord;
  private readonly claimedBy: ContainerRecord['holder'];
  private readonly lifecycle = new Lifecycle();
  private reported = false;

  constructor(private readonly request: SuperviseRequest, private readonly report: (report: Report) => void) {
    this.dir = containerDir(request.root, request.id);
    this.config = JSON.parse(readFileSync(configCopy(this.dir), 'utf8')) as RuntimeConfig;
    this.log = new RuntimeLog(request.log);
    const claimed = readRecord(request.root, request.id);
    this.claimedBy = claimed.holder;
    this.record = { ...claimed, holder: currentHolder() };
  }

  async run(): Promise<ExitStatus> {
    const { request } = this;
    // The holder is the claimer's: rewritten only when that was another process (ns-enter -d's create).
    if (this.record.holder.pid !== this.claimedBy.pid) await writeRecord(this.dir, this.record);
    const server = await serveControl(this.dir, async () => {
      await this.lifecycle.requestStart();
      await this.afterStart();
    });
    try {
      const status = await runContainer(executorConfig(this.config, this.log), { ...request.executor, id: request.id, bundleDir: this.record.bundle, stdinIsTerminal: request.consoleSocket !== undefined, consoleSocket: request.consoleSocket, startGate: true, hold: (pid) => this.hold(pid) });
      for (const message of status.messages) this.log.error(message);
      // Ended before it was set up (its command not found, say): the create's error.
      if (!this.reported) throw new ContainerPartsError(status.messages.join('; ') || `the container exited (status ${status.code}) before it was created`);
      // --rm's overlay goes first: once the state is gone, so is everything else.
      if (request.unmountAfter) await unmountAfter(request.unmountAfter, this.log);
      await this.update({ status: 'stopped', exitCode: status.code });
      return status;
    } catch (err) {
      if (request.unmountAfter) await unmountAfter(request.unmountAfter, this.log);
      if (!this.reported) {
        removeContainerDir(request.root, request.id);
        this.report({ created: false, error: describeError(err), exitCode: 1 });
      } else {
        await this.update({ status: 'stopped', exitCode: 255 }).catch(() => undefined);
      }
      this.lifecycle.fail(err);
      throw err;
    } finally {
      server.close();
    }
  }

  /** The container is set up and waits: created, the create hooks, the report; then `start` (unless run), startContainer. */
  private async hold(pid: number): Promise<void> {
    await this.update({ status: 'created', pid, pidStartTime: processStartTime(pid) });
    if (this.request.pidFile !== undefined) await writeFileAtomic(this.request.pidFile, String(this.request.pidFileNames === 'supervisor' ? process.pid : pid));
    for (const name of ['prestart', 'createRuntime', 'createContainer'] as const) await runHooks(this.config, name, ociState(this.record));
    this.reported = true;
    this.report({ created: true, pid });
    if (this.request.waitForStart) await this.lifecycle.started;
    await runHooks(this.config, 'startContainer', ociState(this.record));
    await this.update({ status: 'running' });
    // The hold's end lets the container run (supervise.ts writes to its start gate then): after that, it runs.
    setImmediate(() => this.lifecycle.markRunning());
    if (!this.request.waitForStart) void this.afterStart().catch((err: unknown) => this.log.error(describeError(err)));
  }

  /** poststart: after the command runs, before `start` returns; a failure stops the container (runtime.md, step 9). */
  private async afterStart(): Promise<void> {
    await this.lifecycle.running;
    try {
      await runHooks(this.config, 'poststart', ociState(this.record));
    } catch (err) {
      killQuietly(this.record.pid);
      throw err;
    }
  }

  /** A new record, written whole; a stopped one of ns-enter --rm is removed instead. */
  private async update(change: Partial<ContainerRecord>): Promise<void> {
    this.record = { ...this.record, ...change };
    if (this.record.status === 'stopped' && this.record.removeWhenStopped) removeContainerDir(this.request.root, this.request.id);
    else await writeRecord(this.dir, this.record);
  }
}

/** The created → running step, between the control socket's `start` and the hold. */
class Lifecycle {
  private startRequested = false;
  private release!: () => void;
  private failure: unknown;
  readonly started = new Promise<void>((resolve) => (this.release = resolve));
  private ran!: { resolve: () => void; reject: (err: unknown) => void };
  readonly running = new Promise<void>((resolve, reject) => (this.ran = { resolve, reject }));

  constructor() {
    this.running.catch(() => undefined);
  }

  /** `start`: once only, and only while created; resolves when the container runs. */
  requestStart(): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.startRequested) return Promise.reject(new UsageError('cannot start an already running container'));
    this.startRequested = true;
    this.release();
    return Promise.resolve();
  }

  fail(err: unknown): void {
    this.failure = err;
    this.ran.reject(err);
  }

  markRunning(): void {
    this.ran.resolve();
  }
}

/** ns-enter --rm: the container's overlay goes, and its dirs (lib/mount, loaded only for it). */
async function unmountAfter(what: NonNullable<SuperviseRequest['unmountAfter']>, log: RuntimeLog): Promise<void> {
  try {
    const { unmountContainerRoot } = await import('../mount/container.js');
    await unmountContainerRoot(what.mount, { storePath: what.storePath, remove: true });
  } catch (err) {
    log.error(describeError(err));
  }
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone already
  }
}
