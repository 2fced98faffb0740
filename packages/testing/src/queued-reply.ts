import assert from 'node:assert/strict';
import { isMessageId } from '@smgw/envelope';

/** Asserts that a reply is ingest's `250 2.0.0 Ok: queued as <message id>` and returns the message id. */
export function assertQueued(reply: string | undefined): string {
  const id = /^250 2\.0\.0 Ok: queued as (\S+)$/.exec(reply ?? '')?.[1];
  assert.ok(id !== undefined && isMessageId(id), `not a "queued as <message id>" reply: ${reply}`);
  return id;
}
