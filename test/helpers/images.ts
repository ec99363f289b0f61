/**
 * Test images the lab busybox does not cover, written as OCI layouts (the format skopeo and
 * umoci read) and pushed with skopeo: an image with large random layers, and a multi-arch
 * index built from the busybox layout.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { createGzip } from 'node:zlib';
import { randomBytes } from 'node:crypto';
import { create as createTar } from 'tar';
import { mustExec } from './exec.js';

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { os: string; architecture: string; variant?: string };
  annotations?: Record<string, string>;
}

async function hashFile(path: string): Promise<{ digest: string; size: number }> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return { digest: `sha256:${hash.digest('hex')}`, size: (await stat(path)).size };
}

async function initLayout(layout: string): Promise<void> {
  await mkdir(join(layout, 'blobs', 'sha256'), { recursive: true });
  await writeFile(join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  try {
    await stat(join(layout, 'index.json'));
  } catch {
    await writeFile(join(layout, 'index.json'), '{"schemaVersion":2,"manifests":[]}');
  }
}

async function putJson(layout: string, value: object, mediaType: string): Promise<Descriptor> {
  const body = Buffer.from(JSON.stringify(value));
  const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
  await writeFile(join(layout, 'blobs', 'sha256', digest.slice(7)), body);
  return { mediaType, digest, size: body.length };
}

async function addRef(layout: string, name: string, descriptor: Descriptor): Promise<void> {
  const indexPath = join(layout, 'index.json');
  const index = JSON.parse(await readFile(indexPath, 'utf8')) as { manifests: Descriptor[] };
  index.manifests = index.manifests.filter((m) => m.annotations?.['org.opencontainers.image.ref.name'] !== name);
  index.manifests.push({ ...descriptor, annotations: { 'org.opencontainers.image.ref.name': name } });
  await writeFile(indexPath, JSON.stringify(index));
}

/** Random bytes in a stream, without holding them all in memory. */
function randomStream(size: number): Readable {
  let left = size;
  return new Readable({
    read() {
      const n = Math.min(left, 1 << 20);
      left -= n;
      this.push(n > 0 ? randomBytes(n) : null);
    },
  });
}

/**
 * An OCI layout at `layout` with one image named `name`: each layer is a tar holding one file
 * of `size` random bytes (incompressible, so the layer is about that size), gzip level 1.
 */
export async function writeRandomImage(layout: string, name: string, layerSizes: number[], architecture = 'amd64'): Promise<{ manifest: Descriptor; layers: Descriptor[] }> {
  await initLayout(layout);
  const work = join(layout, '.work');
  await mkdir(work, { recursive: true });
  const layers: Descriptor[] = [];
  const diffIDs: string[] = [];
  try {
    for (const [i, size] of layerSizes.entries()) {
      const content = join(work, 'content');
      await rm(content, { recursive: true, force: true });
      await mkdir(content);
      await pipeline(randomStream(size), createWriteStream(join(content, `data-${i}.bin`)));
      const tarPath = join(work, 'layer.tar');
      await createTar({ cwd: content, file: tarPath, portable: true }, ['.']);
      diffIDs.push((await hashFile(tarPath)).digest);
      const gzPath = join(work, 'layer.tar.gz');
      await pipeline(createReadStream(tarPath, { highWaterMark: 1 << 20 }), createGzip({ level: 1 }), createWriteStream(gzPath));
      const { digest, size: gzSize } = await hashFile(gzPath);
      await rename(gzPath, join(layout, 'blobs', 'sha256', digest.slice(7)));
      layers.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest, size: gzSize });
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  const config = await putJson(
    layout,
    { created: new Date().toISOString(), architecture, os: 'linux', config: { Cmd: ['sh'] }, rootfs: { type: 'layers', diff_ids: diffIDs }, history: [] },
    'application/vnd.oci.image.config.v1+json',
  );
  const manifest = await putJson(layout, { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config, layers }, 'application/vnd.oci.image.manifest.v1+json');
  await addRef(layout, name, manifest);
  return { manifest, layers };
}

/**
 * From the lab busybox layout (scripts/build-busybox-image.sh WORKDIR: WORKDIR/layout, image
 * "busybox"), an arm64 variant (umoci config) and an OCI index `name` naming both.
 */
export async function writeMultiArchIndex(layout: string, name: string, hostArch: string): Promise<{ index: Descriptor; byArch: Record<string, Descriptor> }> {
  const otherArch = hostArch === 'arm64' ? 'amd64' : 'arm64';
  await mustExec('umoci', ['config', '--image', `${layout}:busybox`, '--tag', `busybox-${otherArch}`, '--architecture', otherArch]);
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: Descriptor[] };
  const named = (n: string) => {
    const found = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === n);
    if (!found) throw new Error(`${layout}: no image ${n}`);
    return { mediaType: found.mediaType, digest: found.digest, size: found.size };
  };
  const byArch: Record<string, Descriptor> = {
    [hostArch]: { ...named('busybox'), platform: { os: 'linux', architecture: hostArch } },
    [otherArch]: { ...named(`busybox-${otherArch}`), platform: { os: 'linux', architecture: otherArch, ...(otherArch === 'arm64' ? { variant: 'v8' } : {}) } },
  };
  const indexDescriptor = await putJson(layout, { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: Object.values(byArch) }, 'application/vnd.oci.image.index.v1+json');
  await addRef(layout, name, indexDescriptor);
  return { index: indexDescriptor, byArch };
}

/** Pushes an image from an OCI layout with skopeo (all of an index with `all`). */
export async function skopeoPush(source: string, destination: string, options: { all?: boolean; format?: 'oci' | 'v2s2'; creds?: string } = {}): Promise<void> {
  const args = ['copy', '-q', '--dest-tls-verify=false'];
  if (options.all) args.push('--all');
  if (options.format) args.push('--format', options.format);
  if (options.creds) args.push('--dest-creds', options.creds);
  await mustExec('skopeo', [...args, source, destination], { timeoutMs: 300_000 });
}

/** The file the registry keeps a blob's bytes in (filesystem storage driver). */
export function registryBlobData(registryDir: string, digest: string): string {
  const hex = digest.replace(/^sha256:/, '');
  return join(registryDir, 'storage', 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
}
