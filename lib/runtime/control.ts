/**
 * The supervisor's control socket, `ROOT/ID/control.sock` (a unix socket in the container's
 * 0711 dir, owned by its creator): `start` asks the waiting container to run. One JSON line
 * each way. A socket path is limited to 108 bytes, and ids and --root dirs can be long, so
 * both ends name it relative to its dir (bind and connect resolve it at once).
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { ContainerPartsError, HostError } from '../core/errors.js';

const SOCKET = 'control.sock';

export interface ControlRequest {
  op: 'start';
}

export interface ControlReply {
  ok: boolean;
  /** The one-line error, when not ok. */
  error?: string;
}

export function controlSocket(dir: string): string {
  return join(dir, SOCKET);
}

/** Runs `fn` with the working directory at `dir`, for a bind or connect of a relative socket name. */
function inDir<T>(dir: string, fn: () => T): T {
  const before = process.cwd();
  process.chdir(dir);
  try {
    return fn();
  } finally {
    process.chdir(before);
  }
}

/** Serves requests on the container's socket until closed; a handler's error is the reply's. */
export function serveControl(dir: string, handle: (request: ControlRequest) => Promise<void>): Promise<Server> {
  const server = createServer((socket) => answer(socket, handle));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    inDir(dir, () => server.listen(SOCKET, () => resolve(server)));
  });
}

function answer(socket: Socket, handle: (request: ControlRequest) => Promise<void>): void {
  let text = '';
  socket.on('error', () => undefined);
  socket.on('data', (chunk: Buffer) => {
    text += chunk.toString('utf8');
    const newline = text.indexOf('\n');
    if (newline === -1) return;
    let request: ControlRequest;
    try {
      request = JSON.parse(text.slice(0, newline)) as ControlRequest;
    } catch {
      socket.end(`${JSON.stringify({ ok: false, error: 'not a request' })}\n`);
      return;
    }
    handle(request).then(
      () => socket.end(`${JSON.stringify({ ok: true })}\n`),
      (err: unknown) => socket.end(`${JSON.stringify({ ok: false, error: err instanceof ContainerPartsError ? err.userMessage : String((err as Error).message ?? err) })}\n`),
    );
  });
}

/** Sends one request to the container's supervisor and returns its reply; an error when it cannot be reached. */
export function askSupervisor(dir: string, request: ControlRequest, timeoutMs = 60_000): Promise<ControlReply> {
  return new Promise((resolve, reject) => {
    const socket = inDir(dir, () => connect(SOCKET));
    let text = '';
    const timer = setTimeout(() => socket.destroy(new Error(`no answer within ${timeoutMs / 1000} s`)), timeoutMs);
    socket.on('connect', () => socket.write(`${JSON.stringify(request)}\n`));
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new HostError(`the container's supervisor cannot be reached (${err.code ?? err.message})`));
    });
    socket.on('close', () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(text) as ControlReply);
      } catch {
        reject(new HostError("the container's supervisor ended without an answer"));
      }
    });
  });
}
