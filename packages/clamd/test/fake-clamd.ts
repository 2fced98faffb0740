// A protocol-level test peer: a net.Server that reads a z-command (and an INSTREAM body) and answers as scripted.
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';

export interface FakeClamdRequest {
  command: string;
  /** The INSTREAM body reassembled from its chunks. */
  body: Buffer;
  /** Length of every chunk received (the zero terminator excluded). */
  chunkLengths: number[];
}

/** What the fake does once it has read a request (or as soon as the command arrives, for `early`). */
export type FakeBehaviour =
  | { reply: string | Buffer; early?: boolean }
  | { hang: true }
  | { reset: true }
  | { closeWithoutReply: true }
  | { stopReading: true };

export interface FakeClamd {
  port: number;
  url: string;
  requests: FakeClamdRequest[];
  close(): Promise<void>;
}

export async function startFakeClamd(behave: (command: string) => FakeBehaviour): Promise<FakeClamd> {
  const sockets = new Set<Socket>();
  const requests: FakeClamdRequest[] = [];
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let buffer = Buffer.alloc(0);
    let command: string | undefined;
    let behaviour: FakeBehaviour | undefined;
    const request: FakeClamdRequest = { command: '', body: Buffer.alloc(0), chunkLengths: [] };
    const bodyParts: Buffer[] = [];
    const answer = () => {
      if (!behaviour) return;
      if ('reply' in behaviour) socket.end(behaviour.reply);
      else if ('reset' in behaviour) socket.resetAndDestroy();
      else if ('closeWithoutReply' in behaviour) socket.end();
    };
    socket.on('data', (data: Buffer) => {
      buffer = Buffer.concat([buffer, data]);
      if (command === undefined) {
        const nul = buffer.indexOf(0);
        if (nul < 0) return;
        command = buffer.subarray(1, nul).toString();
        request.command = command;
        requests.push(request);
        buffer = buffer.subarray(nul + 1);
        behaviour = behave(command);
        if ('stopReading' in behaviour) {
          socket.pause();
          return;
        }
        if (command !== 'INSTREAM' || ('reply' in behaviour && behaviour.early)) {
          answer();
          return;
        }
      }
      for (;;) {
        if (buffer.length < 4) return;
        const length = buffer.readUInt32BE(0);
        if (length === 0) {
          request.body = Buffer.concat(bodyParts);
          answer();
          return;
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
    async close() {
      for (const s of sockets) s.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}
