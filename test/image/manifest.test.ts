import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatPlatform, parseManifest, parsePlatform, selectPlatform, toOciManifest } from '../../lib/image/manifest.js';
import { MEDIA_TYPES, type ImageIndex, type ImageManifest } from '../../lib/image/model.js';
import { NotFoundError, UnsupportedError, UsageError } from '../../lib/core/errors.js';
import { ociSchema } from '../helpers/oci-schema.js';

const d = (c: string) => `sha256:${c.repeat(64)}`;
const json = (v: unknown) => Buffer.from(JSON.stringify(v));

const dockerManifest: ImageManifest = {
  schemaVersion: 2,
  mediaType: MEDIA_TYPES.dockerManifest,
  config: { mediaType: MEDIA_TYPES.dockerConfig, digest: d('c'), size: 100 },
  layers: [
    { mediaType: MEDIA_TYPES.dockerLayerGzip, digest: d('1'), size: 10 },
    { mediaType: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', digest: d('2'), size: 20, urls: ['https://example.com/l'] },
  ],
};

test('manifests and indexes are classified by their own mediaType, or by their shape', () => {
  assert.equal(parseManifest(json(dockerManifest), 'text/plain', 'x').kind, 'image');
  assert.equal(parseManifest(json({ schemaVersion: 2, manifests: [] }), '', 'x').kind, 'index');
  assert.equal(parseManifest(json({ schemaVersion: 2, config: dockerManifest.config, layers: [] }), '', 'x').mediaType, MEDIA_TYPES.ociManifest);
  assert.equal(parseManifest(json({ schemaVersion: 2, manifests: [] }), MEDIA_TYPES.dockerManifestList, 'x').mediaType, MEDIA_TYPES.dockerManifestList);
});

test('schema1, unknown media types, and broken JSON are refused with one clear line', () => {
  assert.throws(() => parseManifest(json({ schemaVersion: 1, fsLayers: [] }), MEDIA_TYPES.dockerSchema1Signed, 'reg/x:1'), (e: unknown) => e instanceof UnsupportedError && /^reg\/x:1: Docker schema1 manifests are not supported/.test(e.message));
  assert.throws(() => parseManifest(json({ schemaVersion: 2, mediaType: 'application/vnd.cncf.helm.config.v1+json' }), '', 'x'), /unsupported manifest media type "application\/vnd\.cncf\.helm/);
  assert.throws(() => parseManifest(Buffer.from('{"schemaVersion":'), '', 'x'), /not valid JSON/);
  assert.throws(() => parseManifest(json({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociManifest }), '', 'x'), /without config or layers/);
});

test('a platform is chosen like containerd: arm64 implies v8; a missing one lists what there is', () => {
  const index: ImageIndex = {
    schemaVersion: 2,
    manifests: [
      { mediaType: MEDIA_TYPES.ociManifest, digest: d('a'), size: 1, platform: { os: 'linux', architecture: 'amd64' } },
      { mediaType: MEDIA_TYPES.ociManifest, digest: d('b'), size: 1, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
      { mediaType: MEDIA_TYPES.ociManifest, digest: d('e'), size: 1, platform: { os: 'linux', architecture: 'arm', variant: 'v7' } },
    ],
  };
  assert.equal(selectPlatform(index, { os: 'linux', architecture: 'arm64' }, 'x').digest, d('b'));
  assert.equal(selectPlatform(index, parsePlatform('linux/arm/v7'), 'x').digest, d('e'));
  assert.throws(() => selectPlatform(index, parsePlatform('linux/arm/v6'), 'x'), (e: unknown) => e instanceof NotFoundError && /no image for linux\/arm\/v6 \(the index has: linux\/amd64, linux\/arm64\/v8, linux\/arm\/v7\)/.test(e.message));
  assert.throws(() => parsePlatform('linux'), UsageError);
  assert.equal(formatPlatform(parsePlatform('linux/arm64/v8')), 'linux/arm64/v8');
});

test('a Docker schema2 manifest converts to a valid OCI manifest with the same blobs', () => {
  const oci = toOciManifest(dockerManifest, 'x');
  ociSchema('image-manifest-schema.json')(oci);
  assert.throws(() => ociSchema('image-manifest-schema.json')({ ...oci, schemaVersion: 3 }), /schemaVersion/, 'the schema oracle rejects what it should');
  assert.equal(oci.mediaType, MEDIA_TYPES.ociManifest);
  assert.equal(oci.config.mediaType, MEDIA_TYPES.ociConfig);
  assert.deepEqual(oci.layers.map((l) => l.mediaType), [MEDIA_TYPES.ociLayerGzip, 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip']);
  assert.deepEqual([oci.config, ...oci.layers].map((b) => [b.digest, b.size]), [dockerManifest.config, ...dockerManifest.layers].map((b) => [b.digest, b.size]));
  assert.deepEqual(oci.layers[1]?.urls, ['https://example.com/l']);
  const odd = { ...dockerManifest, layers: [{ mediaType: 'application/x-something', digest: d('3'), size: 1 }] };
  assert.throws(() => toOciManifest(odd, 'reg/x:1'), /reg\/x:1: cannot store blob sha256:3+ of media type "application\/x-something"/);
});
