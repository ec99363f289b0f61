/**
 * GET over node's own http/https, for the registry client: the response body is the socket's
 * stream itself (no extra copy through a PassThrough, no fetch polyfill to load at startup),
 * redirects are followed without carrying credentials to another origin (registries send
 * blobs to object storage), and a connection that goes quiet is dropped.
 */
import http from 'node:http';
import https from 'node:https';

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** The body, read once: iterate it, or `readBody`. */
  body: http.IncomingMessage;
  url: URL;
}

export interface HttpClientOptions {
  /** Verify TLS certificates (with false, no trust store is even loaded). */
  tlsVerify: boolean;
  /** Drop a connection that sends nothing for this long. */
  idleTimeoutMs?: number;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 5;

export class HttpClient {
  private readonly httpAgent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  private readonly httpsAgent: https.Agent;

  constructor(private readonly options: HttpClientOptions) {
    // `ca: []` with verification off: node then skips parsing its ~140 root certificates.
    this.httpsAgent = new https.Agent({ keepAlive: true, maxSockets: 16, ...(options.tlsVerify ? {} : { rejectUnauthorized: false, ca: [] }) });
  }

  async get(url: string | URL, headers: Record<string, string>, signal?: AbortSignal): Promise<HttpResponse> {
    let target = new URL(url);
    let sent = headers;
    for (let redirects = 0; ; redirects++) {
      const res = await this.send(target, sent, signal);
      const location = res.headers.location;
      if (!REDIRECTS.has(res.statusCode ?? 0) || !location || redirects >= MAX_REDIRECTS) {
        return { status: res.statusCode ?? 0, headers: res.headers, body: res, url: target };
      }
      res.resume();
      const next = new URL(location, target);
      if (next.origin !== target.origin) {
        // Credentials are for the registry, not for wherever it sends us.
        const { Authorization: _dropped, ...rest } = sent;
        sent = rest;
      }
      target = next;
    }
  }

  private send(url: URL, headers: Record<string, string>, signal?: AbortSignal): Promise<http.IncomingMessage> {
    return new Promise((resolve, reject) => {
      const secure = url.protocol === 'https:';
      const req = (secure ? https : http).request(url, { method: 'GET', headers, agent: secure ? this.httpsAgent : this.httpAgent, signal }, resolve);
      req.on('error', reject);
      const idle = this.options.idleTimeoutMs ?? 60_000;
      req.setTimeout(idle, () => req.destroy(Object.assign(new Error(`no data for ${idle / 1000} s`), { code: 'ETIMEDOUT' })));
      req.end();
    });
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}

/** The whole body, refusing one larger than `limit` bytes. */
export async function readBody(res: HttpResponse, limit: number, what: string): Promise<Buffer> {
  const declared = Number(res.headers['content-length'] ?? 0);
  if (declared > limit) {
    res.body.destroy();
    throw new BodyTooLarge(`${what} is ${declared} bytes, more than the ${limit} allowed`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      res.body.destroy();
      throw new BodyTooLarge(`${what} is more than the ${limit} bytes allowed`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Reads and drops a body we do not need, so the connection can be reused. */
export async function discardBody(res: HttpResponse): Promise<void> {
  res.body.resume();
  await new Promise<void>((resolve) => {
    res.body.once('end', resolve);
    res.body.once('error', () => resolve());
    res.body.once('close', resolve);
  });
}

export class BodyTooLarge extends Error {}
