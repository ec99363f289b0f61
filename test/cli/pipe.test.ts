import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDocument } from '../../lib/cli/pipe.js';
import { runCommand } from '../../lib/cli/command.js';
import { memoryIo, testCommand } from '../helpers/memory-io.js';
import { withSection } from '../../lib/cli/document.js';
import { InputError } from '../../lib/core/errors.js';

const echoCommand = testCommand('echo-doc', async (ctx) => {
  ctx.emit(withSection(await ctx.document(), 'echo', { ok: true }));
});

test('a document names the field that is wrong', () => {
  assert.throws(() => parseDocument('{"documentVersion":1,"image":{"layers":[{}]}}'), (e: unknown) => e instanceof InputError && /^input\.image: missing required field/.test(e.message));
  const layer = { mediaType: 'x', digest: 'sha256:zz', size: 1, diffID: `sha256:${'0'.repeat(64)}` };
  const image = { reference: 'r', digest: `sha256:${'0'.repeat(64)}`, store: '/s', layout: 'oci', manifest: { mediaType: 'x', digest: `sha256:${'0'.repeat(64)}`, size: 1 }, config: { rootfs: { type: 'layers', diff_ids: [] } }, layers: [layer], platform: { os: 'linux', architecture: 'amd64' } };
  assert.throws(() => parseDocument(JSON.stringify({ documentVersion: 1, image })), { message: /^input\.image\.layers\[0\]\.digest: must match/ });
  assert.throws(() => parseDocument('{"documentVersion":2}'), { message: /^input\.documentVersion: must be 1/ });
  assert.throws(() => parseDocument('{"documentVersion":1'), { message: /truncated/ });
  assert.throws(() => parseDocument('nope'), { message: /not a JSON document/ });
});

test('a command passes other sections through and writes one line', async () => {
  const io = memoryIo('{"documentVersion":1,"mine":{"a":[1,2]}}\n');
  assert.equal(await runCommand(echoCommand, [], io), 0);
  assert.equal(io.out(), '{"documentVersion":1,"mine":{"a":[1,2]},"echo":{"ok":true}}\n');
  assert.equal(io.err(), '');
});

test('bad input: exit 2, one line on stderr, nothing on stdout', async () => {
  const io = memoryIo('{"documentVersion":1,');
  assert.equal(await runCommand(echoCommand, [], io), 2);
  assert.equal(io.out(), '');
  assert.match(io.err(), /^echo-doc: input: truncated JSON document\n$/);
});

test('an empty pipe is no document; unknown flags are usage errors', async () => {
  const io = memoryIo('');
  assert.equal(await runCommand(echoCommand, [], io), 0);
  assert.equal(io.out(), '{"documentVersion":1,"echo":{"ok":true}}\n');
  const bad = memoryIo('');
  assert.equal(await runCommand(echoCommand, ['--nope'], bad), 2);
  assert.match(bad.err(), /^echo-doc: Unknown argument: nope\n$/);
});

test("the push section img-push writes is in the schema: a well-formed one passes, a wrong field is named", () => {
  const digest = `sha256:${'a'.repeat(64)}`;
  const push = { destination: 'docker://127.0.0.1:5000/lab/x:1', digest, manifest: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest, size: 10 }, blobs: { sent: [digest], skipped: [], mounted: [], resumed: [] } };
  assert.deepEqual(parseDocument(JSON.stringify({ documentVersion: 1, push })).push, push);
  assert.throws(() => parseDocument(JSON.stringify({ documentVersion: 1, push: { ...push, digest: 'sha256:nope' } })), { message: /^input\.push\.digest: must match/ });
  assert.throws(() => parseDocument(JSON.stringify({ documentVersion: 1, push: { ...push, blobs: { sent: [] } } })), (e: unknown) => e instanceof InputError && /^input\.push\.blobs: missing required field/.test(e.message));
  assert.throws(() => parseDocument(JSON.stringify({ documentVersion: 1, push: { ...push, blobs: { ...push.blobs, lost: [] } } })), { message: /^input\.push\.blobs/ });
});
