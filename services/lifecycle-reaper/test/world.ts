// What the reaper tests put into their schema: messages finished or not, quarantine entries, activation tokens.
import { randomBytes, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { type BlobRef, type BlobStore, createBlobStore, createFolderKeyStore, type KeyStore } from '@smgw/blob-store';
import { newMessageId } from '@smgw/envelope';
import { createFolderMailboxKeyStore, ensureMailbox, type MailboxKeyStore } from '@smgw/mailbox-store';
import { createLogger } from '@smgw/observability';
import { envelopeFixture, type TestDatabase } from '@smgw/testing';
import { type RecipientState, recordMessage, setRecipientState } from '@smgw/trace';
import type { ReaperDeps } from '../src/run-sweeps.ts';

export const DAY_MS = 86_400_000;

export class World {
  readonly keyStore: KeyStore;
  readonly store: BlobStore;
  readonly db: TestDatabase;
  readonly mailboxKeys: MailboxKeyStore;
  constructor(db: TestDatabase) {
    this.db = db;
    this.mailboxKeys = createFolderMailboxKeyStore(db.keys);
    this.keyStore = createFolderKeyStore(db.keys);
    this.store = createBlobStore(db.pool, { keyStore: this.keyStore });
  }

  /** What a reaper of this schema runs with (SMGW_MESSAGE_RETENTION 7d, SMGW_KEK_PERIOD 1d). */
  reaperDeps(): ReaperDeps {
    return {
      pool: this.db.pool,
      keyStore: this.keyStore,
      messageRetentionMs: 7 * DAY_MS,
      kekPeriodMs: DAY_MS,
      log: createLogger('lifecycle-reaper-test', 'silent'),
    };
  }

  /** A message received now with one blob, its one recipient in `state`. */
  async message(state: RecipientState): Promise<{ id: string; blob: BlobRef }> {
    const id = newMessageId();
    const blob = await this.store.put(Readable.from([randomBytes(500)]), { messageId: id });
    const envelope = envelopeFixture({ id, blob, recipients: ['r@behoerde.example'] });
    await recordMessage(this.db.pool, envelope);
    if (state !== 'pending') await setRecipientState(this.db.pool, id, ['r@behoerde.example'], state);
    return { id, blob };
  }

  /** A quarantined message whose entry expires `expiresInMs` from now (negative: already expired). */
  async quarantined(expiresInMs: number): Promise<string> {
    const { id, blob } = await this.message('quarantined');
    const envelope = envelopeFixture({ id, blob, recipients: ['r@behoerde.example'] });
    await this.db.pool.query(
      `insert into quarantine (id, message_id, blob_sha256, direction, verdict, finding, envelope, expires_at)
       values ($1, $2, $3, 'inbound', 'infected', 'Eicar-Signature', $4, $5)`,
      [newMessageId(), id, blob.sha256, JSON.stringify(envelope), new Date(Date.now() + expiresInMs)],
    );
    return id;
  }

  /** An activation token of a new mailbox, expiring `expiresInMs` from now, optionally revoked `revokedAgoMs` ago. */
  async token(expiresInMs: number, revokedAgoMs?: number): Promise<string> {
    const { mailbox } = await ensureMailbox(this.db.pool, `${randomUUID()}@buerger.example`, this.mailboxKeys);
    const id = randomUUID();
    await this.db.pool.query(
      `insert into mailbox_tokens (id, mailbox_id, link_hash, pin_hash, created_at, expires_at, revoked_at,
         pin_mail_due_at, message_id, trace_id)
       values ($1, $2, $3, 'x', now() - interval '300 days', $4, $5, now(), 'm', 't')`,
      [
        id,
        mailbox.id,
        randomBytes(32),
        new Date(Date.now() + expiresInMs),
        revokedAgoMs === undefined ? null : new Date(Date.now() - revokedAgoMs),
      ],
    );
    return id;
  }

  async exists(table: 'blobs' | 'quarantine' | 'mailbox_tokens', column: string, value: string): Promise<boolean> {
    const found = await this.db.pool.query(`select 1 from ${table} where ${column} = $1`, [value]);
    return found.rowCount !== 0;
  }

  async counts(): Promise<Record<string, number>> {
    const { rows } = await this.db.pool.query(`select
      (select count(*)::int from blobs) as blobs,
      (select count(*)::int from quarantine) as quarantine,
      (select count(*)::int from mailbox_tokens) as tokens`);
    return rows[0];
  }
}
