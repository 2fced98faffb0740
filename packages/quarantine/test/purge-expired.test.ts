import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { newMessageId } from '@smgw/envelope';
import { createTestDatabase, envelopeFixture, type TestDatabase } from '@smgw/testing';
import { getTrace, recordMessage } from '@smgw/trace';
import { purgeExpiredQuarantine } from '../src/index.ts';

const NOW = new Date('2026-06-01T12:00:00Z');
const DAY = 86_400_000;

describe('purgeExpiredQuarantine', () => {
  let db: TestDatabase;

  before(async () => {
    db = await createTestDatabase();
  });
  after(async () => {
    await db.drop();
  });

  /** A quarantined message whose entry expires at `expiresAt`; `sha` picks its blob digest. */
  async function quarantined(
    expiresAt: Date,
    sha: string,
    released = false,
  ): Promise<{ id: string; messageId: string }> {
    const envelope = envelopeFixture({
      receivedAt: new Date(NOW.getTime() - 40 * DAY).toISOString(),
      mailFrom: 'x@example.org',
      recipients: ['amt@behoerde.example'],
      client: { listener: 'inbound', ip: '192.0.2.1', helo: 'mx.example.org', tls: true },
      blob: { ref: sha, sha256: sha, size: 10 },
      itinerary: ['scan', 'deliver'],
    });
    await recordMessage(db.pool, envelope);
    const id = newMessageId();
    await db.pool.query(
      `insert into quarantine (id, message_id, blob_sha256, direction, verdict, finding, envelope, expires_at,
         released_at, released_by)
       values ($1, $2, $3, 'inbound', 'infected', 'Eicar-Signature', $4, $5, $6, $7)`,
      [id, envelope.id, sha, JSON.stringify(envelope), expiresAt, released ? NOW : null, released ? 'ops' : null],
    );
    return { id, messageId: envelope.id };
  }

  async function remaining(): Promise<string[]> {
    const result = await db.pool.query<{ id: string }>('select id from quarantine order by id');
    return result.rows.map((r) => r.id);
  }

  it('deletes every expired entry in batches, keeps the rest, and records quarantine.purged on each trace', async () => {
    const a = 'a'.repeat(64);
    const b = 'b'.repeat(64);
    const expired = [
      await quarantined(new Date(NOW.getTime() - 2 * DAY), a),
      await quarantined(new Date(NOW.getTime() - DAY), a),
      await quarantined(new Date(NOW.getTime() - 1000), b, true),
      await quarantined(NOW, b),
      await quarantined(new Date(NOW.getTime() - 3 * DAY), b),
    ];
    const kept = [
      await quarantined(new Date(NOW.getTime() + 1000), a),
      await quarantined(new Date(NOW.getTime() + DAY), b),
    ];

    const purge = await purgeExpiredQuarantine(db.pool, NOW, 2);
    assert.equal(purge.deleted, 5);
    assert.deepEqual(purge.blobSha256s.sort(), [a, b]);
    assert.deepEqual(
      await remaining(),
      kept.map((k) => k.id),
    );
    for (const entry of expired) {
      const trace = await getTrace(db.pool, entry.messageId);
      const events = trace?.events.filter((e) => e.event === 'quarantine.purged') ?? [];
      assert.equal(events.length, 1);
      assert.deepEqual(events[0]?.data, { quarantineId: entry.id });
      assert.equal(events[0]?.at, NOW.toISOString());
    }

    const again = await purgeExpiredQuarantine(db.pool, NOW, 2);
    assert.deepEqual(again, { deleted: 0, blobSha256s: [] });
  });

  it('refuses a batch size that is not a positive whole number', async () => {
    await assert.rejects(purgeExpiredQuarantine(db.pool, NOW, 0), RangeError);
    await assert.rejects(purgeExpiredQuarantine(db.pool, NOW, 1.5), RangeError);
  });
});
