// Test helpers of the portal-write tests: an active mailbox, a message in its inbox, agencies with addresses
// reachable from the portal, and the envelopes waiting in a queue (read off the broker's management API).
import type { Pool } from '@smgw/db';
import { decodeEnvelope, type Envelope, newMessageId } from '@smgw/envelope';
import { createAgency, putAgencyAddress, setAddressPortalReachable } from '@smgw/key-directory';
import {
  ensureMailbox,
  insertMailboxMessage,
  type Mailbox,
  openMailboxKey,
  setMailboxPassword,
} from '@smgw/mailbox-store';
import { rabbitManagementApi, type TestVhost } from '@smgw/testing';

export const AGENCY_DOMAIN = 'behoerde.example';

/** An activated mailbox (the password hash is a placeholder: these tests do not log in). */
export async function activeMailbox(pool: Pool, address: string, masterKey: Buffer): Promise<Mailbox> {
  const { mailbox } = await ensureMailbox(pool, address, masterKey);
  await setMailboxPassword(pool, mailbox.id, '$argon2id$placeholder', new Date());
  return { ...mailbox, state: 'active', hasPassword: true };
}

/** A message in the mailbox's inbox, as the mailbox stage stores one; its row id. */
export async function inboxMessage(pool: Pool, mailbox: Mailbox, masterKey: Buffer, raw: Buffer): Promise<string> {
  const client = await pool.connect();
  const dataKey = openMailboxKey(masterKey, mailbox);
  try {
    const id = await insertMailboxMessage(client, {
      mailboxId: mailbox.id,
      dataKey,
      folder: 'inbox',
      messageId: newMessageId(),
      recipient: mailbox.address,
      raw,
      receivedAt: new Date(),
    });
    if (!id) throw new Error('not stored');
    return id;
  } finally {
    dataKey.fill(0);
    client.release();
  }
}

/** A message from an agency (or whoever `from` is) to the citizen. */
export function agencyLetter(from: string, to: string, extraHeaders: string[] = []): Buffer {
  return Buffer.from(
    [
      `From: Sachbearbeitung <${from}>`,
      `To: ${to}`,
      ...extraHeaders,
      'Subject: Bescheid',
      'Date: Mon, 02 Mar 2026 10:00:00 +0100',
      `Message-ID: <bescheid-${newMessageId()}@behoerde.example>`,
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=utf-8',
      '',
      'Ihr Bescheid.',
      '',
    ].join('\r\n'),
  );
}

/** An agency with `addresses` in `domain`; those in `reachable` marked reachable from the portal. */
export async function agencyWith(
  pool: Pool,
  name: string,
  domain: string,
  addresses: string[],
  reachable: string[],
): Promise<string> {
  const created = await createAgency(pool, { name, domains: [domain], now: new Date() });
  if (created.kind !== 'created') throw new Error(`agency ${name}: ${created.kind}`);
  for (const address of addresses) {
    const put = await putAgencyAddress(pool, { agencyId: created.id, address, verifySignatures: false });
    if (put.kind !== 'created') throw new Error(`address ${address}: ${put.kind}`);
  }
  for (const address of reachable) {
    await setAddressPortalReachable(pool, { address, portalReachable: true, agencyId: created.id });
  }
  return created.id;
}

/** Takes every envelope waiting in `queue` of the vhost. */
export async function takeEnvelopes(vhost: TestVhost, queue: string): Promise<Envelope[]> {
  const res = await rabbitManagementApi(`/queues/${vhost.name}/${encodeURIComponent(queue)}/get`, 'POST', {
    count: 1000,
    ackmode: 'ack_requeue_false',
    encoding: 'base64',
  });
  if (!res.ok) throw new Error(`cannot get from ${queue}: HTTP ${res.status}`);
  const messages = (await res.json()) as { payload: string }[];
  return messages.map((m) => {
    const parsed = decodeEnvelope(Buffer.from(m.payload, 'base64'));
    if (!parsed.ok) throw new Error(`bad envelope in ${queue}: ${parsed.error}`);
    return parsed.envelope;
  });
}
