/**
 * A crafted registry for pushes: a small node HTTP server on 127.0.0.1 and a free port that
 * takes uploads as distribution-spec describes them (POST, PATCH with Content-Range, GET of
 * the upload's status, the closing PUT, HEAD, mounts, manifest PUT) and misbehaves on demand:
 * relative Locations, OCI-Chunk-Min-Length, a 413 for a whole-blob PUT, a PATCH cut in the
 * middle (keeping what arrived, as a registry that supports resuming does), 429s, DENIED, a
 * lying Docker-Content-Digest. Every request is recorded.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';

export interface PushRegistryOptions {
  /** Sent as OCI-Chunk-Min-Length on POST. */
  minChunk?: number;
  /** A whole-blob PUT larger than this is refused with 413. */
  maxPut?: number;
  /** The next PATCH is cut after this many bytes of its body (which are kept). */
  cutPatchAfter?: number;
  /** The first N POSTs get 429 with Retry-After: 1. */
  tooMany?: number;
  /** The manifest PUT answers with this Docker-Content-Digest. */
  lyingDigest?: string;
}

export interface PushedRequest {
  method: string;
  path: string;
  contentRange?: string;
  bodyBytes: number;
}

export interface PushRegistry {
  host: string;
  options: PushRegistryOptions;
  requests: PushedRequest[];
  blobs: Map<string, Buffer>;
  manifests: Map<string, { type: string; body: Buffer }>;
  stop(): Promise<void>;
}

const sha256 = (data: Buffer) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

function fail(res: ServerResponse, status: number, code: string, message: string): void {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify({ errors: [{ code, message, detail: null }] }));
}

export async function startPushRegistry(options: PushRegistryOptions = {}): Promise<PushRegistry> {
  const requests: PushedRequest[] = [];
  const blobs = new Map<string, Buffer>();
  const manifests = new Map<string, { type: string; body: Buffer }>();
  const uploads = new Map<string, Buffer[]>();
  const size = (id: string) => (uploads.get(id) ?? []).reduce((n, b) => n + b.length, 0);

  const handle = async (req: IncomingMessage, res: ServerResponse, body: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const path = url.pathname;
    const upload = /^\/v2\/(.+)\/blobs\/uploads\/([a-f0-9]*)$/.exec(path);
    const blob = /^\/v2\/(.+)\/blobs\/(sha256:[a-f0-9]{64})$/.exec(path);
    const manifest = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(path);
    if (path === '/v2/') return void res.writeHead(200).end('{}');
    if (upload && req.method === 'POST') {
      if (upload[1]?.startsWith('denied/')) return fail(res, 403, 'DENIED', 'requested access to the resource is denied');
      if ((options.tooMany ?? 0) > 0) {
        options.tooMany = (options.tooMany ?? 0) - 1;
        res.writeHead(429, { 'Retry-After': '1' });
        return void res.end();
      }
      const mount = url.searchParams.get('mount');
      if (mount && blobs.has(mount)) return void res.writeHead(201, { Location: `/v2/${upload[1]}/blobs/${mount}`, 'Docker-Content-Digest': mount }).end();
      const id = randomBytes(8).toString('hex');
      uploads.set(id, []);
      // Relative to the request's URL: /v2/REPO/blobs/uploads/ID.
      const headers: Record<string, string> = { Location: `${id}?_state=0`, 'Docker-Upload-UUID': id, Range: '0-0' };
      if (options.minChunk) headers['OCI-Chunk-Min-Length'] = String(options.minChunk);
      return void res.writeHead(202, headers).end();
    }
    if (upload && upload[2]) {
      const id = upload[2];
      if (!uploads.has(id)) return fail(res, 404, 'BLOB_UPLOAD_UNKNOWN', 'blob upload unknown to registry');
      const parts = uploads.get(id) as Buffer[];
      const here = { Location: `/v2/${upload[1]}/blobs/uploads/${id}?_state=${size(id)}`, Range: `0-${Math.max(0, size(id) - 1)}`, 'Docker-Upload-UUID': id };
      if (req.method === 'GET') return void res.writeHead(204, here).end();
      if (req.method === 'PATCH') {
        const start = Number(/^(\d+)-\d+$/.exec(req.headers['content-range'] ?? '')?.[1] ?? size(id));
        if (start !== size(id)) return fail(res, 416, 'BLOB_UPLOAD_INVALID', `range starts at ${start}, upload is at ${size(id)}`);
        parts.push(body);
        const after = { ...here, Location: `/v2/${upload[1]}/blobs/uploads/${id}?_state=${size(id)}`, Range: `0-${size(id) - 1}` };
        return void res.writeHead(202, after).end();
      }
      if (req.method === 'PUT') {
        if (options.maxPut !== undefined && body.length > options.maxPut) return fail(res, 413, 'SIZE_INVALID', 'too large for one request');
        const content = Buffer.concat([...parts, body]);
        const digest = url.searchParams.get('digest') ?? '';
        if (sha256(content) !== digest) return fail(res, 400, 'DIGEST_INVALID', 'provided digest did not match uploaded content');
        blobs.set(digest, content);
        uploads.delete(id);
        return void res.writeHead(201, { Location: `/v2/${upload[1]}/blobs/${digest}`, 'Docker-Content-Digest': digest }).end();
      }
    }
    if (blob && (req.method === 'HEAD' || req.method === 'GET')) {
      const content = blobs.get(blob[2] as string);
      if (!content) return fail(res, 404, 'BLOB_UNKNOWN', 'blob unknown to registry');
      res.writeHead(200, { 'Content-Length': content.length, 'Docker-Content-Digest': blob[2] });
      return void res.end(req.method === 'GET' ? content : undefined);
    }
    if (manifest && req.method === 'PUT') {
      const stored = { type: req.headers['content-type'] ?? '', body };
      manifests.set(`${manifest[1]}:${manifest[2]}`, stored);
      manifests.set(`${manifest[1]}@${sha256(body)}`, stored);
      return void res.writeHead(201, { 'Docker-Content-Digest': options.lyingDigest ?? sha256(body) }).end();
    }
    if (manifest && req.method === 'GET') {
      const stored = manifests.get(`${manifest[1]}:${manifest[2]}`) ?? manifests.get(`${manifest[1]}@${manifest[2]}`);
      if (!stored) return fail(res, 404, 'MANIFEST_UNKNOWN', 'manifest unknown');
      return void res.writeHead(200, { 'Content-Type': stored.type, 'Content-Length': stored.body.length, 'Docker-Content-Digest': sha256(stored.body) }).end(stored.body);
    }
    fail(res, 404, 'NOT_FOUND', `${req.method} ${path}`);
  };

  const server = http.createServer((req, res) => {
    const record: PushedRequest = { method: req.method ?? '', path: req.url ?? '', contentRange: req.headers['content-range'], bodyBytes: 0 };
    requests.push(record);
    const chunks: Buffer[] = [];
    const cut = req.method === 'PATCH' ? options.cutPatchAfter : undefined;
    req.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      record.bodyBytes += chunk.length;
      if (cut !== undefined && record.bodyBytes >= cut) {
        options.cutPatchAfter = undefined;
        // Keep what arrived (a registry that can resume does), then drop the connection.
        const id = /uploads\/([a-f0-9]+)/.exec(req.url ?? '')?.[1] ?? '';
        uploads.get(id)?.push(Buffer.concat(chunks).subarray(0, cut));
        req.socket.destroy();
      }
    });
    req.on('end', () => void handle(req, res, Buffer.concat(chunks)));
  });
  const sockets = new Set<Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    options,
    requests,
    blobs,
    manifests,
    stop: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
