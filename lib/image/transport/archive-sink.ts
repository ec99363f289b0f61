/**
 * A `docker save` archive as a sink (`docker-archive:FILE[:REF]`), loadable by `podman load`
 * and `docker load`: manifest.json naming the config (`HEX.json`) and the layers (`HEX.tar`, as
 * the source stores them: compressed layers stay compressed, both loaders detect it), and
 * RepoTags [REF]. The blobs are staged in a dir: layout beside FILE; the tar is written to a
 * temp file at commit and renamed over FILE, so FILE is the whole archive or untouched.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { once } from 'node:events';
import { digestHex } from '../../core/digest.js';
import { asWriteError } from '../store/errors.js';
import { dirSink } from './dir.js';
import type { ImageSink, SinkWrite } from '../image.js';
import type { ImageManifest } from '../model.js';
import { TAR_END, tarHeader, tarPadding } from '../../core/tar-writer.js';

export async function archiveSink(file: string, name: string): Promise<ImageSink> {
  return {
    path: `docker-archive:${file}`,
    async begin() {
      const staging = await mkdtemp(join(dirname(file), `.${basename(file)}.`)).catch((err) => Promise.reject(asWriteError(err, dirname(file))));
      const inner = await (await dirSink(staging)).begin();
      let manifest: ImageManifest | undefined;
      const write: SinkWrite = {
        ...inner,
        async stageManifest(image, imageName) {
          manifest = image.manifest;
          return inner.stageManifest(image, imageName);
        },
        async commit(descriptor, imageName, platform) {
          await inner.commit(descriptor, imageName, platform);
          await writeArchive(file, staging, manifest as ImageManifest, name).catch((err) => Promise.reject(asWriteError(err, file)));
          await rm(staging, { recursive: true, force: true });
        },
        async abort() {
          await inner.abort();
          await rm(staging, { recursive: true, force: true });
        },
      };
      return write;
    },
  };
}

async function writeArchive(file: string, staging: string, manifest: ImageManifest, name: string): Promise<void> {
  const config = `${digestHex(manifest.config.digest)}.json`;
  const layers = manifest.layers.map((layer) => `${digestHex(layer.digest)}.tar`);
  const index = Buffer.from(`${JSON.stringify([{ Config: config, RepoTags: [name], Layers: layers }])}\n`);
  const temp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  const out = createWriteStream(temp);
  try {
    const members = [{ member: config, path: join(staging, digestHex(manifest.config.digest)) }];
    manifest.layers.forEach((layer, i) => members.push({ member: layers[i] as string, path: join(staging, digestHex(layer.digest)) }));
    const written = new Set<string>();
    for (const { member, path } of members) {
      if (written.has(member)) continue;
      written.add(member);
      const { size } = await stat(path);
      await put(out, archiveFileHeader(member, size));
      for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) await put(out, chunk as Buffer);
      await put(out, tarPadding(size));
    }
    await put(out, archiveFileHeader('manifest.json', index.length));
    await put(out, Buffer.concat([index, tarPadding(index.length), TAR_END]));
    out.end();
    await once(out, 'close');
    await rename(temp, file);
  } catch (err) {
    out.destroy();
    await rm(temp, { force: true });
    throw err;
  }
}

async function put(out: NodeJS.WritableStream, chunk: Buffer): Promise<void> {
  if (!out.write(chunk)) await once(out, 'drain');
}

/** A member of the archive: a regular file, mode 0644, owner 0, mtime 0, as docker save writes them. */
function archiveFileHeader(name: string, size: number): Buffer {
  return tarHeader({ name, type: 'file', mode: 0o644, uid: 0, gid: 0, size, mtime: 0 });
}
