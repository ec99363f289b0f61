/**
 * A one-layer OCI image layout for the benchmarks, from a shell command that writes the
 * layer's tar on stdout: the tar is gzipped into the blob and hashed (the diff_id) as it
 * streams, so multi-GiB layers never sit in memory or on disk uncompressed.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Writes the image `tag` into `layout` and returns the path of its gzip layer blob. */
export function writeSingleLayerImage(layout: string, tag: string, tarCommand: string): string {
  const blobs = join(layout, 'blobs', 'sha256');
  mkdirSync(blobs, { recursive: true });
  const staged = join(layout, 'layer.tar.gz');
  const diffFile = join(layout, 'diff_id');
  execFileSync('bash', ['-o', 'pipefail', '-c', `${tarCommand} | tee >(sha256sum | cut -d' ' -f1 > ${diffFile}) | gzip -n > ${staged}`], { stdio: ['ignore', 'ignore', 'inherit'] });
  // The process substitution may finish after the pipeline: wait for its output.
  execFileSync('bash', ['-c', `while [ ! -s ${diffFile} ]; do sleep 0.1; done`]);
  const diffID = `sha256:${readFileSync(diffFile, 'utf8').trim()}`;
  rmSync(diffFile);
  const layerDigest = execFileSync('sha256sum', [staged], { encoding: 'utf8' }).split(' ')[0] as string;
  const layerSize = Number(execFileSync('stat', ['-c', '%s', staged], { encoding: 'utf8' }).trim());
  const blob = join(blobs, layerDigest);
  renameSync(staged, blob);
  const put = (data: string) => {
    const digest = createHash('sha256').update(data).digest('hex');
    writeFileSync(join(blobs, digest), data);
    return { digest: `sha256:${digest}`, size: Buffer.byteLength(data) };
  };
  const arch = process.arch === 'x64' ? 'amd64' : process.arch;
  const config = put(JSON.stringify({ architecture: arch, os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [diffID] } }));
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${layerDigest}`, size: layerSize }],
  });
  const manifestDescriptor = { mediaType: 'application/vnd.oci.image.manifest.v1+json', ...put(manifest), annotations: { 'org.opencontainers.image.ref.name': tag } };
  writeFileSync(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [manifestDescriptor] }));
  return blob;
}
