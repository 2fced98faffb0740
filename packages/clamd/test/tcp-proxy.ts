// A TCP proxy for tests: passes bytes between the client and clamd, counts connections, and breaks them on demand
// the ways a real clamd or network does (a close while idle, a close the client has not noticed yet, a cut upload).
import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';

export interface TcpProxy {
  url: string;
  /** Connections accepted so far. */
  connections(): number;
  /** Connections open now. */
  open(): number;
  /** Bytes clients sent so far, over all connections. */
  clientBytes(): number;
  /** Closes every open connection the way clamd does (FIN to the client), e.g. after its ReadTimeout. */
  closeAll(): void;
  /**
   * Makes every open connection stale: clamd's side is gone, but the client learns it only from a reset when it
   * next writes (clamd closed the session an instant before the client reused it).
   */
  staleAll(): void;
  /** From now on, resets a connection once its client has sent more than `bytes` (clamd dying mid-upload). */
  cutAfter(bytes: number | undefined): void;
  close(): Promise<void>;
}

interface Pair {
  client: Socket;
  upstream: Socket;
  sent: number;
  stale: boolean;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const pairs = new Set<Pair>();
  let connections = 0;
  let clientBytes = 0;
  let cutAfter: number | undefined;
  const server = createServer((client) => {
    connections++;
    const upstream = connect(target);
    const pair: Pair = { client, upstream, sent: 0, stale: false };
    pairs.add(pair);
    const drop = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop);
    upstream.on('error', drop);
    client.on('close', drop);
    upstream.on('close', () => {
      if (!pair.stale) client.end();
    });
    client.on('data', (data: Buffer) => {
      if (pair.stale) {
        pairs.delete(pair);
        client.resetAndDestroy();
        return;
      }
      pair.sent += data.length;
      clientBytes += data.length;
      if (cutAfter !== undefined && pair.sent > cutAfter) {
        pairs.delete(pair);
        upstream.destroy();
        client.resetAndDestroy();
        return;
      }
      upstream.write(data);
    });
    upstream.on('data', (data: Buffer) => client.write(data));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  return {
    url: `tcp://127.0.0.1:${port}`,
    connections: () => connections,
    open: () => pairs.size,
    clientBytes: () => clientBytes,
    closeAll() {
      for (const pair of pairs) {
        pairs.delete(pair);
        pair.upstream.destroy();
        pair.client.end();
      }
    },
    staleAll() {
      for (const pair of pairs) {
        pair.stale = true;
        pair.upstream.destroy();
      }
    },
    cutAfter(bytes) {
      cutAfter = bytes;
    },
    async close() {
      for (const pair of pairs) {
        pair.client.destroy();
        pair.upstream.destroy();
      }
      server.close();
      await once(server, 'close');
    },
  };
}
