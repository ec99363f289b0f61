/**
 * podman as an oracle, on a private root: its own containers.conf (runc, cgroupfs, no default
 * ulimits, a file events log), registries.conf, --root and --runroot under a temp dir, never the
 * machine's. Images come from an OCI layout (podman pull oci:DIR:TAG); a config is what
 * `podman create` then `podman init` write to the container's userdata/config.json.
 */
import { mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RuntimeConfig } from '../../lib/run/runtime-spec.js';
import { exec, mustExec, type ExecResult } from './exec.js';

export interface PodmanOracle {
  /** The image id of what was pulled. */
  image: string;
  /** The config.json podman writes for `podman create FLAGS IMAGE ARGS`. */
  config(flags: string[], args: string[]): Promise<RuntimeConfig>;
  /** Runs podman with this root, conf and storage (`podman ARGS`), without failing on its exit status. */
  run(args: string[], options?: { timeoutMs?: number }): Promise<ExecResult>;
  /** The podman command line of run(), for a shell (runOnPty). */
  commandLine: string[];
  /** Removes every container made here; the dir itself is the caller's. */
  cleanup(): Promise<void>;
}

/** Debian's default_sysctls (its /usr/share/containers/containers.conf), which a CONTAINERS_CONF of our own would drop. */
const CONTAINERS_CONF = `[containers]
default_sysctls = ["net.ipv4.ping_group_range=0 0"]
default_ulimits = []
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
`;

/** How podman is called on a private root under `dir` (its own containers.conf, registries.conf, --root, --runroot, vfs). */
export async function privatePodmanInvocation(dir: string): Promise<{ base: string[]; env: Record<string, string> }> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'containers.conf'), CONTAINERS_CONF);
  await writeFile(join(dir, 'registries.conf'), 'unqualified-search-registries = []\n');
  const env = { CONTAINERS_CONF: join(dir, 'containers.conf'), CONTAINERS_REGISTRIES_CONF: join(dir, 'registries.conf') };
  return { base: ['--root', join(dir, 'root'), '--runroot', join(dir, 'runroot'), '--storage-driver', 'vfs'], env };
}

/** podman on a private root under `dir`: a runner of its commands. */
export async function privatePodman(dir: string): Promise<(args: string[]) => Promise<string>> {
  const { base, env } = await privatePodmanInvocation(dir);
  return (args: string[]) => mustExec('podman', [...base, ...args], { env, timeoutMs: 120_000 });
}

export async function podmanOracle(dir: string, layout: string, tag: string): Promise<PodmanOracle> {
  const { base, env } = await privatePodmanInvocation(dir);
  const podman = (args: string[]) => mustExec('podman', [...base, ...args], { env, timeoutMs: 120_000 });
  const root = join(dir, 'root');
  // podman names the image after the layout's path, which must be lower case: pull through a lower-case link.
  const link = join(tmpdir(), `cp-podman-layout-${process.pid}`);
  await rm(link, { force: true });
  await symlink(layout, link);
  const pulled = await podman(['pull', '-q', `oci:${link}:${tag}`]).finally(() => rm(link, { force: true }));
  const image = pulled.trim().split('\n').pop() as string;
  return {
    image,
    async config(flags, args) {
      const id = (await podman(['create', ...flags, image, ...args])).trim();
      await podman(['init', id]);
      try {
        return JSON.parse(await readFile(join(root, 'vfs-containers', id, 'userdata', 'config.json'), 'utf8')) as RuntimeConfig;
      } finally {
        await podman(['rm', '-f', id]);
      }
    },
    run: (args, options = {}) => exec('podman', [...base, ...args], { env, timeoutMs: options.timeoutMs ?? 120_000 }),
    commandLine: ['env', `CONTAINERS_CONF=${env.CONTAINERS_CONF}`, `CONTAINERS_REGISTRIES_CONF=${env.CONTAINERS_REGISTRIES_CONF}`, 'podman', ...base],
    async cleanup() {
      await podman(['rm', '-af']).catch(() => undefined);
    },
  };
}
