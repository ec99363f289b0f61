import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatPlatform, parseConfig, parseManifest, parsePlatform, selectPlatform, toOciManifest } from '../../lib/image/manifest.js';
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

test('every field the next step reads is checked on arrival, naming it (no JavaScript errors, no document the next command refuses)', () => {
  const oci = toOciManifest(dockerManifest, 'x');
  const with_ = (edit: (m: Record<string, unknown>) => void) => {
    const copy = JSON.parse(JSON.stringify(oci)) as Record<string, unknown>;
    edit(copy);
    return json(copy);
  };
  const layer0 = (m: Record<string, unknown>) => (m.layers as Array<Record<string, unknown>>)[0] as Record<string, unknown>;
  const refused: Array<[Buffer, RegExp]> = [
    [json(null), /^reg\/x:1: the manifest must be an object, got null$/],
    [with_((m) => (m.layers = [null])), /^reg\/x:1: layers\[0\] must be an object, got null$/],
    [with_((m) => delete layer0(m).mediaType), /^reg\/x:1: layers\[0\]\.mediaType is missing$/],
    [with_((m) => (layer0(m).mediaType = 'application/x-other')), /layers\[0\]\.mediaType "application\/x-other" is not a type this toolkit can use/],
    [with_((m) => (layer0(m).digest = 7)), /layers\[0\]\.digest: 7 is not a digest/],
    [with_((m) => (layer0(m).digest = `sha512:${'a'.repeat(128)}`)), /layers\[0\]\.digest is sha512: only sha256 blobs can be stored/],
    [with_((m) => (layer0(m).size = -1)), /layers\[0\]\.size must be a byte count, got -1/],
    [with_((m) => (layer0(m).size = '10')), /layers\[0\]\.size must be a byte count, got "10"/],
    [with_((m) => (m.config = null)), /^reg\/x:1: config must be an object, got null$/],
    [with_((m) => ((m.config as Record<string, unknown>).size = 5 << 20)), /config\.size is 5242880 bytes, more than the 4\.0 MiB allowed/],
    [with_((m) => (m.layers = {})), /layers must be a list, got an object/],
    [with_((m) => (m.schemaVersion = 3)), /schemaVersion must be 2, got 3/],
    [with_((m) => (m.annotations = { a: 1 })), /annotations\["a"\] must be a string, got number 1/],
    [json({ schemaVersion: 2, manifests: [{ mediaType: MEDIA_TYPES.ociManifest, digest: 'latest', size: 1 }] }), /manifests\[0\]\.digest: "latest" is not a digest/],
    [json({ schemaVersion: 2, manifests: [{ mediaType: MEDIA_TYPES.ociManifest, digest: d('a'), size: 1, platform: { os: 'linux' } }] }), /manifests\[0\]\.platform\.architecture is missing/],
    [json({ schemaVersion: 2, manifests: 'none' }), /manifests must be a list, got string "none"/],
  ];
  for (const [body, pattern] of refused) assert.throws(() => parseManifest(body, '', 'reg/x:1'), (e: unknown) => e instanceof UnsupportedError && pattern.test(e.message), body.toString().slice(0, 200));
  // An index entry may name its manifest by sha512 (the registry client verifies it); blobs must be sha256.
  const sha512Entry = json({ schemaVersion: 2, manifests: [{ mediaType: MEDIA_TYPES.ociManifest, digest: `sha512:${'b'.repeat(128)}`, size: 1 }] });
  assert.equal(parseManifest(sha512Entry, '', 'x').kind, 'index');
  assert.equal(parseManifest(json(oci), '', 'x').kind, 'image');
});

test('a config is checked in the fields the toolkit reads and capped at 4 MiB', () => {
  const config = { architecture: 'amd64', os: 'linux', config: { Env: ['A=1'], Cmd: null, Labels: { a: 'b' } }, rootfs: { type: 'layers', diff_ids: [d('1')] } };
  assert.deepEqual(parseConfig(json(config), 'c'), config);
  const refused: Array<[unknown, RegExp]> = [
    [{ ...config, rootfs: null }, /^config sha256:x: rootfs must be an object, got null$/],
    [{ ...config, rootfs: { type: 'layers' } }, /rootfs\.diff_ids is missing/],
    [{ ...config, rootfs: { type: 'x', diff_ids: [] } }, /rootfs\.type must be "layers", got "x"/],
    [{ ...config, rootfs: { type: 'layers', diff_ids: ['sha256:1'] } }, /rootfs\.diff_ids\[0\]: "sha256:1" is not a valid sha256 digest/],
    [{ ...config, config: { Env: [1] } }, /config\.Env\[0\] must be a string, got number 1/],
    [{ ...config, config: null }, /^config sha256:x: config must be an object, got null$/],
    [{ ...config, os: 5 }, /^config sha256:x: os must be a string, got number 5$/],
    [[], /the config must be an object, got a list/],
  ];
  for (const [value, pattern] of refused) assert.throws(() => parseConfig(json(value), 'config sha256:x'), (e: unknown) => e instanceof UnsupportedError && pattern.test(e.message), JSON.stringify(value));
  assert.throws(() => parseConfig(Buffer.from('{'), 'config sha256:x'), { message: 'config sha256:x: the config is not valid JSON' });
  assert.throws(() => parseConfig(Buffer.alloc((4 << 20) + 1, 32), 'config sha256:x'), /the config is 4194305 bytes, more than the 4\.0 MiB allowed/);
});
