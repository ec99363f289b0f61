/** A test's node server on 127.0.0.1 (a free port), closed with its connections when the test ends. */
import type { TestContext } from 'node:test';
import type net from 'node:net';

export interface Started {
  /** `http://127.0.0.1:PORT` (or https). */
  url: string;
  /** How many connections the server accepted so far. */
  connections(): number;
}

/** Listens on 127.0.0.1, port 0; the server and its connections are closed when the test ends. */
export async function start(t: TestContext, server: net.Server, scheme = 'http'): Promise<Started> {
  let count = 0;
  const sockets = new Set<net.Socket>();
  server.on('connection', (socket: net.Socket) => {
    count++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { url: `${scheme}://127.0.0.1:${(server.address() as net.AddressInfo).port}`, connections: () => count };
}

