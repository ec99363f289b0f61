/**
 * A crafted registry: a small node HTTP server on 127.0.0.1 and a free port that speaks enough
 * of the distribution API (/v2/, manifests by tag and digest, blobs with Range) to serve one
 * small image per repository, and misbehaves per repository, the way go-containerregistry's
 * tests build one server per case. `case/NAME` serves its own image (fresh random layer, so no
 * case finds its blobs in a store already) through the behaviour registered as NAME; `case/ok`
 * serves honestly. Every request is recorded (path, Range), so a test can say
 * what was asked and how often. The real docker-registry (registry.ts) is for everything else.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { hostPlatform } from '../../lib/image/manifest.js';
import { MEDIA_TYPES } from '../../lib/image/model.js';

export interface CraftedImage {
  manifest: Buffer;
  manifestDigest: string;
  config: Buffer;
  configDigest: string;
  layer: Buffer;
  layerDigest: string;
}

export interface CraftedRequest {
  repository: string;
  kind: 'manifests' | 'blobs';
  reference: string;
  range?: string;
}

/** What a case sees: the request, its parts, how many times this path was asked before, and the image. */
export interface CaseContext {
  req: IncomingMessage;
  res: ServerResponse;
  kind: 'manifests' | 'blobs';
  reference: string;
  seen: number;
  image: CraftedImage;
}

/** Answers a request its own way, or returns 'honest' to let the image be served as it is. */
export type CraftedCase = (ctx: CaseContext) => void | 'honest';

export interface CraftedRegistry {
  host: string;
  /** The image `case/NAME` serves. */
  imageOf(name: string): CraftedImage;
  requests: CraftedRequest[];
  /** Requests for one repository (`case/NAME`). */
  requestsOf(name: string): CraftedRequest[];
  stop(): Promise<void>;
}

export const sha256 = (data: Buffer): string => `sha256:${createHash('sha256').update(data).digest('hex')}`;
export const sha512 = (data: Buffer): string => `sha512:${createHash('sha512').update(data).digest('hex')}`;
export const json = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));

/** A one-layer image for the host's platform; the layer is uncompressed, so its digest is its diff_id. */
export function craftImage(layerBytes = 256 << 10, edit: { manifest?: (m: Record<string, unknown>) => void; config?: (c: Record<string, unknown>) => void } = {}): CraftedImage {
  const layer = randomBytes(layerBytes);
  const platform = hostPlatform();
  const configValue: Record<string, unknown> = { architecture: platform.architecture, os: platform.os, rootfs: { type: 'layers', diff_ids: [sha256(layer)] }, config: { Cmd: ['/bin/sh'] } };
  edit.config?.(configValue);
  const config = json(configValue);
  const manifestValue: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.ociManifest,
    config: { mediaType: MEDIA_TYPES.ociConfig, digest: sha256(config), size: config.length },
    layers: [{ mediaType: MEDIA_TYPES.ociLayer, digest: sha256(layer), size: layer.length }],
  };
  edit.manifest?.(manifestValue);
  const manifest = json(manifestValue);
  return { manifest, manifestDigest: sha256(manifest), config, configDigest: sha256(config), layer, layerDigest: sha256(layer) };
}

/** An index with one entry for the host platform. */
export function indexOf(entry: Record<string, unknown>): Buffer {
  return json({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests: [{ mediaType: MEDIA_TYPES.ociManifest, platform: hostPlatform(), ...entry }] });
}

/** Serves the image honestly: manifests by tag or digest, blobs with Range. */
export function serveHonestly(ctx: CaseContext, images: Map<string, { body: Buffer; type: string }>): void {
  const { req, res, kind, reference, image } = ctx;
  const content =
    kind === 'manifests'
      ? reference === 'latest' || reference === image.manifestDigest
        ? { body: image.manifest, type: MEDIA_TYPES.ociManifest }
        : images.get(reference)
      : [image.config, image.layer].map((body) => ({ body, type: 'application/octet-stream' })).find((c) => sha256(c.body) === reference);
  if (!content) {
    res.writeHead(404, { 'Content-Type': 'application/json' }).end('{"errors":[{"code":"UNKNOWN"}]}');
    return;
  }
  const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  const from = range ? Number(range[1]) : 0;
  const headers = { 'Content-Type': content.type, 'Docker-Content-Digest': sha256(content.body), 'Content-Length': content.body.length - from };
  if (range) res.writeHead(206, { ...headers, 'Content-Range': `bytes ${from}-${content.body.length - 1}/${content.body.length}` });
  else res.writeHead(200, headers);
  res.end(req.method === 'HEAD' ? undefined : content.body.subarray(from));
}

/** Writes `chunk` for as long as the client reads (an endless body). */
export function writeForever(res: ServerResponse, chunk: Buffer): void {
  const pump = () => {
    while (!res.destroyed && res.write(chunk));
    if (!res.destroyed) res.once('drain', pump);
  };
  pump();
}

/** Sends the first `bytes` of `body` under a Content-Length of the whole, then drops the connection. */
export function cutAfter(res: ServerResponse, body: Buffer, bytes: number, status = 200, extra: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Length': body.length, ...extra });
  res.write(body.subarray(0, bytes), () => res.destroy());
}

/** Starts the server with `cases` by name, `images` for the cases that need a crafted one, and `manifests` served by digest besides each image's own. */
export async function startCraftedRegistry(options: { cases: Record<string, CraftedCase>; images?: Record<string, CraftedImage>; manifests?: Map<string, { body: Buffer; type: string }> }): Promise<CraftedRegistry> {
  const images = new Map(Object.entries(options.images ?? {}));
  const imageOf = (name: string): CraftedImage => {
    if (!images.has(name)) images.set(name, craftImage());
    return images.get(name) as CraftedImage;
  };
  const manifests = options.manifests ?? new Map();
  const requests: CraftedRequest[] = [];
  const sockets = new Set<Socket>();
  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    if (url === '/v2/' || url === '/v2') {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Docker-Distribution-API-Version': 'registry/2.0' }).end('{}');
      return;
    }
    const match = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(url);
    if (!match) {
      requests.push({ repository: '', kind: 'blobs', reference: url });
      res.writeHead(404).end();
      return;
    }
    const [, repository, kind, reference] = match as unknown as [string, string, 'manifests' | 'blobs', string];
    const seen = requests.filter((r) => r.repository === repository && r.kind === kind && r.reference === reference).length;
    requests.push({ repository, kind, reference: decodeURIComponent(reference), ...(req.headers.range ? { range: req.headers.range } : {}) });
    const name = repository.startsWith('case/') ? repository.slice('case/'.length) : '';
    const behaviour = options.cases[name];
    const ctx: CaseContext = { req, res, kind, reference: decodeURIComponent(reference), seen, image: imageOf(name) };
    if (name !== 'ok' && !behaviour) {
      res.writeHead(404).end();
      return;
    }
    if (!behaviour || behaviour(ctx) === 'honest') serveHonestly(ctx, manifests);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    host: `127.0.0.1:${port}`,
    imageOf,
    requests,
    requestsOf: (name) => requests.filter((r) => r.repository === `case/${name}`),
    async stop() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
