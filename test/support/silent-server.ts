import { createServer, type Socket } from 'node:net';

/** A TCP server on loopback that accepts connections, reads everything, and never answers. */
export interface SilentServer {
  readonly port: number;
  /** redis://127.0.0.1:<port> */
  readonly url: string;
  /** Connections accepted so far. */
  connections(): number;
  /** Every byte clients sent, in arrival order. */
  received(): Buffer;
  close(): Promise<void>;
}

/**
 * What a hung Redis looks like to a client: the TCP connect succeeds at once (so a client's connect
 * timeout, if it only covers TCP, is already over), then nothing comes back.
 */
export async function startSilentServer(): Promise<SilentServer> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const chunks: Buffer[] = [];
  const server = createServer((socket) => {
    accepted += 1;
    sockets.add(socket);
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    connections: () => accepted,
    received: () => Buffer.concat(chunks),
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
