/**
 * An empty pipe means the stage before failed (a command writes its document only when it
 * succeeded): every later stage says so in one line, exit 2, instead of blaming itself; no
 * document at all (a terminal, /dev/null, a file) is still no document.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runCommand } from '../../lib/cli/command.js';
import { memoryIo, testCommand } from '../helpers/memory-io.js';
import { withSection } from '../../lib/cli/document.js';
import { InputError } from '../../lib/core/errors.js';
import { exec, assertOneLineError } from '../helpers/exec.js';
import { toolPath } from '../helpers/paths.js';

const EMPTY_PIPE = "input: the pipe is empty: the command before this one failed (its message is above); for no document, give stdin </dev/null";

const needsDocument = testCommand('needs-doc', async (ctx) => {
  const doc = await ctx.document();
  if (!doc) throw new Error('no document: the command blamed itself');
  ctx.emit(withSection(doc, 'seen', { ok: true }));
});

test('an empty pipe (or only whitespace): exit 2, the one line that the stage before failed, nothing on stdout', async () => {
  for (const input of ['', '\n', ' \n\t']) {
    const io = memoryIo(input, true);
    assert.equal(await runCommand(needsDocument, [], io), 2);
    assert.equal(io.out(), '');
    assert.equal(io.err(), `needs-doc: ${EMPTY_PIPE}\n`);
  }
  assert.match(EMPTY_PIPE, /the pipe is empty: the command before this one failed/);
});

test('a document in a pipe is read; nothing on a stdin that is no pipe is no document', async () => {
  const piped = memoryIo('{"documentVersion":1}\n', true);
  assert.equal(await runCommand(needsDocument, [], piped), 0);
  assert.equal(piped.out(), '{"documentVersion":1,"seen":{"ok":true}}\n');
  const devNull = memoryIo('', false);
  assert.equal(await runCommand(needsDocument, [], devNull), 1);
  assert.match(devNull.err(), /^needs-doc: no document: the command blamed itself\n$/);
});

test('an empty pipe is no document when the flags already name the input (img-fetch SOURCE, img-unpack --image, ovl-mount --lower)', async () => {
  const fromFlags = testCommand('from-flags', async (ctx) => {
    ctx.io.stdout.write(`document: ${JSON.stringify(await ctx.document({ inputFromFlags: true }))}\n`);
  });
  const io = memoryIo('', true);
  assert.equal(await runCommand(fromFlags, [], io), 0, io.err());
  assert.equal(io.out(), 'document: undefined\n');
  // A document in the pipe is still read and checked.
  const bad = memoryIo('{"documentVersion":2}', true);
  assert.equal(await runCommand(fromFlags, [], bad), 2);
  assert.match(bad.err(), /^from-flags: input\.documentVersion/);
  // The tools: an empty stdin (a while-read loop, a CI step) does not stop a command whose flags name its input.
  const store = `/tmp/cp-pipe-stage-${process.pid}`;
  const unpack = await sh(`true | img-unpack --store ${store} --image nothing-here`);
  assert.doesNotMatch(unpack.stderr, /the pipe is empty/);
  assert.match(unpack.stderr, /^img-unpack: .*not an OCI image layout/m);
  const mount = await sh(`true | ovl-mount --lower /nonexistent-lower --target /nonexistent-target --read-only`);
  assert.doesNotMatch(mount.stderr, /the pipe is empty/);
  assert.match(mount.stderr, /^ovl-mount: .*nonexistent/m);
  await exec('rm', ['-rf', store]);
});

/** A shell line with the tools as commands (`oci-spec` is `node dist/bin/oci-spec.js`). */
function sh(script: string) {
  const tools = ['img-fetch', 'img-unpack', 'ovl-mount', 'ns-enter', 'oci-spec'].map((t) => `${t}() { "${process.execPath}" "${toolPath(t)}" "$@"; }`).join('\n');
  return exec('bash', ['-c', `${tools}\n${script}`], { timeoutMs: 60_000 });
}

test("`printf '' | oci-spec` exits 2 like the other tools; `oci-spec </dev/null` stays the plain runc spec", async () => {
  assertOneLineError(await sh("printf '' | oci-spec"), 'oci-spec', 2, /the pipe is empty: the command before this one failed/);
  const plain = await sh('oci-spec </dev/null');
  assert.equal(plain.status, 0, plain.stderr);
  assert.equal(plain.stderr, '');
  assert.equal((JSON.parse(plain.stdout) as { ociVersion?: string }).ociVersion !== undefined, true);
});

test('a failed first stage: each later stage says once, in one line, that the stage before failed', async () => {
  const result = await sh('img-fetch oci:/nonexistent/layout:tag | img-unpack | ovl-mount | ns-enter -- true');
  const lines = result.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 4, result.stderr);
  assert.match(lines[0] ?? '', /^img-fetch: /);
  assert.doesNotMatch(lines[0] ?? '', /pipe is empty/);
  for (const [i, command] of ['img-unpack', 'ovl-mount', 'ns-enter'].entries()) {
    assert.equal(lines[i + 1], `${command}: ${EMPTY_PIPE}`);
  }
  assert.equal(result.stdout, '');
  assert.equal(result.status, 2, 'the last stage exits 2');
});

test('an error that quotes input with a newline or an escape is still one line on stderr', async () => {
  const quoting = testCommand('quoting', async () => {
    throw new InputError('bad name "x\nquoting: all is well \u001b[2J\u0007"');
  });
  const io = memoryIo('', false);
  assert.equal(await runCommand(quoting, [], io), 2);
  assert.equal(io.err(), 'quoting: bad name "x\\nquoting: all is well \\x1b[2J\\x07"\n');
});
