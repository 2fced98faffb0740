// The pieces of `./smgw bench`'s outbound paths that decide whether a run is honest: which paths a run names, how a
// message that reached the outside sink is judged (encrypted in the path's form, or the load in clear), the sample
// verdict, the recipients' keys as the key directory takes them (and that each recipient opens what was encrypted to
// it), and the portal path's arrivals counted from the recipient's mailbox. The whole bench is `./smgw bench`.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { encryptEnveloped, encryptPgpMime } from '@smgw/crypto';
import { createTestPki, type TestPki } from '@smgw/crypto/testing';
import { withTransaction } from '@smgw/db';
import { currentCertificates, pgpKeysFor, trustAnchorCertificates } from '@smgw/key-directory';
import {
  createFolderMailboxKeyStore,
  ensureMailbox,
  insertMailboxMessage,
  type MailboxFolder,
  type MailboxKeyStore,
  openMailboxKey,
} from '@smgw/mailbox-store';
import { createTestDatabase, type TestDatabase } from '@smgw/testing';
import { watchMailbox } from '../src/peers/mailbox-arrivals.ts';
import { addPgpRecipient, addSmimeRecipient } from '../src/peers/outside-recipients.ts';
import {
  judgeOutsideSample,
  LOAD_TEXT_IN_CLEAR,
  outboundNote,
  outsideForm,
  PATH_ADDRESSES,
  parsePaths,
} from '../src/peers/paths.ts';

const run = promisify(execFile);

/** What smtp-sink writes before a message it dumps (its own fields and Received), LF line ends as it writes them. */
const SINK_FIELDS =
  'X-Client-Addr: 127.0.0.1\nX-Client-Proto: ESMTP\nX-Helo-Args: smgw.test\nX-Mail-Args: <bench@behoerde.example>\n' +
  'X-Rcpt-Args: <smime@buerger.example>\nReceived: from smgw.test ([127.0.0.1])\n\tby smtp-sink (smtp-sink) with ESMTP id 1;\n' +
  '\tSat,  5 Dec 2026 03:38:25 +0000 (UTC)\n';

/** The body smtp-source sends with -l: a sequence number, then lines of X. */
const LOAD_BODY = `1${'X'.repeat(77)}\r\n${'X'.repeat(76)}\r\n`;

const dumped = (message: string) => SINK_FIELDS + message.replace(/\r\n/g, '\n');

async function text(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks).toString('latin1');
}

describe('the paths of a run', () => {
  it('takes known names in the order given, each once, with spaces around them', () => {
    assert.deepEqual(parsePaths('inbound,smime,pgp,portal'), ['inbound', 'smime', 'pgp', 'portal']);
    assert.deepEqual(parsePaths(' portal , smime,portal,'), ['portal', 'smime']);
  });

  it('refuses unknown names, an empty list and anything that is not a plain list of names', () => {
    assert.throws(() => parsePaths('inbound,smtp'), /no such path smtp/);
    assert.throws(() => parsePaths(''), /at least one/);
    assert.throws(() => parsePaths(' , '), /at least one/);
    assert.throws(() => parsePaths('smime;rm -rf /'), /no such path/);
    assert.throws(() => parsePaths('SMIME'), /no such path SMIME/);
  });

  it('sends the outbound load from an agency address to an outside one, and the inbound load the other way', () => {
    assert.deepEqual(PATH_ADDRESSES.inbound, { from: 'bench@example.org', to: 'amt@behoerde.example' });
    for (const path of ['smime', 'pgp', 'portal'] as const) {
      assert.match(PATH_ADDRESSES[path].from, /@behoerde\.example$/);
      assert.doesNotMatch(PATH_ADDRESSES[path].to, /behoerde\.example$/);
    }
    assert.equal(new Set(['smime', 'pgp', 'portal'].map((p) => PATH_ADDRESSES[p as 'smime'].to)).size, 3);
  });

  it('says under an outbound table that the peers encrypt nothing and which ratio the issue asks for', () => {
    for (const path of ['smime', 'pgp', 'portal'] as const) {
      const note = outboundNote(path);
      const words = note.replace(/\s+/g, ' ');
      assert.match(words, /neither encrypts/);
      assert.match(words, /at least 3x postfix\+amavis/);
      assert.match(words, new RegExp(`the gateway's ${path} path is submission → scan → `));
      for (const line of note.split('\n')) {
        assert.ok(line.startsWith('  ') && line.length <= 118, `an indented line of at most 118: ${line}`);
      }
    }
    assert.match(outboundNote('portal').replace(/\s+/g, ' '), /portal mailbox \(arrival: its row there\)/);
  });
});

describe('a message at the outside sink', () => {
  const smime = [
    'From: <bench@behoerde.example>',
    'To: <smime@buerger.example>',
    'MIME-Version: 1.0',
    'Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m',
    'Content-Transfer-Encoding: base64',
    '',
    'MIAGCSqGSIb3DQEHA6CAMIACAQAxggGi',
    '',
  ].join('\r\n');

  it('is S/MIME when its own Content-Type says enveloped data, in either spelling, folded or quoted', () => {
    assert.equal(outsideForm(dumped(smime)), 'smime');
    assert.equal(outsideForm(smime), 'smime', 'CRLF as well');
    const folded = smime.replace(
      'Content-Type: application/pkcs7-mime; smime-type=enveloped-data;',
      'content-type:\r\n\tapplication/x-pkcs7-mime;\r\n smime-type="enveloped-data";',
    );
    assert.equal(outsideForm(dumped(folded)), 'smime');
  });

  it('is PGP/MIME when it is multipart/encrypted for application/pgp-encrypted', () => {
    const pgp = [
      'From: <bench@behoerde.example>',
      'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="b"',
      '',
      '--b',
      'Content-Type: application/pgp-encrypted',
      '',
      'Version: 1',
      '--b--',
      '',
    ].join('\r\n');
    assert.equal(outsideForm(dumped(pgp)), 'pgp');
  });

  it('is plaintext whenever the load’s text is in it, whatever its label claims', () => {
    assert.equal(
      outsideForm(dumped(`From: <bench@behoerde.example>\r\nSubject: bench\r\n\r\n${LOAD_BODY}`)),
      'plaintext',
    );
    assert.equal(outsideForm(dumped(`${smime.trimEnd()}\r\n${LOAD_BODY}`)), 'plaintext', 'a lying S/MIME label');
    assert.ok(LOAD_BODY.includes(LOAD_TEXT_IN_CLEAR));
  });

  it('is neither when the label is signed data, missing, doubled, or only in the body', () => {
    assert.equal(outsideForm(dumped(smime.replace('enveloped-data', 'signed-data'))), 'other');
    assert.equal(outsideForm(dumped('From: <a@b.example>\r\n\r\nhello\r\n')), 'other');
    const doubled = smime.replace('MIME-Version: 1.0', 'Content-Type: text/plain');
    assert.equal(outsideForm(dumped(doubled)), 'other');
    const inBody = `From: <a@b.example>\r\n\r\n${smime}`;
    assert.equal(outsideForm(dumped(inBody)), 'other');
  });
});

describe('the sample before an outbound path is measured', () => {
  it('passes S/MIME and PGP only when every message of the sample arrived in the path’s form', () => {
    assert.equal(judgeOutsideSample('smime', ['smime', 'smime'], 2).ok, true);
    assert.equal(judgeOutsideSample('pgp', ['pgp', 'pgp', 'pgp'], 3).ok, true);
    assert.equal(judgeOutsideSample('smime', ['smime'], 2).ok, false, 'one missing');
    assert.equal(judgeOutsideSample('smime', ['smime', 'smime', 'smime'], 2).ok, false, 'one more than sent');
    assert.equal(judgeOutsideSample('smime', ['smime', 'pgp'], 2).ok, false, 'another form');
    assert.equal(judgeOutsideSample('pgp', ['pgp', 'other'], 2).ok, false);
  });

  it('fails every path as soon as one message reached the outside in plaintext', () => {
    for (const path of ['smime', 'pgp', 'portal'] as const) {
      const verdict = judgeOutsideSample(path, ['other', 'plaintext', path === 'portal' ? 'other' : path], 3);
      assert.equal(verdict.ok, false);
      assert.match(verdict.summary, /PLAINTEXT REACHED THE OUTSIDE: 1 of 3/);
    }
  });

  it('passes the portal path with notices at the sink, which carry none of the message', () => {
    const verdict = judgeOutsideSample('portal', ['other', 'other'], 2);
    assert.equal(verdict.ok, true);
    assert.match(verdict.summary, /2 notice\(s\)/);
  });
});

describe('the outside recipients in the key directory', () => {
  let db: TestDatabase;
  let pki: TestPki;
  let dir: string;
  const gnupgHome = () => join(dir, 'gnupg');

  before(async () => {
    [db, pki, dir] = await Promise.all([
      createTestDatabase(),
      createTestPki('smgw-bench-test-pki-'),
      mkdtemp(join(tmpdir(), 'smgw-bench-test-')),
    ]);
    await mkdir(gnupgHome(), { mode: 0o700 });
  });
  after(async () => {
    await run('gpgconf', ['--kill', 'gpg-agent'], { env: { ...process.env, GNUPGHOME: gnupgHome() } }).catch(
      () => undefined,
    );
    await db?.drop();
    await pki?.remove();
    await rm(dir, { recursive: true, force: true });
  });

  it('takes the S/MIME recipient’s certificate as current, validated against its CA made a trust anchor, and the recipient opens what was encrypted to it', async () => {
    const recipient = await addSmimeRecipient(db.pool, pki, 'smime@buerger.example');
    assert.equal((await trustAnchorCertificates(db.pool)).length, 1);
    const [certificate, ...more] = await currentCertificates(db.pool, 'smime@buerger.example');
    assert.ok(certificate);
    assert.equal(more.length, 0);
    const inner = `Content-Type: text/plain\r\n\r\n${LOAD_BODY}`;
    const message = await text(
      encryptEnveloped({
        content: Buffer.from(inner),
        recipients: [{ certificate: certificate.der }],
        headers: { From: '<bench@behoerde.example>', To: '<smime@buerger.example>', Subject: 'bench' },
      }),
    );
    const file = join(dir, 'smime.eml');
    await writeFile(file, dumped(message), 'latin1');
    assert.equal(outsideForm(dumped(message)), 'smime');
    assert.ok((await recipient.open(file)).includes(LOAD_TEXT_IN_CLEAR));

    // What claims to be S/MIME but is not does not open.
    const lying = join(dir, 'lying.eml');
    await writeFile(lying, dumped(message.replace(/\r\n\r\n[\s\S]*$/, `\r\n\r\n${LOAD_BODY}`)), 'latin1');
    await assert.rejects(recipient.open(lying));
  });

  it('takes the PGP recipient’s key approved, and the recipient opens what was encrypted to it', async () => {
    const recipient = await addPgpRecipient(db.pool, gnupgHome(), 'pgp@buerger.example');
    const [key, ...more] = await pgpKeysFor(db.pool, 'pgp@buerger.example');
    assert.ok(key);
    assert.equal(key.state, 'approved');
    assert.equal(more.length, 0);
    const message = await text(
      await encryptPgpMime({
        content: Buffer.from(`Content-Type: text/plain\r\n\r\n${LOAD_BODY}`),
        recipientKeys: [key.armored],
        headers: {
          from: '<bench@behoerde.example>',
          to: '<pgp@buerger.example>',
          subject: 'bench',
          date: new Date(),
          messageId: '<1@bench.test>',
        },
      }),
    );
    const file = join(dir, 'pgp.eml');
    await writeFile(file, dumped(message), 'latin1');
    assert.equal(outsideForm(dumped(message)), 'pgp');
    assert.ok((await recipient.open(file)).includes(LOAD_TEXT_IN_CLEAR));
  });
});

describe('arrivals in a portal mailbox', () => {
  let db: TestDatabase;
  let keys: MailboxKeyStore;

  before(async () => {
    db = await createTestDatabase();
    keys = createFolderMailboxKeyStore(db.keys);
  });
  after(() => db?.drop());

  async function store(address: string, folder: MailboxFolder = 'inbox') {
    const { mailbox } = await ensureMailbox(db.pool, address, keys);
    const dataKey = await openMailboxKey(keys, mailbox);
    await withTransaction(db.pool, (client) =>
      insertMailboxMessage(client, {
        mailboxId: mailbox.id,
        dataKey,
        folder,
        messageId: randomUUID(),
        recipient: address,
        raw: Buffer.from('Subject: bench\r\n\r\nhello\r\n'),
        receivedAt: new Date(),
      }),
    );
  }

  it('counts the recipient’s inbox rows, waiting for a mailbox that does not exist yet, and nothing else', async () => {
    const watch = await watchMailbox(db.pool, 'portal@buerger.example');
    try {
      const arrived = watch.awaitCount(2, { timeoutMs: 30_000, intervalMs: 10 });
      await store('portal@buerger.example');
      await store('portal@buerger.example');
      await arrived;
      assert.equal(watch.count(), 2);
      assert.equal(watch.arrivals.length, 2);
      assert.ok(watch.arrivals.every((t) => t > 0 && t <= performance.now()));

      await store('portal@buerger.example', 'sent');
      await store('andere@buerger.example');
      await assert.rejects(watch.awaitCount(3, { timeoutMs: 300, intervalMs: 10 }), /timed out/);
      assert.equal(watch.count(), 2, 'a sent copy and another mailbox do not count');
    } finally {
      await watch.close();
    }
  });

  it('polls on a PostgreSQL backend of its own, and stops a wait when closed', async () => {
    const watch = await watchMailbox(db.pool, 'niemand@buerger.example');
    const { rows } = await db.pool.query('select pid from pg_stat_activity where pid = $1', [watch.backendPid]);
    assert.equal(rows.length, 1);
    const { rows: own } = await db.pool.query('select pg_backend_pid() as pid');
    assert.notEqual(own[0]?.pid, watch.backendPid);
    const waiting = watch.awaitCount(1, { timeoutMs: 60_000, intervalMs: 10 });
    await watch.close();
    await assert.rejects(waiting, /stopped watching/);
  });

  it('finds nothing for a hostile address and leaves the tables alone', async () => {
    const watch = await watchMailbox(db.pool, "x'); drop table mailbox_messages; --@buerger.example");
    try {
      await assert.rejects(watch.awaitCount(1, { timeoutMs: 200, intervalMs: 10 }), /timed out/);
    } finally {
      await watch.close();
    }
    const { rows } = await db.pool.query('select count(*)::int as n from mailbox_messages');
    assert.ok((rows[0]?.n ?? 0) >= 3);

    const noAddress = await watchMailbox(db.pool, 'no address at all');
    try {
      await assert.rejects(noAddress.awaitCount(1, { timeoutMs: 5000 }), /not a mailbox address/);
    } finally {
      await noAddress.close();
    }
  });
});
