/**
 * --explain on every command's main forms: it prints the equivalent steps as commands a reader
 * could type, each after a one-line `# comment`, and it does nothing — no file made or changed
 * (the whole scratch dir, store included, is compared before and after), no mount, no bundle.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exec, mustExec, tool } from '../helpers/exec.js';
import { mountsUnder, unmountAll } from '../helpers/mounts.js';
import { SCRIPTS, tempDir } from '../helpers/paths.js';
import { describeTree } from '../helpers/tree.js';

/** Programs an explanation may name that this machine cannot have: no Debian package ships them. */
const NOT_INSTALLABLE_HERE = new Set(['oci-runtime-tool']);

let work: { path: string; cleanup: () => Promise<void> };
let store: string;
let imageDoc: string;
let layersDoc: string;
let flatDoc: string;

before(async () => {
  work = await tempDir('cp-explain-');
  store = join(work.path, 'store');
  // Real documents to explain, made by the real commands from the lab image (no registry needed).
  await mustExec(join(SCRIPTS, 'build-busybox-image.sh'), [join(work.path, 'build'), `oci:${join(work.path, 'layout')}:busybox`]);
  const run = async (command: string, args: string[], input?: string) => {
    const result = await tool(command, args, { input });
    assert.equal(result.status, 0, `${command}: ${result.stderr}`);
    return result.stdout;
  };
  imageDoc = await run('img-fetch', [`oci:${join(work.path, 'layout')}:busybox`, '--store', store, '--name', 'lab/busybox:latest']);
  layersDoc = await run('img-unpack', ['--layers'], imageDoc);
  flatDoc = await run('img-unpack', ['--dest', join(work.path, 'rootfs')], imageDoc);
  // runc's own bundle, its root the unpacked tree.
  const bundle = join(work.path, 'runc-bundle');
  mkdirSync(bundle);
  await mustExec('runc', ['spec', '--bundle', bundle]);
  const config = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
  config.root.path = join(work.path, 'rootfs');
  writeFileSync(join(bundle, 'config.json'), JSON.stringify(config));
});

after(async () => {
  if (!work) return;
  await unmountAll(work.path);
  await work.cleanup();
});

interface Form {
  command: string;
  args: (w: string) => string[];
  input?: () => string;
}

const forms: Form[] = [
  { command: 'img-fetch', args: () => ['docker://127.0.0.1:1/lab/busybox:latest', '--tls-verify=false'] },
  { command: 'img-fetch', args: (w) => ['docker://registry.example/lab/busybox@sha256:' + 'a'.repeat(64), '--dir', join(w, 'fetched-dir')] },
  { command: 'img-fetch', args: (w) => [`oci:${join(w, 'layout')}:busybox`] },
  { command: 'img-fetch', args: (w) => [`docker-archive:${join(w, 'saved.tar')}`] },
  { command: 'img-unpack', args: (w) => ['--dest', join(w, 'new-rootfs')], input: () => imageDoc },
  { command: 'img-unpack', args: () => ['--layers'], input: () => imageDoc },
  { command: 'img-unpack', args: (w) => ['--image', 'lab/busybox:latest', '--store', join(w, 'store'), '--dest', join(w, 'new-rootfs')] },
  { command: 'ovl-mount', args: () => [], input: () => layersDoc },
  { command: 'ovl-mount', args: (w) => ['--target', join(w, 'merged')], input: () => flatDoc },
  { command: 'ovl-mount', args: (w) => ['--lower', `${join(w, 'l2')}:${join(w, 'l1')}`, '--upper', join(w, 'u'), '--work', join(w, 'w'), '--target', join(w, 'merged')] },
  { command: 'ovl-mount', args: (w) => ['--lower', join(w, 'rootfs'), '--read-only', '--target', join(w, 'merged')] },
  { command: 'ovl-mount', args: (w) => ['--lower', join(w, 'rootfs'), '--driver', 'fuse', '--upper', join(w, 'u'), '--work', join(w, 'w'), '--target', join(w, 'merged')] },
  { command: 'ovl-mount', args: (w) => ['--diff', join(w, 'merged')] },
  { command: 'ovl-mount', args: (w) => ['--unmount', join(w, 'merged')] },
  { command: 'ns-enter', args: () => ['--', 'sh', '-c', 'echo $$'], input: () => flatDoc },
  { command: 'ns-enter', args: (w) => ['--rootfs', join(w, 'rootfs'), '--hostname', 'box', '-v', `${w}:/host:ro`, '--net', 'host', '-e', 'A=b', '-w', '/tmp', '--', 'id'] },
  { command: 'ns-enter', args: (w) => ['--rootfs', join(w, 'rootfs'), '--memory', '64m', '--pids-limit', '20', '--', 'true'] },
  { command: 'ns-enter', args: (w) => ['--bundle', join(w, 'runc-bundle')] },
  { command: 'oci-spec', args: () => [] },
  { command: 'oci-spec', args: () => ['--rootless'] },
  { command: 'oci-spec', args: (w) => ['--bundle', join(w, 'new-bundle'), '--hostname', 'box', '--tmpfs', '/scratch', '--', 'sh', '-c', 'id'], input: () => flatDoc },
  { command: 'oci-spec', args: (w) => ['--validate', join(w, 'runc-bundle', 'config.json')] },
];

/** The first word of a command line is a program on PATH, a path that exists, or shell syntax (cd, for, echo, ...). */
async function runnable(commandLine: string): Promise<boolean> {
  const word = commandLine.trim().split(/\s+/)[0] as string;
  if (NOT_INSTALLABLE_HERE.has(word)) return true;
  const result = await exec('bash', ['-c', `type -t -- "$1" >/dev/null || [ -x "$1" ]`, 'bash', word]);
  return result.status === 0;
}

for (const form of forms) {
  const label = `${form.command} --explain ${form.args('W').join(' ')}${form.input ? ' (piped document)' : ''}`;
  test(`${label}: commented command lines, and nothing done`, async () => {
    const w = work.path;
    const before = await describeTree(w, { dirMtimes: true });
    const result = await tool(form.command, ['--explain', ...form.args(w)], { input: form.input?.(), env: { CONTAINER_PARTS_STORE: store }, cwd: w });
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stderr, '', 'nothing on stderr');

    const lines = result.stdout.replace(/\n$/, '').split('\n');
    assert.ok(lines.length >= 2, result.stdout);
    assert.equal(lines.length % 2, 0, `pairs of "# comment" and command:\n${result.stdout}`);
    for (let i = 0; i < lines.length; i += 2) {
      const comment = lines[i] as string;
      const command = lines[i + 1] as string;
      assert.match(comment, /^# \S/, `line ${i + 1} is a comment:\n${result.stdout}`);
      assert.ok(command.trim() !== '' && !command.startsWith('#'), `line ${i + 2} is a command:\n${result.stdout}`);
      assert.ok(await runnable(command), `a command a reader could type (its program is here): ${command}`);
    }

    assert.deepEqual(await describeTree(w, { dirMtimes: true }), before, 'no file made or changed');
    assert.deepEqual(mountsUnder(w), [], 'nothing mounted');
  });
}
