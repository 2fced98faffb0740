// What the reaper tests put into their schema (messages finished or not, quarantine entries, activation tokens,
// portal mailboxes with messages, portal users' messages with their Sent copies or without) and the broker vhost its
// notices are published to.
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import {
  type BlobRef,
  type BlobStore,
  blobFiles,
  createBlobStore,
  createFolderKeyStore,
  type KeyStore,
} from '@smgw/blob-store';
import { type PoolClient, withTransaction } from '@smgw/db';
import { type Envelope, newMessageId } from '@smgw/envelope';
import {
  createFolderMailboxKeyStore,
  ensureMailbox,
  insertMailboxMessage,
  lockMailbox,
  type Mailbox,
  type MailboxKeyStore,
  mailboxKeyFolder,
  openMailboxKey,
  reserveMailboxUsage,
  setMailboxPassword,
} from '@smgw/mailbox-store';
import { connectMq, type Mq } from '@smgw/mq';
import { createLogger } from '@smgw/observability';
import { createTestDatabase, createTestVhost, envelopeFixture, type TestDatabase, type TestVhost } from '@smgw/testing';
import { type RecipientState, recordEvent, recordMessage, setRecipientState } from '@smgw/trace';
import { loadReaperTemplates, type ReaperTemplates } from '../src/notices.ts';
import type { ReaperDeps } from '../src/run-sweeps.ts';
import { keyFileFolders } from '../src/sweeps.ts';

export const DAY_MS = 86_400_000;

export class World {
  readonly keyStore: KeyStore;
  readonly store: BlobStore;
  readonly db: TestDatabase;
  readonly vhost: TestVhost;
  readonly mq: Mq;
  readonly mailboxKeys: MailboxKeyStore;
  readonly templates: ReaperTemplates;
  /** Every notice a reaper of this world published (and the broker confirmed), in order. */
  readonly published: Envelope[] = [];
  /** The environment of a reaper process or command of this world. */
  readonly env: Record<string, string>;
  /** SMGW_BLOB_DIR of this world, when its blobs are kept in files. */
  readonly blobDir: string | undefined;

  private constructor(
    db: TestDatabase,
    vhost: TestVhost,
    mq: Mq,
    templates: ReaperTemplates,
    blobDir: string | undefined,
  ) {
    this.db = db;
    this.vhost = vhost;
    this.mq = mq;
    this.templates = templates;
    this.blobDir = blobDir;
    this.env = { ...db.env, ...vhost.env, ...(blobDir === undefined ? {} : { SMGW_BLOB_DIR: blobDir }) };
    this.mailboxKeys = createFolderMailboxKeyStore(db.keys);
    this.keyStore = createFolderKeyStore(db.keys);
    // With a folder, every blob goes there, however small: the file tests unlink the world's messages' files.
    this.store = createBlobStore(db.pool, { keyStore: this.keyStore, directory: blobDir, smallBlobBytes: 0 });
  }

  static async create(options: { blobs?: 'database' | 'files' } = {}): Promise<World> {
    const db = await createTestDatabase();
    const vhost = await createTestVhost();
    const mq = await connectMq({ url: vhost.url, logger: createLogger('test', 'silent'), connectionName: 'test' });
    await mq.declareTopology({});
    const blobDir = options.blobs === 'files' ? mkdtempSync(join(tmpdir(), 'smgw-reaper-blobs-')) : undefined;
    return new World(db, vhost, mq, await loadReaperTemplates(), blobDir);
  }

  async drop(): Promise<void> {
    await this.mq.close();
    await this.vhost.drop();
    await this.db.drop();
    if (this.blobDir !== undefined) rmSync(this.blobDir, { recursive: true, force: true });
  }

  /**
   * What a reaper of this schema runs with: SMGW_MESSAGE_RETENTION 7d, SMGW_TRACE_RETENTION 90d, SMGW_KEK_PERIOD 1d,
   * inactivity 180d / 194d / 208d with messages older than 30d, parked envelopes reported after 30d, messages
   * refused at ingest collected after 1d.
   */
  reaperDeps(overrides: Partial<ReaperDeps> = {}): ReaperDeps {
    return {
      pool: this.db.pool,
      keyStore: this.keyStore,
      mailboxKeys: this.mailboxKeys,
      publisher: {
        publish: async (envelope) => {
          await this.mq.publish(envelope);
          this.published.push(envelope);
        },
      },
      templates: this.templates,
      hostname: 'gateway.test',
      publicUrl: 'https://portal.example/',
      messageRetentionMs: 7 * DAY_MS,
      traceRetentionMs: 90 * DAY_MS,
      kekPeriodMs: DAY_MS,
      inactivity: {
        firstWarningMs: 180 * DAY_MS,
        secondWarningMs: 194 * DAY_MS,
        deletionMs: 208 * DAY_MS,
        minMessageAgeMs: 30 * DAY_MS,
      },
      parkedRetentionMs: 30 * DAY_MS,
      parkedAction: 'report',
      refusedMessageGraceMs: DAY_MS,
      blobDir: this.blobDir,
      blobFiles: this.blobDir === undefined ? undefined : blobFiles(this.blobDir),
      keyFiles: keyFileFolders([this.db.keys.keyStoreDir, mailboxKeyFolder(this.db.keys.keyStoreDir)]),
      log: createLogger('lifecycle-reaper-test', 'silent'),
      ...overrides,
    };
  }

  /**
   * A portal mailbox with one message in its inbox per entry of `messages` (each recorded in the trace as sent by
   * `from`, with `text` in its body; `read` ones are marked read).
   */
  async mailbox(
    address: string,
    messages: { from: string; text: string; read?: boolean }[] = [],
  ): Promise<{ mailbox: Mailbox; messageIds: string[] }> {
    const { mailbox } = await ensureMailbox(this.db.pool, address, this.mailboxKeys);
    const messageIds: string[] = [];
    const dataKey = await openMailboxKey(this.mailboxKeys, mailbox);
    try {
      for (const m of messages) {
        const id = newMessageId();
        await recordMessage(this.db.pool, envelopeFixture({ id, mailFrom: m.from, recipients: [address] }));
        await setRecipientState(this.db.pool, id, [address], 'in_mailbox');
        await withTransaction(this.db.pool, (client) =>
          insertMailboxMessage(client, {
            mailboxId: mailbox.id,
            dataKey,
            folder: 'inbox',
            messageId: id,
            recipient: address,
            raw: Buffer.from(`From: <${m.from}>\r\nSubject: x\r\n\r\n${m.text}\r\n`),
            receivedAt: new Date(),
          }),
        );
        if (m.read) {
          await this.db.pool.query('update mailbox_messages set read_at = now() where message_id = $1', [id]);
        }
        messageIds.push(id);
      }
    } finally {
      dataKey.fill(0);
    }
    return { mailbox, messageIds };
  }

  /** A portal mailbox that can send (active: its user set a password). */
  async activeMailbox(): Promise<Mailbox> {
    const { mailbox } = await ensureMailbox(this.db.pool, `${randomUUID()}@buerger.example`, this.mailboxKeys);
    await setMailboxPassword(this.db.pool, mailbox.id, '$argon2id$placeholder', new Date());
    return { ...mailbox, state: 'active' };
  }

  /**
   * What the portal's submit.ts leaves of a message its user sent at `at` before the publish (step 3, one
   * transaction): the message's record and `message.submitted`, and its Sent copy's `bytes` reserved in the mailbox's
   * usage. `refused`: then the broker did not confirm (the portal's `message.refused`; the user was told to send
   * again): `true` a lost confirm (the envelope may be in a queue), `'nacked'` surely refused. `content`: the message
   * is stored in the blob store (else its blob reference names nothing). Returns the message id.
   */
  async portalMessage(
    mailbox: Mailbox,
    options: { bytes: number; at: Date; refused?: boolean | 'nacked'; content?: Buffer },
  ): Promise<string> {
    const id = newMessageId(options.at.getTime());
    const blob = options.content
      ? await this.store.put(Readable.from([options.content]), { messageId: id })
      : { ref: 'b'.repeat(64), sha256: 'b'.repeat(64), size: options.bytes };
    const envelope = envelopeFixture({
      id,
      direction: 'portal',
      mailFrom: mailbox.address,
      recipients: ['post@behoerde.example'],
      receivedAt: options.at.toISOString(),
      blob,
    });
    await withTransaction(this.db.pool, async (db) => {
      await lockMailbox(db, mailbox.id);
      const fits = await reserveMailboxUsage(db, { mailboxId: mailbox.id, bytes: options.bytes, quotaBytes: 2 ** 40 });
      if (!fits) throw new Error('the test mailbox cannot reserve');
      await recordMessage(db, envelope);
      await recordEvent(db, id, {
        stage: 'portal',
        event: 'message.submitted',
        outcome: 'next',
        data: { listener: 'portal', mailboxId: mailbox.id, size: options.bytes, blob: envelope.blob.ref },
        at: options.at,
      });
    });
    if (options.refused) await this.portalRefusal(id, options.refused === 'nacked' ? 'nacked' : 'lost', options.at);
    return id;
  }

  /**
   * The portal's `message.refused` after a publish the broker did not confirm: `nacked` surely not enqueued, `lost`
   * the confirm lost (it may have been).
   */
  async portalRefusal(messageId: string, how: 'nacked' | 'lost', at: Date): Promise<void> {
    await recordEvent(this.db.pool, messageId, {
      stage: 'portal',
      event: 'message.refused',
      outcome: 'retry',
      code: how === 'nacked' ? 'MQ_PUBLISH_NACKED' : 'MQ_PUBLISH_CHANNEL_CLOSED',
      data: { enqueued: how === 'nacked' ? 'none' : 'unknown' },
      at,
    });
  }

  /**
   * What submit.ts's step 5 stores at `at` (also when the form is sent again): the Sent copy of `bytes` on the bytes
   * reserved for it, and `message.sent-copy-stored`, under the mailbox row's lock. `db`: in the caller's transaction.
   */
  async sentCopy(
    mailbox: Mailbox,
    messageId: string,
    options: { bytes: number; at: Date; db?: PoolClient },
  ): Promise<string | undefined> {
    const store = async (db: PoolClient) => {
      await lockMailbox(db, mailbox.id);
      const dataKey = await openMailboxKey(this.mailboxKeys, mailbox);
      const rowId = await insertMailboxMessage(
        db,
        {
          mailboxId: mailbox.id,
          dataKey,
          folder: 'sent',
          messageId,
          recipient: mailbox.address,
          raw: Buffer.alloc(options.bytes, 'x'),
          receivedAt: options.at,
        },
        { usageReserved: true },
      );
      dataKey.fill(0);
      if (rowId) {
        await recordEvent(db, messageId, {
          stage: 'portal',
          event: 'message.sent-copy-stored',
          outcome: 'next',
          data: { mailboxId: mailbox.id, size: options.bytes },
          at: options.at,
        });
      }
      return rowId;
    };
    return options.db ? store(options.db) : withTransaction(this.db.pool, store);
  }

  /** The mailbox's usage (its quota's count), undefined when it is gone. */
  async usage(mailboxId: string): Promise<number | undefined> {
    const { rows } = await this.db.pool.query('select usage_bytes from mailboxes where id = $1', [mailboxId]);
    return rows[0] ? Number(rows[0].usage_bytes) : undefined;
  }

  /** How many rows of each mailbox table name the mailbox. */
  async mailboxRows(mailboxId: string): Promise<Record<string, number>> {
    const { rows } = await this.db.pool.query(
      `select
        (select count(*)::int from mailboxes where id = $1) as mailboxes,
        (select count(*)::int from mailbox_messages where mailbox_id = $1) as messages,
        (select count(*)::int from mailbox_tokens where mailbox_id = $1) as tokens,
        (select count(*)::int from mailbox_inactivity_warnings where mailbox_id = $1) as warnings`,
      [mailboxId],
    );
    return rows[0];
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
