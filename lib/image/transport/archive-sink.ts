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
      await put(out, tarHeader(member, (await stat(path)).size));
      for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) await put(out, chunk as Buffer);
      await put(out, padding((await stat(path)).size));
    }
    await put(out, tarHeader('manifest.json', index.length));
    await put(out, Buffer.concat([index, padding(index.length), Buffer.alloc(1024)]));
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

function padding(size: number): Buffer {
  return Buffer.alloc((512 - (size % 512)) % 512);
}

/** A ustar header of a regular file (mode 0644, owner 0, mtime 0); a size past 8 GiB in base-256, as GNU tar writes it. */
function tarHeader(name: string, size: number): Buffer {
  const header = Buffer.alloc(512);
  header.write(name, 0, 100, 'utf8');
  header.write('0000644\0', 100, 'latin1');
  header.write('0000000\0', 108, 'latin1');
  header.write('0000000\0', 116, 'latin1');
  if (size < 8 ** 11) header.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 'latin1');
  else {
    header[124] = 0x80;
    header.writeBigUInt64BE(BigInt(size), 124 + 4);
  }
  header.write('00000000000\0', 136, 'latin1');
  header.write('        ', 148, 'latin1');
  header.write('0', 156, 'latin1');
  header.write('ustar\u000000', 257, 'latin1');
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return header;
}
