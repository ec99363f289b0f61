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

test('the whole command line of a non-root process: the start fd, every rlimit name, the umask, ids, cleared groups, the ambient-derived masks, --init', () => {
  const names = ['AS', 'CORE', 'CPU', 'DATA', 'FSIZE', 'LOCKS', 'MEMLOCK', 'MSGQUEUE', 'NICE', 'NOFILE', 'NPROC', 'RSS', 'RTPRIO', 'RTTIME', 'SIGPENDING', 'STACK'].map((n) => `RLIMIT_${n}`);
  const proc: ProcessConfig & { args: string[] } = {
    user: { uid: 1000, gid: 100, umask: 0o22 },
    args: ['id'],
    cwd: '/',
    rlimits: names.map((type) => ({ type, soft: 1, hard: 2 })),
    // CAP_KILL is ambient and inheritable and bounding: kept; CAP_CHOWN is ambient but not inheritable: dropped, as the kernel does.
    capabilities: { bounding: ['CAP_CHOWN', 'CAP_KILL'], inheritable: ['CAP_KILL'], ambient: ['CAP_KILL', 'CAP_CHOWN'], effective: ['CAP_KILL'], permitted: ['CAP_KILL'] },
  };
  const kill = (2 ** 5).toString(16);
  assert.deepEqual(helperCommand(proc, { setgroups: true, init: true, terminal: false, startFd: 9 }), [
    '/proc/self/fd/6', '--start-fd', '9',
    ...names.flatMap((n) => ['--rlimit', `${n}:1:2`]),
    '--cwd', '/', '--stderr', '7',
    '--umask', '22', '--uid', '1000', '--gid', '100', '--clear-groups', '--caps', `21:${kill}:${kill}:${kill}:${kill}`,
    '--init', '--', 'id',
  ]);
  const terminal = helperCommand({ ...proc, rlimits: [] }, { setgroups: false, init: false, terminal: true });
  assert.deepEqual(terminal.slice(0, 8), ['/proc/self/fd/6', '--cwd', '/', '--console', '8', '--umask', '22', '--uid'], 'no start fd, no console gid when none is given');
  assert.ok(terminal.includes('--keep-groups'));
});

test('effective and permitted must be what the kernel gives after exec: the bounding set for uid 0, the kept ambient set for any other', () => {
  const opts = { setgroups: true, init: false, terminal: false };
  for (const set of ['effective', 'permitted'] as const) {
    const short = root();
    short.capabilities = { ...short.capabilities, [set]: ['CAP_CHOWN', 'CAP_KILL'] };
    assert.throws(() => helperCommand(short, opts), (e: unknown) => e instanceof UnsupportedError && e.message === `process.capabilities.${set}: must equal the bounding set for uid 0: that is what the kernel gives after exec`);
    const other = root();
    other.capabilities = { ...other.capabilities, [set]: ['CAP_CHOWN', 'CAP_KILL', 'CAP_SYS_ADMIN'] };
    assert.throws(() => helperCommand(other, opts), UnsupportedError, 'same size, another capability');
  }
  const user = { ...root(), user: { uid: 1000, gid: 1000 } };
  assert.throws(() => helperCommand(user, opts), (e: unknown) => e instanceof UnsupportedError && e.message === 'process.capabilities.effective: must equal the ambient (and inheritable) set for uid 1000: that is what the kernel gives after exec');
  const none = helperCommand({ ...user, capabilities: {} }, opts);
  assert.equal(none[none.indexOf('--caps') + 1], '0:0:0:0:0');
  assert.equal(helperCommand({ ...user, capabilities: undefined } as unknown as ProcessConfig & { args: string[] }, opts).includes('--caps'), true);
  const own = helperCommand({ ...root(), user: { uid: 0, gid: 5, additionalGids: [5] } }, { setgroups: false, init: false, terminal: false });
  assert.ok(own.includes('--keep-groups'), 'only its own gid: fine without setgroups');
  assert.ok(!own.includes('--umask'));
});
