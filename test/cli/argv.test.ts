/** The quick command-line reading gives what yargs gives, or leaves the line to yargs. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePlainArgv, recordOptions } from '../../lib/cli/argv.js';
import { buildParser, withCommonOptions, type CommandSpec } from '../../lib/cli/command.js';
import { imgFetch } from '../../tools/img-fetch.js';
import { imgUnpack } from '../../tools/img-unpack.js';
import { nsEnter } from '../../tools/ns-enter.js';
import { ociSpec } from '../../tools/oci-spec.js';
import { ovlMount } from '../../tools/ovl-mount.js';

function recorded<A>(spec: CommandSpec<A>) {
  const options = recordOptions((y) => spec.options(withCommonOptions(y, spec.claimsShortFlags)));
  assert.ok(options, `${spec.name} builds its options with .option() only`);
  return options;
}

async function viaYargs<A>(spec: CommandSpec<A>, argv: string[]): Promise<Record<string, unknown>> {
  const { $0: _script, ...args } = (await buildParser(spec, argv).parseAsync()) as Record<string, unknown>;
  return args;
}

async function assertSameAsYargs<A>(spec: CommandSpec<A>, lines: string[][]): Promise<void> {
  const options = recorded(spec);
  for (const argv of lines) {
    const quick = parsePlainArgv(options, argv);
    assert.ok(quick, `quick path for ${spec.name} ${argv.join(' ')}`);
    assert.deepEqual(quick, await viaYargs(spec, argv), `${spec.name} ${argv.join(' ')}`);
  }
}

test('plain ns-enter command lines read the same as with yargs', async () => {
  await assertSameAsYargs(nsEnter, [
    ['--rootfs', '/r', '--', 'true'],
    ['--rootfs=/r', '-e', 'A=1', '--env', 'B=2', '-v', '/a:/b:ro', '--volume=/c:/d', '--tmpfs', '/t', '--', 'sh', '-c', 'echo $$'],
    ['--net', 'none', '--hostname', 'h', '-u', 'lab:wheel', '-w', '/tmp', '--memory', '16m', '--pids-limit', '10', '--cpus', '1.5', '--init', '--rm', '-t'],
    ['--cap-add', 'NET_ADMIN', '--cap-drop=chown', '--read-only', '--no-init', '--explain', '--verbose', '-q', '--name', 'x', '--store', '/s'],
    ['--bundle', '/b'],
    ['sh'],
    [],
  ]);
});

test('plain command lines of the other tools read the same as with yargs', async () => {
  await assertSameAsYargs(imgFetch, [
    ['docker://127.0.0.1:5000/lab/busybox:latest', '--tls-verify=false', '-q', '--store', '/s'],
    ['--progress', 'plain', 'oci:/tmp/layout:latest', '--jobs', '2', '--retries=0', '--name', 'x', '--platform', 'linux/arm64'],
    ['--no-tls-verify', 'busybox', '--creds', 'u:p', '--dir', '/d', '--debug'],
  ]);
  await assertSameAsYargs(imgUnpack, [[], ['--store', '/s', '--image', 'debian', '--dest', '/d'], ['--layers', '--input', 'doc.json', '-v']]);
  await assertSameAsYargs(ovlMount, [[], ['--lower', '/a:/b', '--upper', '/u', '--work', '/w', '--target', '/m', '--driver', 'fuse'], ['--diff', '/m'], ['--unmount', '--read-only']]);
  await assertSameAsYargs(ociSpec, [['--bundle', '/b', '--rootless'], ['-b', '/b', '--', 'sh'], ['--validate', '/b/config.json']]);
});

test('anything else is left to yargs', () => {
  const options = recorded(nsEnter);
  for (const argv of [['--help'], ['--version'], ['-it'], ['--nope'], ['--net', 'bridge'], ['--pids-limit', 'x'], ['--rootfs'], ['--hostname', '-x'], ['--rootfs', '/a', '--rootfs', '/b'], ['42']]) {
    assert.equal(parsePlainArgv(options, argv), undefined, argv.join(' '));
  }
  assert.equal(parsePlainArgv(recorded(imgFetch), ['--progress', 'fancy', 'busybox']), undefined);
  assert.equal(recordOptions((y) => y.option('a', {}).check(() => true)), undefined);
});
