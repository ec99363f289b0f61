/** lib/runflags.ts: the podman-run flags parse into RunFlags once, for oci-spec and ns-enter alike. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildParser } from '../../lib/cli/command.js';
import { UsageError } from '../../lib/core/errors.js';
import { hasRunFlags, parseRunFlags, type RunFlagArgs } from '../../lib/run/runflags.js';
import { ociSpec } from '../../tools/oci-spec.js';

async function parse(argv: string[], env: NodeJS.ProcessEnv = {}) {
  const args = (await buildParser(ociSpec, argv).parseAsync()) as unknown as RunFlagArgs & { _: string[]; '--'?: string[]; verbose: boolean };
  return { flags: parseRunFlags(args, env, '/work'), args };
}

test('every flag, short and long forms, and the command after --', async () => {
  const { flags, args } = await parse(
    ['-e', 'A=1', '--env', 'B', '-w', '/srv', '-u', 'lab:wheel', '--hostname', 'box', '-v', '/a:/b', '--volume', './data:/data:ro',
     '--tmpfs', '/scratch', '--tmpfs', '/run:rw,size=1m', '--net', 'none', '--memory', '64m', '--pids-limit', '20', '--cpus', '1.5',
     '--cap-add', 'net_admin,CAP_SYS_TIME', '--cap-drop', 'KILL', '--read-only', '-t', '--entrypoint', '["/bin/sh","-c"]',
     '--annotation', 'k=v=w', '--init', '--rm', '--', 'sh', '-c', 'id'],
    { B: 'from-host' },
  );
  assert.deepEqual(flags, {
    env: ['A=1', 'B=from-host'],
    workdir: '/srv',
    user: 'lab:wheel',
    hostname: 'box',
    volumes: [
      { source: '/a', destination: '/b', readOnly: false },
      { source: '/work/data', destination: '/data', readOnly: true },
    ],
    tmpfs: [
      { destination: '/scratch', options: ['rw', 'noexec', 'nosuid', 'nodev', 'mode=1777'] },
      { destination: '/run', options: ['rw', 'size=1m'] },
    ],
    network: 'none',
    memory: 64 * 1024 * 1024,
    pidsLimit: 20,
    cpus: 1.5,
    capAdd: ['CAP_NET_ADMIN', 'CAP_SYS_TIME'],
    capDrop: ['CAP_KILL'],
    readOnly: true,
    tty: true,
    entrypoint: ['/bin/sh', '-c'],
    annotations: { k: 'v=w' },
    init: true,
    rm: true,
  });
  assert.deepEqual(args['--'], ['sh', '-c', 'id']);
  assert.equal(args.verbose, false, '-v is --volume here, not --verbose');
});

test('a repeatable flag takes one value, so a command without -- is not swallowed', async () => {
  const { flags, args } = await parse(['-e', 'A=1', 'sh']);
  assert.deepEqual(flags.env, ['A=1']);
  assert.deepEqual(args._, ['sh']);
});

test('no flags: hasRunFlags is false (a bare oci-spec stays runc spec)', async () => {
  const { flags } = await parse([]);
  assert.equal(hasRunFlags(flags), false);
  assert.equal(hasRunFlags((await parse(['-t'])).flags), true);
});

test('-e NAME unset in this environment is dropped, as podman does', async () => {
  assert.deepEqual((await parse(['-e', 'NOPE'])).flags.env, []);
});

test('--entrypoint: a plain string is one program; "" clears it', async () => {
  assert.deepEqual((await parse(['--entrypoint', '/bin/echo hi'])).flags.entrypoint, ['/bin/echo hi']);
  assert.deepEqual((await parse(['--entrypoint', ''])).flags.entrypoint, []);
});

test('memory units are binary multiples', async () => {
  assert.equal((await parse(['--memory', '1g'])).flags.memory, 1024 ** 3);
  assert.equal((await parse(['--memory', '10485760'])).flags.memory, 10485760);
  assert.equal((await parse(['--memory', '512MB'])).flags.memory, 512 * 1024 ** 2);
});

for (const [argv, message] of [
  [['-v', 'data:/data'], /--volume "data:\/data": named volumes are not supported/],
  [['-v', '/a'], /expected SRC:DST/],
  [['-v', '/a:/b:rx'], /the mode must be ro or rw/],
  [['-v', '/a:b'], /must be an absolute path inside the container/],
  [['-w', 'relative'], /--workdir "relative": must be an absolute path/],
  [['--tmpfs', 'tmp'], /--tmpfs "tmp": must be an absolute path/],
  [['--memory', 'lots'], /--memory "lots": expected a size/],
  [['--memory', '1k'], /the minimum is 6m/],
  [['--pids-limit', '0'], /--pids-limit 0: expected a positive integer/],
  [['--cpus', '-1'], /--cpus -1: expected a positive number/],
  [['--cap-add', 'FLY'], /--cap-add "FLY": unknown capability/],
  [['--entrypoint', '[1,2]'], /must be an array of strings/],
  [['--annotation', 'novalue'], /expected KEY=VALUE/],
  [['--hostname', 'bad_name!'], /not a valid host name/],
  [['-e', '=x'], /expected NAME=VALUE/],
] as Array<[string[], RegExp]>) {
  test(`refused: ${argv.join(' ')}`, async () => {
    await assert.rejects(parse(argv), (err: unknown) => err instanceof UsageError && message.test(err.message));
  });
}

test('--network takes only none or host', async () => {
  await assert.rejects(parse(['--network', 'bridge']), /Invalid values/);
});
