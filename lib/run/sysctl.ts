/**
 * linux.sysctl: only the namespaced ones, as runc checks (libcontainer/configs/validate): the
 * IPC ones (kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*) with an ipc namespace, net.*
 * with a network namespace, kernel.hostname and kernel.domainname with a uts namespace. They
 * are set while the container waits on bwrap's block fd: native/ns-enter-sysctl.c joins the
 * container's namespaces (not its mount namespace: the host's /proc/sys shows the joiner's
 * namespaces) and writes /proc/sys, before the command runs and before anything of the
 * container's could.
 */
import { execFileSync } from 'node:child_process';
import { UnsupportedError } from '../core/errors.js';
import { nativeProgram } from './privileges.js';

const IPC_SYSCTLS = ['kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall', 'kernel.shmmax', 'kernel.shmmni', 'kernel.shm_rmid_forced'];

/** The namespace a sysctl belongs to, or undefined when it is the host's (not namespaced). */
export function sysctlNamespace(key: string): 'ipc' | 'network' | 'uts' | undefined {
  if (IPC_SYSCTLS.includes(key) || key.startsWith('fs.mqueue.')) return 'ipc';
  if (key.startsWith('net.')) return 'network';
  if (key === 'kernel.hostname' || key === 'kernel.domainname') return 'uts';
  return undefined;
}

/** The sysctls as `[/proc/sys path, value]`, each checked against the config's namespaces. */
export function checkSysctls(sysctl: Record<string, string>, namespaces: Set<string>): Array<[string, string]> {
  return Object.entries(sysctl).map(([key, value]) => {
    if (!/^[a-z0-9_]+(\.[A-Za-z0-9_-]+)+$/.test(key)) throw new UnsupportedError(`linux.sysctl: ${JSON.stringify(key)} is not a sysctl name`);
    const namespace = sysctlNamespace(key);
    if (!namespace) throw new UnsupportedError(`linux.sysctl: ${key} is not namespaced: it would change the host (runc refuses it too)`);
    if (!namespaces.has(namespace)) throw new UnsupportedError(`linux.sysctl: ${key} needs a ${namespace} namespace (it would change the host's)`);
    return [`/proc/sys/${key.replace(/\./g, '/')}`, value];
  });
}

/** Writes the sysctls in the namespaces of the container's first process (`pid`); `user`: join its user namespace too. */
export function applySysctls(pid: number, entries: Array<[string, string]>, user: boolean): void {
  try {
    execFileSync(nativeProgram('ns-enter-sysctl'), [String(pid), ...(user ? ['--user'] : []), '--', ...entries.flat()], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000 });
  } catch (err) {
    const said = String((err as { stderr?: Buffer }).stderr ?? '').trim().split('\n').pop();
    throw new UnsupportedError(`linux.sysctl: cannot set ${entries.map(([p]) => p.slice('/proc/sys/'.length).replace(/\//g, '.')).join(', ')}${said ? `: ${said}` : ''}`, { cause: err });
  }
}
