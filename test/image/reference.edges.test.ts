/** Edges of references and sources that mutation testing found unchecked (lib/image/reference.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatSource, manifestReference, parseReference, parseSource, registryEndpointHost, storeNameForLayoutImage } from '../../lib/image/reference.js';
import { ReferenceError } from '../../lib/core/errors.js';

const digest = `sha256:${'a'.repeat(64)}`;
const refused = (text: string) => assert.throws(() => parseReference(text), (e: unknown) => e instanceof ReferenceError, text);

test('every part of the grammar is anchored at both ends', () => {
  for (const text of ['lab/a-', 'lab/a_', 'lab/a.', 'lab/aB', `x@${digest}0`, `x@x${digest}`, 'a..b:5000/x', 'a.b-/x', '-a.b/x', 'a.b:/x', 'a.b:5000x/x']) refused(text);
});

test('a bare name with a dot is a Docker Hub repository, not a registry', () => {
  assert.deepEqual(parseReference('a.b'), { registry: 'docker.io', repository: 'library/a.b', tag: 'latest', digest: undefined });
  assert.deepEqual(parseReference('localhost'), { registry: 'docker.io', repository: 'library/localhost', tag: 'latest', digest: undefined });
});

test("Docker Hub's other names are docker.io", () => {
  for (const host of ['index.docker.io', 'registry-1.docker.io', 'docker.io']) assert.equal(parseReference(`${host}/library/x:1`).registry, 'docker.io', host);
});

test('the manifest endpoint gets the digest when pinned, else the tag, else latest; Docker Hub is served by registry-1', () => {
  assert.equal(manifestReference({ registry: 'r', repository: 'x', tag: 't', digest }), digest);
  assert.equal(manifestReference({ registry: 'r', repository: 'x', tag: 't' }), 't');
  assert.equal(manifestReference({ registry: 'r', repository: 'x' }), 'latest');
  assert.equal(registryEndpointHost('docker.io'), 'registry-1.docker.io');
  assert.equal(registryEndpointHost('quay.io'), 'quay.io');
});

test("skopeo's other transports are named, each; a name with such a word in it is still a reference", () => {
  for (const transport of ['dir', 'docker-daemon', 'oci-archive', 'containers-storage', 'ostree', 'sif']) {
    assert.throws(() => parseSource(`${transport}:x`), new RegExp(`^ReferenceError: the ${transport}: transport is not supported here`), transport);
  }
  assert.equal(parseSource('tarball:rootfs.tar').transport, 'tarball', 'tarball: is read now (img-fetch tarball:)');
  assert.equal(parseSource('lab/dir:1').transport, 'docker');
  assert.deepEqual(parseSource('busybox'), { transport: 'docker', reference: { registry: 'docker.io', repository: 'library/busybox', tag: 'latest', digest: undefined } });
});

test('oci: and docker-archive: need a path; an empty name is no name; sources format back as written', () => {
  for (const text of ['oci:', 'oci::name', 'docker-archive:', 'docker-archive::x']) assert.throws(() => parseSource(text), /missing the path after/, text);
  assert.deepEqual(parseSource('oci:/p:'), { transport: 'oci', path: '/p', name: undefined });
  for (const text of ['oci:/p:n', 'oci:/p', 'docker-archive:/a.tar:lab/x:1', `docker://quay.io/a/b@${digest}`]) assert.equal(formatSource(parseSource(text)), text);
});

test('a layout image name: runs of odd characters become one dash, none at the ends; tags up to 128 characters', () => {
  assert.equal(storeNameForLayoutImage('/tmp/My  ~~Layout', 'v1'), 'localhost/my-layout:v1');
  assert.equal(storeNameForLayoutImage('/tmp/--x--', 'v1'), 'localhost/x:v1');
  assert.equal(storeNameForLayoutImage('/tmp/##', undefined), 'localhost/layout:latest');
  assert.equal(storeNameForLayoutImage('/tmp/l', 't'.repeat(128)), `localhost/l:${'t'.repeat(128)}`);
  assert.equal(storeNameForLayoutImage('/tmp/l', 't'.repeat(129)), 't'.repeat(129));
});
