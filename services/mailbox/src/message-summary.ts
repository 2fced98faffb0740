// The folder list's view of a message, made once at arrival and sealed beside it (mailbox-store sealSummary): the
// header fields as text and the number of attachments. Cheap: the header block and the MIME structure only, no body
// is decoded. A message too complex to walk still gets its headers and the attachments counted until the limit.
import type { MessageSummary } from '@smgw/mailbox-store';
import { splitHeaderBlock } from '@smgw/mime';
import { displayHeaders, formatMailboxes } from './message-headers.ts';
import { MIME_LIMITS, type MimeLimits, MimeStructureError, readMimeLeaves } from './mime-structure.ts';

export async function summarizeMessage(raw: Buffer, limits: MimeLimits = MIME_LIMITS): Promise<MessageSummary> {
  // A message without an empty line is all header: read no more of it than a header may be.
  const headers = displayHeaders(splitHeaderBlock(raw.subarray(0, limits.maxHeaderBytes)).fields);
  let attachments = 0;
  try {
    await readMimeLeaves(raw, limits, (leaf) => {
      if (leaf.isAttachment) attachments++;
    });
  } catch (err) {
    if (!(err instanceof MimeStructureError)) throw err;
  }
  return {
    from: formatMailboxes(headers.from),
    to: formatMailboxes(headers.to),
    subject: headers.subject,
    date: headers.date,
    attachments,
  };
}
