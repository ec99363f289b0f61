/**
 * A tiny HTTP proxy on 127.0.0.1 in front of a real registry, for the faults a network makes:
 * it records every request (to count them), can answer 429 with Retry-After, and can cut a
 * response in the middle of its body. The registry behind it is never mocked.
 */
import { createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';

export interface ProxiedRequest {
  method: string;
  path: string;
  range?: string;
  status?: number;
  at: number;
}

export interface Fault {
  /** Which requests this fault applies to. */
  match(req: { method: string; path: string; headers: IncomingHttpHeaders }): boolean;
  /** How many matching requests it applies to (then it is used up). */
  times: number;
  /** Answer 429 with this Retry-After (seconds) instead of forwarding. */
  tooManyRequests?: { retryAfter: string };
  /** Forward, but close the connection after this many body bytes. */
  cutAfterBytes?: number;
  /** Called (and awaited) at the cut, before the connection closes: e.g. stop the registry. */
  onCut?: () => Promise<void>;
  /** Forward, with every byte of the body inverted: the same size, only the digest shows it (a lying mirror). */
  corrupt?: boolean;
  /** Neither forward nor answer: the request hangs (its body is read and dropped) until the client dies; called when it starts. */
  hold?: () => void;
}

export interface FaultProxy {
  host: string;
  requests: ProxiedRequest[];
  faults: Fault[];
  /** Requests whose path matches, e.g. blob GETs. */
  count(pattern: RegExp, method?: string): number;
  stop(): Promise<void>;
}

export async function startProxy(upstreamPort: number): Promise<FaultProxy> {
  const requests: ProxiedRequest[] = [];
  const faults: Fault[] = [];

  const takeFault = (req: IncomingMessage): Fault | undefined => {
    const fault = faults.find((f) => f.times > 0 && f.match({ method: req.method ?? 'GET', path: req.url ?? '/', headers: req.headers }));
    if (fault) fault.times--;
    return fault;
  };

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const record: ProxiedRequest = { method: req.method ?? 'GET', path: req.url ?? '/', range: req.headers.range, at: Date.now() };
    requests.push(record);
    const fault = takeFault(req);
    if (fault?.tooManyRequests) {
      record.status = 429;
      res.writeHead(429, { 'Retry-After': fault.tooManyRequests.retryAfter, 'Content-Type': 'application/json' });
      res.end('{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}');
      return;
    }
    if (fault?.hold) {
      req.resume();
      fault.hold();
      return;
    }
    const upstream = httpRequest({ host: '127.0.0.1', port: upstreamPort, method: req.method, path: req.url, headers: req.headers }, (up) => {
      record.status = up.statusCode;
      res.writeHead(up.statusCode ?? 502, up.headers);
      if (fault?.corrupt) {
        up.on('data', (chunk: Buffer) => res.write(Buffer.from(chunk.map((byte) => byte ^ 0xff))));
        up.on('end', () => res.end());
        return;
      }
      if (fault?.cutAfterBytes === undefined) {
        up.pipe(res);
        return;
      }
      let sent = 0;
      const limit = fault.cutAfterBytes;
      const onData = (chunk: Buffer) => {
        if (sent + chunk.length < limit) {
          sent += chunk.length;
          res.write(chunk);
          return;
        }
        up.off('data', onData);
        up.pause();
        res.write(chunk.subarray(0, limit - sent), () => {
          void (fault.onCut?.() ?? Promise.resolve()).finally(() => {
            up.destroy();
            res.socket?.destroy();
          });
        });
      };
      up.on('data', onData);
    });
    upstream.on('error', () => res.socket?.destroy());
    req.pipe(upstream);
  };

  const server = createServer(handle);
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    host: `127.0.0.1:${port}`,
    requests,
    faults,
    count: (pattern, method) => requests.filter((r) => pattern.test(r.path) && (method === undefined || r.method === method)).length,
    stop: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
