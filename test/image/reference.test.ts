import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatReference, parseReference, parseSource, storeNameForLayoutImage } from '../../lib/image/reference.js';
import { ReferenceError } from '../../lib/core/errors.js';

test('short names expand as docker and podman expand them', () => {
  assert.equal(formatReference(parseReference('busybox')), 'docker.io/library/busybox:latest');
  assert.equal(formatReference(parseReference('lab/busybox:1.36')), 'docker.io/lab/busybox:1.36');
  assert.equal(formatReference(parseReference('index.docker.io/library/debian')), 'docker.io/library/debian:latest');
});

test('host:port, tags and digests', () => {
  const digest = `sha256:${'a'.repeat(64)}`;
  assert.deepEqual(parseReference('127.0.0.1:5000/lab/busybox:latest'), { registry: '127.0.0.1:5000', repository: 'lab/busybox', tag: 'latest', digest: undefined });
  assert.deepEqual(parseReference(`localhost/x@${digest}`), { registry: 'localhost', repository: 'x', tag: undefined, digest });
  assert.equal(formatReference(parseReference(`quay.io/a/b:t@${digest}`)), `quay.io/a/b:t@${digest}`);
});

test('bad references are usage errors that say what is wrong', () => {
  assert.throws(() => parseReference('Busybox'), (e: unknown) => e instanceof ReferenceError && /repository name/.test(e.message));
  assert.throws(() => parseReference('busybox@sha256:abc'), /invalid digest/);
  assert.throws(() => parseReference('busybox@sha512:../../..'), (e: unknown) => e instanceof ReferenceError && /invalid digest "sha512:\.\.\/\.\.\/\.\." in reference/.test(e.message));
  assert.throws(() => parseReference(`busybox@sha512:${'a'.repeat(128)}`), (e: unknown) => e instanceof ReferenceError && /only a sha256 digest can pin an image here/.test(e.message));
  assert.throws(() => parseReference('busybox:-x'), /invalid tag/);
  assert.throws(() => parseReference(''), /empty/);
});

test('sources are named as skopeo names them', () => {
  assert.deepEqual(parseSource('oci:/tmp/layout:latest'), { transport: 'oci', path: '/tmp/layout', name: 'latest' });
  assert.deepEqual(parseSource('oci:/tmp/layout:127.0.0.1:5000/lab/busybox:latest'), { transport: 'oci', path: '/tmp/layout', name: '127.0.0.1:5000/lab/busybox:latest' });
  assert.deepEqual(parseSource('docker-archive:/tmp/a.tar'), { transport: 'docker-archive', path: '/tmp/a.tar', name: undefined });
  assert.equal(parseSource('docker://busybox').transport, 'docker');
  assert.equal(parseSource('busybox:latest').transport, 'docker');
  assert.throws(() => parseSource('docker-daemon:busybox:latest'), /docker-daemon: transport is not supported/);
});

test('an image from an OCI layout: a bare tag is qualified as localhost/<layout>, a full name kept', () => {
  assert.equal(storeNameForLayoutImage('/tmp/My Layout', 'v1'), 'localhost/my-layout:v1');
  assert.equal(storeNameForLayoutImage('/tmp/lay', undefined), 'localhost/lay:latest');
  assert.equal(storeNameForLayoutImage('/tmp/lay', 'lab/x:1'), 'lab/x:1');
  assert.equal(storeNameForLayoutImage('/tmp/lay', '127.0.0.1:5000/lab/busybox:latest'), '127.0.0.1:5000/lab/busybox:latest');
});
