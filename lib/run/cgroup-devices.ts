/**
 * linux.resources.devices as the devices cgroup carries it out. On cgroup v1 the rules are
 * written in order to devices.deny and devices.allow (runc's fs manager), followed by runc's
 * own allowed devices (specconv.AllowedDevices: what every container's /dev holds). Cgroup v2
 * has no devices files: the rules are an eBPF program attached to the cgroup, which ns-enter
 * does not load; there a config that could make and open a device node is refused instead.
 */
import { UnsupportedError } from '../core/errors.js';
import type { RuntimeConfig } from './runtime-spec.js';

export type DeviceRule = NonNullable<NonNullable<NonNullable<RuntimeConfig['linux']>['resources']>['devices']>[number];

/**
 * runc's AllowedDevices, appended after the config's rules: mknod of any node (opening it is
 * another matter), null, random, full, tty, zero, urandom, the pts, ptmx and tun.
 */
export const RUNC_ALLOWED_DEVICES: DeviceRule[] = [
  { allow: true, type: 'c', access: 'm' },
  { allow: true, type: 'b', access: 'm' },
  { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 8, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 7, access: 'rwm' },
  { allow: true, type: 'c', major: 5, minor: 0, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 5, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 9, access: 'rwm' },
  { allow: true, type: 'c', major: 136, access: 'rwm' },
  { allow: true, type: 'c', major: 5, minor: 2, access: 'rwm' },
  { allow: true, type: 'c', major: 10, minor: 200, access: 'rwm' },
];

/** The v1 writes for the config's rules then runc's allowed devices: [file, value] in order. */
export function deviceWrites(rules: DeviceRule[]): Array<[string, string]> {
  return [...rules, ...RUNC_ALLOWED_DEVICES].map((rule, i) => [rule.allow ? 'devices.allow' : 'devices.deny', deviceLine(rule, i)]);
}

/** `c 10:229 rwm`; a rule for every type is `a` (the kernel's all-devices form). */
function deviceLine(rule: DeviceRule, index: number): string {
  const type = rule.type ?? 'a';
  if (!['a', 'b', 'c'].includes(type)) throw new UnsupportedError(`linux.resources.devices[${index}].type: ${JSON.stringify(type)} is not a, b or c`);
  const access = rule.access ?? 'rwm';
  if (!/^[rwm]{1,3}$/.test(access)) throw new UnsupportedError(`linux.resources.devices[${index}].access: ${JSON.stringify(access)} is not made of r, w and m`);
  if (type === 'a') return 'a';
  const number = (n: number | null | undefined) => (n === undefined || n === null || n < 0 ? '*' : String(n));
  return `${type} ${number(rule.major)}:${number(rule.minor)} ${access}`;
}

/** The capabilities with which a process could make a device node and open it (mknod, or a fresh tmpfs to make it in). */
const DEVICE_MAKING_CAPABILITIES = ['CAP_MKNOD', 'CAP_SYS_ADMIN'];

/** The first capability of the config's process that could make and open a device, if any. */
export function deviceMakingCapability(config: RuntimeConfig): string | undefined {
  const caps = config.process?.capabilities ?? {};
  const granted = new Set([...(caps.bounding ?? []), ...(caps.effective ?? []), ...(caps.permitted ?? []), ...(caps.ambient ?? [])]);
  return DEVICE_MAKING_CAPABILITIES.find((c) => granted.has(c));
}

/** Cgroup v2 without an eBPF device filter: refused when the process could make and open devices. */
export function refuseUnfilteredDevices(capability: string | undefined): void {
  if (capability === undefined) return;
  throw new UnsupportedError(`process.capabilities: ${capability} with cgroup v2 would let the container make and open any device: ns-enter cannot load the eBPF program that carries out linux.resources.devices there`, { hint: `drop ${capability}, or use runc` });
}
