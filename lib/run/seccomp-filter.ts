/**
 * A config's linux.seccomp as the classic BPF program bubblewrap loads with `--seccomp FD`,
 * compiled by libseccomp (python3-seccomp, the library runc links) with runc's rules: a rule
 * whose syscall this libseccomp does not know is skipped, one with the default action is
 * skipped, an ALLOW libseccomp says meets an existing rule (EEXIST) is dropped, conditions on the same argument become separate rules (an OR). Compiling costs
 * ~100 ms, so a program is made once per profile and architecture and kept in the cache
 * ($XDG_CACHE_HOME/container-parts/seccomp/<sha256 of the profile and arch>.bpf).
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { arch } from 'node:os';
import { join } from 'node:path';
import { UnsupportedError } from '../core/errors.js';
import { systemPython } from '../core/host.js';
import { cacheHome } from '../core/paths.js';
import type { LinuxSeccomp } from './runtime-spec.js';

/** The actions runc carries out without a listener (SCMP_ACT_NOTIFY needs a seccomp agent). */
const ACTIONS = ['SCMP_ACT_KILL', 'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_KILL_THREAD', 'SCMP_ACT_TRAP', 'SCMP_ACT_ERRNO', 'SCMP_ACT_TRACE', 'SCMP_ACT_ALLOW', 'SCMP_ACT_LOG'];
const OPERATORS = ['SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', 'SCMP_CMP_EQ', 'SCMP_CMP_GE', 'SCMP_CMP_GT', 'SCMP_CMP_MASKED_EQ'];

/** stdin: the linux.seccomp JSON; argv[1]: where to write the program. */
const COMPILER = String.raw`
import json, sys, seccomp
spec = json.load(sys.stdin)
def action(name, errno):
    if name == 'SCMP_ACT_ERRNO': return seccomp.ERRNO(1 if errno is None else errno)
    if name == 'SCMP_ACT_TRACE': return seccomp.TRACE(1 if errno is None else errno)
    return {'SCMP_ACT_KILL': seccomp.KILL, 'SCMP_ACT_KILL_THREAD': seccomp.KILL, 'SCMP_ACT_KILL_PROCESS': seccomp.KILL_PROCESS,
            'SCMP_ACT_TRAP': seccomp.TRAP, 'SCMP_ACT_ALLOW': seccomp.ALLOW, 'SCMP_ACT_LOG': seccomp.LOG}[name]
default = action(spec['defaultAction'], spec.get('defaultErrnoRet'))
f = seccomp.SyscallFilter(default)
for name in spec.get('architectures') or []:
    a = getattr(seccomp.Arch, name[len('SCMP_ARCH_'):])
    if not f.exist_arch(a): f.add_arch(a)
ops = {'SCMP_CMP_NE': seccomp.NE, 'SCMP_CMP_LT': seccomp.LT, 'SCMP_CMP_LE': seccomp.LE, 'SCMP_CMP_EQ': seccomp.EQ,
       'SCMP_CMP_GE': seccomp.GE, 'SCMP_CMP_GT': seccomp.GT, 'SCMP_CMP_MASKED_EQ': seccomp.MASKED_EQ}
def arg(a):
    return seccomp.Arg(a['index'], ops[a['op']], a['value'], a.get('valueTwo', 0))
for rule in spec.get('syscalls') or []:
    act = action(rule['action'], rule.get('errnoRet'))
    if rule['action'] == spec['defaultAction'] and rule.get('errnoRet') == spec.get('defaultErrnoRet'): continue
    args = rule.get('args') or []
    indexes = [a['index'] for a in args]
    groups = [[a] for a in args] if len(set(indexes)) < len(indexes) else [args]
    for name in rule['names']:
        # runc: a name the native architecture does not know is skipped.
        if seccomp.resolve_syscall(seccomp.Arch.NATIVE, name) < 0: continue
        for group in groups:
            try: f.add_rule(act, name, *[arg(a) for a in group])
            except RuntimeError as e:
                # EEXIST: the rule meets one already made (x86's socketcall turns socket's conditions
                # into one tree); only an ALLOW may be dropped: the filter can then allow less, never more.
                if 'errno = -17' not in str(e) or rule['action'] != 'SCMP_ACT_ALLOW': raise
with open(sys.argv[1], 'wb') as out: f.export_bpf(out)
`;

/** Refuses what the compiler cannot carry out, naming the field. */
export function checkSeccomp(seccomp: LinuxSeccomp): void {
  if (typeof seccomp !== 'object' || seccomp === null || Array.isArray(seccomp)) throw new UnsupportedError('linux.seccomp: expected an object');
  const known = ['defaultAction', 'defaultErrnoRet', 'architectures', 'flags', 'listenerPath', 'listenerMetadata', 'syscalls'];
  for (const key of Object.keys(seccomp)) if (!known.includes(key)) throw new UnsupportedError(`linux.seccomp.${key}: not supported by ns-enter`);
  if (seccomp.listenerPath) throw new UnsupportedError('linux.seccomp.listenerPath: a seccomp agent (SCMP_ACT_NOTIFY) is not supported by ns-enter');
  if (seccomp.flags?.length) throw new UnsupportedError(`linux.seccomp.flags: ${seccomp.flags.join(', ')}: not supported by ns-enter (bubblewrap loads the filter without flags)`);
  if (!ACTIONS.includes(seccomp.defaultAction)) throw new UnsupportedError(`linux.seccomp.defaultAction: ${JSON.stringify(seccomp.defaultAction)} is not supported`);
  for (const [i, arch] of (seccomp.architectures ?? []).entries()) {
    if (!/^SCMP_ARCH_[A-Z0-9_]+$/.test(arch)) throw new UnsupportedError(`linux.seccomp.architectures[${i}]: ${JSON.stringify(arch)} is not a libseccomp architecture`);
  }
  for (const [i, rule] of (seccomp.syscalls ?? []).entries()) {
    if (!ACTIONS.includes(rule.action)) throw new UnsupportedError(`linux.seccomp.syscalls[${i}].action: ${JSON.stringify(rule.action)} is not supported`);
    if (!Array.isArray(rule.names) || rule.names.some((n) => !/^[a-z0-9_]+$/.test(n))) throw new UnsupportedError(`linux.seccomp.syscalls[${i}].names: expected syscall names`);
    for (const [j, a] of (rule.args ?? []).entries()) {
      if (!OPERATORS.includes(a.op) || !Number.isInteger(a.index) || a.index < 0 || a.index > 5) throw new UnsupportedError(`linux.seccomp.syscalls[${i}].args[${j}]: expected an index 0-5 and an SCMP_CMP_ operator`);
    }
  }
}

/** Where the compiled program of this profile is, compiling it the first time (synchronously: ~100 ms, once). */
export function compiledSeccompFilter(seccomp: LinuxSeccomp, cacheDir: string = join(cacheHome(), 'container-parts', 'seccomp')): string {
  checkSeccomp(seccomp);
  const json = JSON.stringify(seccomp);
  const key = createHash('sha256').update(`${arch()}\n${json}`).digest('hex');
  const path = join(cacheDir, `${key}.bpf`);
  // A program is whole instructions of 8 bytes; anything else (a file cut short by hand) is made again.
  const size = statSync(path, { throwIfNoEntry: false })?.size;
  if (size !== undefined && size > 0 && size % 8 === 0) return path;
  mkdirSync(cacheDir, { recursive: true, mode: 0o700 });
  // A temp file renamed into place: concurrent first runs each compile, and readers never see half a program.
  const temp = join(cacheDir, `.${key}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    execFileSync(systemPython(), ['-I', '-c', COMPILER, temp], { input: json, stdio: ['pipe', 'ignore', 'pipe'], timeout: 30_000 });
    renameSync(temp, path);
  } catch (err) {
    rmSync(temp, { force: true });
    const stderr = String((err as { stderr?: Buffer }).stderr ?? '').trim().split('\n').pop();
    const missing = stderr?.includes("No module named 'seccomp'");
    throw new UnsupportedError(`linux.seccomp: cannot compile the filter${stderr ? `: ${stderr}` : ''}`, { hint: missing ? 'apt-get install python3-seccomp' : undefined, cause: err });
  }
  return path;
}
