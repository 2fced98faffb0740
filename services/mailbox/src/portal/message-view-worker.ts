// The worker thread of message-view-workers.ts: one message view at a time. The message arrives transferred; the
// parsed view goes back as soon as it is there ('parsed'), before its HTML is sanitised ('done'), so that a view
// whose sanitising runs out of time can still show the text. Nothing here logs: content stays in this isolate.
import { parentPort } from 'node:worker_threads';
import { errorShape, READY } from '@smgw/worker-pool';
import { parseMessageView, withSanitisedHtml } from './message-view.ts';
import type { FromViewWorker, ToViewWorker } from './message-view-workers.ts';

const port = parentPort;
if (!port) throw new Error('message-view-worker.ts runs as a worker thread only');

port.on('message', (message: ToViewWorker) => {
  const raw = Buffer.from(message.raw.buffer, message.raw.byteOffset, message.raw.byteLength);
  viewOf(raw).then(
    (view) => reply({ type: 'done', view }),
    (error: unknown) => reply({ type: 'failed', error: errorShape(error) }),
  );
});
reply(READY);

async function viewOf(raw: Buffer) {
  const { view, pendingHtml } = await parseMessageView(raw);
  if (!pendingHtml) return view;
  reply({ type: 'parsed', view });
  return withSanitisedHtml(view, pendingHtml);
}

function reply(message: FromViewWorker): void {
  port?.postMessage(message);
}
