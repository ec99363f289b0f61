/**
 * The seccomp profile a config built from an image gets: containers-common's default
 * (/usr/share/containers/seccomp.json, the one podman applies), or a FILE given with
 * `--security-opt seccomp=FILE`, turned into the config's linux.seccomp the way podman does
 * (containers/common pkg/seccomp): the native architecture with its sub-architectures, and only
 * the rules whose includes/excludes match the container's bounding capabilities and the arch.
 */
import { readFileSync } from 'node:fs';
import { arch } from 'node:os';
import { UsageError } from '../core/errors.js';
import type { LinuxSeccomp, SeccompRule } from './runtime-spec.js';

/** Where Debian's golang-github-containers-common puts the default profile (podman's). */
export const DEFAULT_SECCOMP_PROFILE = '/usr/share/containers/seccomp.json';

interface ProfileFilter {
  arches?: string[];
  caps?: string[];
  minKernel?: string;
}

interface ProfileSyscall extends SeccompRule {
  name?: string;
  includes?: ProfileFilter;
  excludes?: ProfileFilter;
}

/** containers-common's (Docker's) format: an archMap and rules with includes and excludes. */
interface Profile extends Omit<LinuxSeccomp, 'syscalls'> {
  defaultErrno?: string;
  archMap?: Array<{ architecture: string; subArchitectures?: string[] }>;
  syscalls?: ProfileSyscall[];
}

/** Go's GOARCH for node's arch, the names a profile's includes.arches use. */
const GO_ARCH: Record<string, string> = { x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', s390x: 's390x', ppc64: 'ppc64le', mips: 'mips', mipsel: 'mipsle', riscv64: 'riscv64' };
/** libseccomp's name of each GOARCH (the archMap's architecture). */
const SECCOMP_ARCH: Record<string, string> = { amd64: 'SCMP_ARCH_X86_64', '386': 'SCMP_ARCH_X86', arm64: 'SCMP_ARCH_AARCH64', arm: 'SCMP_ARCH_ARM', s390x: 'SCMP_ARCH_S390X', ppc64le: 'SCMP_ARCH_PPC64LE', mips: 'SCMP_ARCH_MIPS', mipsle: 'SCMP_ARCH_MIPSEL', riscv64: 'SCMP_ARCH_RISCV64' };

export function nativeGoArch(): string {
  return GO_ARCH[arch()] ?? arch();
}

/** Reads a profile file, naming it in the error (what --security-opt seccomp=FILE gave, or the default). */
export function readProfile(path: string): Profile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    throw new UsageError(`seccomp profile ${path}: cannot read: ${missing ? 'no such file' : (err as Error).message}`, { hint: path === DEFAULT_SECCOMP_PROFILE ? 'apt-get install golang-github-containers-common, or --security-opt seccomp=unconfined' : undefined, cause: err });
  }
  try {
    const profile = JSON.parse(text) as Profile;
    if (typeof profile !== 'object' || profile === null || typeof profile.defaultAction !== 'string') throw new Error('no defaultAction');
    return profile;
  } catch (err) {
    throw new UsageError(`seccomp profile ${path}: not a seccomp profile (${(err as Error).message})`, { cause: err });
  }
}

/** The profile as a config's linux.seccomp, for a container with these bounding capabilities. */
export function seccompForContainer(profile: Profile, bounding: string[], goArch: string = nativeGoArch()): LinuxSeccomp {
  // defaultErrno is the profile's name of defaultErrnoRet (a comment for people): podman leaves it out.
  const { archMap, syscalls, defaultErrno: _name, ...rest } = profile;
  const seccomp: LinuxSeccomp = { ...rest };
  if (archMap) {
    const native = archMap.find((a) => a.architecture === SECCOMP_ARCH[goArch]);
    seccomp.architectures = native ? [native.architecture, ...(native.subArchitectures ?? [])] : [];
  }
  const caps = new Set(bounding);
  const rules: SeccompRule[] = [];
  for (const call of syscalls ?? []) {
    if (!applies(call, caps, goArch)) continue;
    const names = call.names ?? (call.name !== undefined ? [call.name] : []);
    if (names.length === 0) continue;
    rules.push({ names, action: call.action, ...(call.errnoRet !== undefined ? { errnoRet: call.errnoRet } : {}), ...(call.args?.length ? { args: call.args.map(goArg) } : {}) });
  }
  seccomp.syscalls = rules;
  return seccomp;
}

/** Go's omitempty on valueTwo, as podman writes an argument. */
function goArg(arg: NonNullable<SeccompRule['args']>[number]): NonNullable<SeccompRule['args']>[number] {
  const { valueTwo, ...rest } = arg;
  return valueTwo ? { ...rest, valueTwo } : { index: rest.index, value: rest.value, op: rest.op };
}

function applies(call: ProfileSyscall, caps: Set<string>, goArch: string): boolean {
  const { includes = {}, excludes = {} } = call;
  if (excludes.arches?.includes(goArch)) return false;
  if (excludes.caps?.some((c) => caps.has(c))) return false;
  if (includes.arches && includes.arches.length > 0 && !includes.arches.includes(goArch)) return false;
  if (includes.caps?.some((c) => !caps.has(c))) return false;
  if (includes.minKernel && kernelBelow(includes.minKernel)) return false;
  if (excludes.minKernel && !kernelBelow(excludes.minKernel)) return false;
  return true;
}

function kernelBelow(minimum: string): boolean {
  const parse = (v: string) => v.split(/[.-]/).slice(0, 2).map(Number);
  const [major = 0, minor = 0] = parse(readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim());
  const [wantMajor = 0, wantMinor = 0] = parse(minimum);
  return major < wantMajor || (major === wantMajor && minor < wantMinor);
}
