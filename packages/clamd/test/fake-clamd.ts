// A protocol-level test peer: a net.Server that reads z-commands (and INSTREAM bodies) and answers as scripted.
// It speaks IDSESSION too: after `zIDSESSION\0` it reads command after command on the same connection until
// `zEND\0`, and a scripted reply is written without closing (unless `close` is set).
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';

export interface FakeClamdRequest {
  command: string;
  /** 1, 2, … per connection: the number clamd puts in front of a session reply. */
  number: number;
  /** Which connection (1, 2, …) it came on. */
  connection: number;
  /** Whether the connection had sent zIDSESSION before. */
  inSession: boolean;
  /** The INSTREAM body reassembled from its chunks. */
  body: Buffer;
  /** Length of every chunk received (the zero terminator excluded). */
  chunkLengths: number[];
}

/** What the fake does once it has read a request (or as soon as the command arrives, for `early`). */
export type FakeBehaviour =
  | { reply: string | Buffer; early?: boolean; close?: boolean }
  | { hang: true }
  | { reset: true }
  | { closeWithoutReply: true }
  | { stopReading: true };

export interface FakeClamd {
  port: number;
  url: string;
  requests: FakeClamdRequest[];
  /** Connections accepted so far. */
  connections(): number;
  /** zEND commands received. */
  ends(): number;
  /** Connections open now. */
  open(): number;
  /** The server side of the open connections, to say something out of turn. */
  sockets(): Socket[];
  close(): Promise<void>;
}

export async function startFakeClamd(behave: (request: FakeClamdRequest) => FakeBehaviour): Promise<FakeClamd> {
  const sockets = new Set<Socket>();
  const requests: FakeClamdRequest[] = [];
  let connections = 0;
  let ends = 0;
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    const connection = ++connections;
    let buffer = Buffer.alloc(0);
    let inSession = false;
    let number = 0;
    let request: FakeClamdRequest | undefined;
    let behaviour: FakeBehaviour | undefined;
    let bodyParts: Buffer[] = [];
    let finished = false;

    /** Answers the current request; false when the connection is done with. */
    const answer = (): boolean => {
      if (!behaviour) return false;
      if ('reply' in behaviour) {
        if (inSession && !behaviour.close && !behaviour.early) {
          socket.write(behaviour.reply);
          return true;
        }
        socket.end(behaviour.reply);
      } else if ('reset' in behaviour) socket.resetAndDestroy();
      else if ('closeWithoutReply' in behaviour) socket.end();
      return false;
    };

    socket.on('data', (data: Buffer) => {
      if (finished) return;
      buffer = Buffer.concat([buffer, data]);
      for (;;) {
        if (!request) {
          const nul = buffer.indexOf(0);
          if (nul < 0) return;
          const command = buffer.subarray(1, nul).toString();
          buffer = buffer.subarray(nul + 1);
          if (command === 'IDSESSION') {
            inSession = true;
            continue;
          }
          if (command === 'END' && inSession) {
            ends++;
            finished = true;
            socket.end();
            return;
          }
          number++;
          request = { command, number, connection, inSession, body: Buffer.alloc(0), chunkLengths: [] };
          requests.push(request);
          bodyParts = [];
          behaviour = behave(request);
          if ('stopReading' in behaviour) {
            finished = true;
            socket.pause();
            return;
          }
          if (command !== 'INSTREAM' || ('reply' in behaviour && behaviour.early)) {
            request = undefined;
            if (!answer()) {
              finished = true;
              return;
            }
            continue;
          }
        }
        if (buffer.length < 4) return;
        const length = buffer.readUInt32BE(0);
        if (length === 0) {
          buffer = buffer.subarray(4);
          request.body = Buffer.concat(bodyParts);
          request = undefined;
          if (!answer()) {
            finished = true;
            return;
          }
          continue;
        }
        if (buffer.length < 4 + length) return;
        bodyParts.push(Buffer.from(buffer.subarray(4, 4 + length)));
        request.chunkLengths.push(length);
        buffer = buffer.subarray(4 + length);
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  return {
    port,
    url: `tcp://127.0.0.1:${port}`,
    requests,
    connections: () => connections,
    ends: () => ends,
    open: () => sockets.size,
    sockets: () => [...sockets],
    async close() {
      for (const s of sockets) s.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}
