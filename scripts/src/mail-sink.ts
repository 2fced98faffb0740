// A local stand-in for the agencies' mail server (SMGW_INTERNAL_RELAY) or for the outside world (SMGW_SMARTHOST)
// when `./smgw up` runs on a laptop, one process per sink (local-relays.ts decides which run): every message it
// receives is written to .smgw/mail/<agency|outside>/<time>-<n>.eml so you can look at exactly what left the gateway.
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { type SmtpSink, startSmtpSink } from '@smgw/testing';
import { type LocalSink, localSink, sinkPortBusyNotice } from './local-relays.ts';
import { EXIT_CONFIG } from './restart-policy.ts';

const state = process.env.SMGW_STATE_DIR ?? '.smgw';
const sink: LocalSink = localSink(
  process.env.SMGW_SINK_NAME === 'outside' ? 'outside' : 'agency',
  Number(process.env.SMGW_SINK_PORT ?? 2526),
  Number(process.env.SMGW_HEALTH_PORT ?? 9109),
);

const dir = join(state, 'mail', sink.name);
await mkdir(dir, { recursive: true });
let smtp: SmtpSink;
try {
  smtp = await startSmtpSink({ port: sink.port });
} catch (err) {
  if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
  process.stdout.write(`${JSON.stringify({ level: 'warn', msg: sinkPortBusyNotice(sink) })}\n`);
  process.exit(EXIT_CONFIG);
}
let count = 0;
let busy = false;
const flush = setInterval(async () => {
  if (busy) return;
  busy = true;
  for (let m = smtp.messages.shift(); m; m = smtp.messages.shift()) {
    const file = join(dir, `${new Date().toISOString().replace(/[:.]/g, '-')}-${++count}.eml`);
    const trace = `X-Sink-Envelope: from=<${m.mailFrom}> to=${m.rcptTo.map((r) => `<${r}>`).join(',')}\r\n`;
    await writeFile(file, Buffer.concat([Buffer.from(trace), m.raw]));
    process.stdout.write(
      `${JSON.stringify({ level: 'info', msg: `${sink.name} mail written`, file, to: m.rcptTo })}\n`,
    );
  }
  busy = false;
}, 200);
flush.unref();
process.stdout.write(
  `${JSON.stringify({ level: 'info', msg: `${sink.name} sink listening`, port: sink.port, dir })}\n`,
);

const health = createServer((_req, res) => res.writeHead(200).end('{"status":"ready"}'));
health.listen(sink.healthPort, '127.0.0.1');
process.once('SIGTERM', () => process.exit(0));
process.once('SIGINT', () => process.exit(0));
