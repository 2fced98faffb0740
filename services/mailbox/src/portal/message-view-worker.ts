// The worker thread of message-view-workers.ts: one job at a time (a message view, an attachment, a reply's quote).
// The message arrives transferred. A view goes back as soon as it is parsed ('parsed'), before its HTML is sanitised
// ('done'), so that a view whose sanitising runs out of time can still show the text; an attachment's bytes go back
// transferred. Nothing here logs: content stays in this isolate.
import { parentPort } from 'node:worker_threads';
import { errorShape, READY } from '@smgw/worker-pool';
import { parseMessageView, readMessageAttachment, withSanitisedHtml } from './message-view.ts';
import { type FromViewWorker, ownsItsMemory, type ToViewWorker } from './message-view-workers.ts';
import { readQuoteSource } from './reply-context.ts';

const port = parentPort;
if (!port) throw new Error('message-view-worker.ts runs as a worker thread only');

port.on('message', (message: ToViewWorker) => {
  const raw = Buffer.from(message.raw.buffer, message.raw.byteOffset, message.raw.byteLength);
  run(message, raw).catch((error: unknown) => reply({ type: 'failed', error: errorShape(error) }));
});
reply(READY);

async function run(message: ToViewWorker, raw: Buffer): Promise<void> {
  if (message.job === 'view') reply({ type: 'done', view: await viewOf(raw) });
  else if (message.job === 'quote') reply({ type: 'quote', quote: await readQuoteSource(raw) });
  else await sendAttachment(raw, message.index);
}

async function viewOf(raw: Buffer) {
  const { view, pendingHtml } = await parseMessageView(raw);
  if (!pendingHtml) return view;
  reply({ type: 'parsed', view });
  return withSanitisedHtml(view, pendingHtml);
}

/** The attachment's bytes transferred: copied first only when they share memory with others (a slice, the pool). */
async function sendAttachment(raw: Buffer, index: number): Promise<void> {
  const found = await readMessageAttachment(raw, index);
  if (!found) return reply({ type: 'attachment', attachment: undefined });
  const content = ownsItsMemory(found.content) ? found.content : new Uint8Array(found.content);
  reply({ type: 'attachment', attachment: { ...found, content } }, [content.buffer]);
}

function reply(message: FromViewWorker, transfer: ArrayBuffer[] = []): void {
  port?.postMessage(message, transfer);
}
