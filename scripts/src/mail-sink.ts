// A local stand-in for the agencies' mail server (SMGW_INTERNAL_RELAY, 127.0.0.1:2526) and for the outside world
// (SMGW_SMARTHOST, 127.0.0.1:2527) when `./smgw up` runs on a laptop: every message it receives is written to
// .smgw/mail/<agency|outside>/<time>-<n>.eml so you can look at exactly what left the gateway.
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { startSmtpSink } from '@smgw/testing';

const state = process.env.SMGW_STATE_DIR ?? '.smgw';
const sinks = [
  { name: 'agency', port: Number(process.env.SMGW_SINK_AGENCY_PORT ?? 2526) },
  { name: 'outside', port: Number(process.env.SMGW_SINK_OUTSIDE_PORT ?? 2527) },
];

for (const { name, port } of sinks) {
  const dir = join(state, 'mail', name);
  await mkdir(dir, { recursive: true });
  const sink = await startSmtpSink({ port });
  let count = 0;
  let busy = false;
  const flush = setInterval(async () => {
    if (busy) return;
    busy = true;
    for (let m = sink.messages.shift(); m; m = sink.messages.shift()) {
      const file = join(dir, `${new Date().toISOString().replace(/[:.]/g, '-')}-${++count}.eml`);
      const trace = `X-Sink-Envelope: from=<${m.mailFrom}> to=${m.rcptTo.map((r) => `<${r}>`).join(',')}\r\n`;
      await writeFile(file, Buffer.concat([Buffer.from(trace), m.raw]));
      process.stdout.write(`${JSON.stringify({ level: 'info', msg: `${name} mail written`, file, to: m.rcptTo })}\n`);
    }
    busy = false;
  }, 200);
  flush.unref();
  process.stdout.write(`${JSON.stringify({ level: 'info', msg: `${name} sink listening`, port, dir })}\n`);
}

const health = createServer((_req, res) => res.writeHead(200).end('{"status":"ready"}'));
health.listen(Number(process.env.SMGW_SINK_HEALTH_PORT ?? 9109), '127.0.0.1');
process.once('SIGTERM', () => process.exit(0));
process.once('SIGINT', () => process.exit(0));
