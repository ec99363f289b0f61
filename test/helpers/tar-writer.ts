/**
 * Tricky and hostile layers for the tests, written by python3's tarfile (a writer other
 * than ours, so the tests do not only read back what our own code wrote), and images made
 * of them as OCI layouts that both img-unpack (--store DIR --image TAG) and umoci read.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { mustExec } from './exec.js';

export interface EntrySpec {
  name: string;
  type?: 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
  content?: string;
  /** A file of this many zero bytes instead of content. */
  zeros?: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** xattr name → raw value (binary-safe), written as PAX SCHILY.xattr.NAME. */
  xattrs?: Record<string, Buffer>;
}

export type TarFormat = 'pax' | 'gnu';

export const WRITER = String.raw`
import io, json, sys, tarfile
spec = json.load(sys.stdin)
fmt = tarfile.PAX_FORMAT if spec["format"] == "pax" else tarfile.GNU_FORMAT
out = sys.stdout.buffer
with tarfile.open(fileobj=out, mode="w|", format=fmt) as tar:
    for e in spec["entries"]:
        info = tarfile.TarInfo(e["name"])
        kind = e.get("type", "file")
        info.type = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE,
                     "char": tarfile.CHRTYPE, "block": tarfile.BLKTYPE, "fifo": tarfile.FIFOTYPE}[kind]
        info.mode = e.get("mode", 0o755 if kind == "dir" else 0o644)
        info.uid = e.get("uid", 0)
        info.gid = e.get("gid", 0)
        info.uname = info.gname = ""
        info.mtime = e.get("mtime", 1700000000)
        info.linkname = e.get("linkname", "")
        info.devmajor = e.get("devmajor", 0)
        info.devminor = e.get("devminor", 0)
        if e.get("xattrs"):
            info.pax_headers = {"SCHILY.xattr." + k: bytes.fromhex(v).decode("utf-8", "surrogateescape") for k, v in e["xattrs"].items()}
        data = None
        if kind == "file":
            if "zeros" in e:
                info.size = e["zeros"]
                class Zeros(io.RawIOBase):
                    def __init__(self, n): self.left = n
                    def readable(self): return True
                    def readinto(self, b):
                        n = min(len(b), self.left); b[:n] = bytes(n); self.left -= n; return n
                data = io.BufferedReader(Zeros(info.size), 1 << 20)
            else:
                raw = e.get("content", "").encode("utf-8")
                info.size = len(raw)
                data = io.BytesIO(raw)
        tar.addfile(info, data)
`;

/** An uncompressed layer tar. */
export async function writeTar(entries: EntrySpec[], format: TarFormat = 'pax'): Promise<Buffer> {
  const spec = {
    format,
    entries: entries.map((e) => ({ ...e, xattrs: e.xattrs ? Object.fromEntries(Object.entries(e.xattrs).map(([k, v]) => [k, v.toString('hex')])) : undefined })),
  };
  const out = await execBuffer('python3', ['-c', WRITER], JSON.stringify(spec));
  return out;
}

async function execBuffer(program: string, args: string[], input: string): Promise<Buffer> {
  const { spawn } = await import('node:child_process');
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(Buffer.concat(out)) : reject(new Error(`${program} exited ${code}: ${err}`))));
    child.stdin.end(input);
  });
}

export type Compression = 'gzip' | 'zstd' | 'none';

export interface LayerBlob {
  tar: Buffer;
  compression?: Compression;
  /** Write this as the config's diff_id instead of the real one (to test the check). */
  diffID?: string;
  /** Store these bytes as the blob instead of the compressed tar (a corrupt layer). */
  stored?: Buffer;
}

const MEDIA = { gzip: 'application/vnd.oci.image.layer.v1.tar+gzip', zstd: 'application/vnd.oci.image.layer.v1.tar+zstd', none: 'application/vnd.oci.image.layer.v1.tar' };

function sha256(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** Writes (or adds to) an OCI layout at `layout` with an image `tag` made of `layers`, lowest first. */
export async function writeImage(layout: string, tag: string, layers: LayerBlob[]): Promise<void> {
  const blobs = join(layout, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  await writeFile(join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  const put = async (data: Buffer) => {
    const digest = sha256(data);
    await writeFile(join(blobs, digest.slice(7)), data);
    return { digest, size: data.length };
  };
  const descriptors = [];
  const diffIDs = [];
  for (const layer of layers) {
    const compression = layer.compression ?? 'gzip';
    const blob = layer.stored ?? (compression === 'gzip' ? gzipSync(layer.tar) : compression === 'zstd' ? await zstd(layer.tar) : layer.tar);
    descriptors.push({ mediaType: MEDIA[compression], ...(await put(blob)) });
    diffIDs.push(layer.diffID ?? sha256(layer.tar));
  }
  const arch = process.arch === 'x64' ? 'amd64' : process.arch;
  const config = { architecture: arch, os: 'linux', config: { Cmd: ['/bin/sh'] }, rootfs: { type: 'layers', diff_ids: diffIDs }, history: layers.map(() => ({ created_by: 'test' })) };
  const configDescriptor = { mediaType: 'application/vnd.oci.image.config.v1+json', ...(await put(Buffer.from(JSON.stringify(config)))) };
  const manifest = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: configDescriptor, layers: descriptors };
  const manifestDescriptor = { mediaType: manifest.mediaType, ...(await put(Buffer.from(JSON.stringify(manifest)))) };
  let index: { schemaVersion: number; manifests: Array<{ annotations?: Record<string, string> }> } = { schemaVersion: 2, manifests: [] };
  try {
    index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8'));
  } catch {
    // a new layout
  }
  index.manifests = index.manifests.filter((m) => m.annotations?.['org.opencontainers.image.ref.name'] !== tag);
  index.manifests.push({ ...manifestDescriptor, annotations: { 'org.opencontainers.image.ref.name': tag } });
  await writeFile(join(layout, 'index.json'), JSON.stringify(index));
}

async function zstd(data: Buffer): Promise<Buffer> {
  const { spawnSync } = await import('node:child_process');
  const result = spawnSync('zstd', ['-q', '-c'], { input: data, maxBuffer: 1 << 30 });
  if (result.status !== 0) throw new Error(`zstd failed: ${result.stderr.toString()}`);
  return result.stdout;
}

/** umoci's view of the same image: its rootfs (BUNDLE/rootfs). */
export async function umociUnpack(layout: string, tag: string, bundle: string, extra: string[] = []): Promise<string> {
  await mustExec('umoci', ['unpack', ...extra, '--image', `${layout}:${tag}`, bundle]);
  return join(bundle, 'rootfs');
}
