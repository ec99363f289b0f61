/** The helper's command line (lib/run/privileges.ts): capability masks, groups, rlimits, the terminal. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { helperCommand } from '../../lib/run/privileges.js';
import { UnsupportedError } from '../../lib/core/errors.js';
import type { ProcessConfig } from '../../lib/run/config-checks.js';

const root = (extra: Partial<ProcessConfig> = {}): ProcessConfig & { args: string[] } => ({
  user: { uid: 0, gid: 0 },
  args: ['sh', '-c', 'id'],
  cwd: '/work',
  capabilities: { bounding: ['CAP_CHOWN', 'CAP_KILL', 'CAP_AUDIT_WRITE'], effective: ['CAP_CHOWN', 'CAP_KILL', 'CAP_AUDIT_WRITE'], permitted: ['CAP_CHOWN', 'CAP_KILL', 'CAP_AUDIT_WRITE'] },
  ...extra,
});

test('capability sets as kernel bit masks (capability.h numbers), groups, uid/gid, then the command after --', () => {
  const argv = helperCommand(root({ user: { uid: 0, gid: 0, additionalGids: [10, 20] } }), { setgroups: true, init: false, terminal: false });
  assert.equal(argv[0], '/proc/self/fd/6');
  // CHOWN 0, KILL 5, AUDIT_WRITE 29.
  const mask = (1 + 2 ** 5 + 2 ** 29).toString(16);
  assert.deepEqual(argv.slice(argv.indexOf('--caps'), argv.indexOf('--caps') + 2), ['--caps', `${mask}:0:0:${mask}:${mask}`]);
  assert.deepEqual(argv.slice(argv.indexOf('--groups'), argv.indexOf('--groups') + 2), ['--groups', '10,20']);
  assert.deepEqual(argv.slice(argv.indexOf('--cwd'), argv.indexOf('--cwd') + 2), ['--cwd', '/work']);
  assert.deepEqual(argv.slice(argv.indexOf('--stderr'), argv.indexOf('--stderr') + 2), ['--stderr', '7']);
  assert.deepEqual(argv.slice(argv.indexOf('--') + 1), ['sh', '-c', 'id']);
  assert.ok(!argv.includes('--init') && !argv.includes('--console'));
});

test('a terminal: the console socket and the devpts group; --init; a rootless namespace keeps the groups', () => {
  const argv = helperCommand(root(), { setgroups: false, init: true, terminal: true, terminalGid: 5 });
  for (const flag of ['--console', '8', '--console-gid', '5', '--init', '--keep-groups']) assert.ok(argv.includes(flag), flag);
  assert.ok(!argv.includes('--stderr'));
  assert.throws(() => helperCommand(root({ user: { uid: 0, gid: 0, additionalGids: [10] } }), { setgroups: false, init: false, terminal: false }), /supplementary groups need a subordinate gid range/);
});

test('rlimits by name, unlimited (2^64-1, which JSON rounds up) passed on whole; an unknown one or a capability the kernel lacks is refused', () => {
  const argv = helperCommand(root({ rlimits: [{ type: 'RLIMIT_NOFILE', soft: 1024, hard: 2048 }, { type: 'RLIMIT_CORE', soft: 18446744073709551615, hard: 18446744073709551615 }] }), { setgroups: true, init: false, terminal: false });
  assert.deepEqual(argv.filter((_, i) => argv[i - 1] === '--rlimit'), ['RLIMIT_NOFILE:1024:2048', 'RLIMIT_CORE:18446744073709551616:18446744073709551616']);
  assert.throws(() => helperCommand(root({ rlimits: [{ type: 'RLIMIT_BOGUS', soft: 1, hard: 1 }] }), { setgroups: true, init: false, terminal: false }), (e: unknown) => e instanceof UnsupportedError && /^process\.rlimits\[0\]\.type: unknown limit RLIMIT_BOGUS/.test(e.message));
  const bogus = root({ capabilities: { bounding: ['CAP_BOGUS'], effective: ['CAP_BOGUS'], permitted: ['CAP_BOGUS'] } });
  assert.throws(() => helperCommand(bogus, { setgroups: true, init: false, terminal: false }), /process\.capabilities\.bounding: CAP_BOGUS is not a capability/);
});
