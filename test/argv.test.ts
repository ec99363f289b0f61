/** The quick command-line reading gives what yargs gives, or leaves the line to yargs. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePlainArgv, recordOptions } from '../lib/argv.js';
import { buildParser, withCommonOptions } from '../lib/cli.js';
import { nsEnter } from '../tools/ns-enter.js';

const recorded = recordOptions((y) => nsEnter.options(withCommonOptions(y, nsEnter.claimsShortFlags)));

async function viaYargs(argv: string[]): Promise<Record<string, unknown>> {
  const { $0: _script, ...args } = (await buildParser(nsEnter, argv).parseAsync()) as Record<string, unknown>;
  return args;
}

test('plain ns-enter command lines read the same as with yargs', async () => {
  assert.ok(recorded, 'ns-enter builds its options with .option() only');
  const lines = [
    ['--rootfs', '/r', '--', 'true'],
    ['--rootfs=/r', '-e', 'A=1', '--env', 'B=2', '-v', '/a:/b:ro', '--volume=/c:/d', '--tmpfs', '/t', '--', 'sh', '-c', 'echo $$'],
    ['--net', 'none', '--hostname', 'h', '-u', 'lab:wheel', '-w', '/tmp', '--memory', '16m', '--pids-limit', '10', '--cpus', '1.5', '--init', '--rm', '-t'],
    ['--cap-add', 'NET_ADMIN', '--cap-drop=chown', '--read-only', '--no-init', '--explain', '--verbose', '-q', '--name', 'x', '--store', '/s'],
    ['--bundle', '/b'],
    [],
  ];
  for (const argv of lines) {
    const quick = parsePlainArgv(recorded as NonNullable<typeof recorded>, argv);
    assert.ok(quick, `quick path for ${argv.join(' ')}`);
    assert.deepEqual(quick, await viaYargs(argv), argv.join(' '));
  }
});

test('anything else is left to yargs', () => {
  for (const argv of [['--help'], ['--version'], ['-it'], ['--nope'], ['sh'], ['--net', 'bridge'], ['--pids-limit', 'x'], ['--rootfs'], ['--hostname', '-x'], ['--rootfs', '/a', '--rootfs', '/b']]) {
    assert.equal(parsePlainArgv(recorded as NonNullable<typeof recorded>, argv), undefined, argv.join(' '));
  }
  assert.equal(recordOptions((y) => y.option('a', {}).check(() => true)), undefined);
});
