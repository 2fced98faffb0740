import assert from 'node:assert/strict';
import { buffer } from 'node:stream/consumers';
import { describe, it } from 'node:test';
import {
  type ArchiveEntry,
  archiveEntryPaths,
  mailboxArchive,
  subjectFilePart,
} from '../src/portal/mailbox-archive.ts';
import { readZip } from './zip-reader.ts';

const at = new Date('2025-07-01T10:00:00Z');
const entry = (rowId: string, folder: ArchiveEntry['folder'], subject: string): ArchiveEntry => ({
  rowId,
  folder,
  subject,
  receivedAt: at,
  size: 1,
});

describe('the mailbox archive', () => {
  it('names entries by folder, number and subject, unique even for equal subjects', () => {
    const paths = archiveEntryPaths([
      entry('1', 'inbox', 'Bescheid'),
      entry('2', 'inbox', 'Bescheid'),
      entry('3', 'sent', 'Re: Bescheid'),
      entry('4', 'trash', ''),
      entry('5', 'inbox', 'BESCHEID'),
    ]);
    assert.deepEqual(paths, [
      'Eingang/001-Bescheid.eml',
      'Eingang/002-Bescheid.eml',
      'Gesendet/001-Re_ Bescheid.eml',
      'Papierkorb/001-ohne Betreff.eml',
      'Eingang/003-BESCHEID.eml',
    ]);
    assert.equal(new Set(paths.map((p) => p.toLowerCase())).size, paths.length);
  });

  it('keeps a sender-chosen subject inside its folder and readable', () => {
    const table: Array<[string, string]> = [
      ['../../../etc/cron.d/x', '_.._.._etc_cron.d_x'],
      ['C:\\Windows\\System32', 'C__Windows_System32'],
      ['a\r\nb\tc\u0000d', 'a b cd'],
      ['rechnung\u202efdp.exe', 'rechnungfdp.exe'],
      ['...', 'ohne Betreff'],
      ['<script>"x"|?*', '_script__x____'],
      ['ä'.repeat(300), 'ä'.repeat(60)],
    ];
    for (const [subject, expected] of table) assert.equal(subjectFilePart(subject), expected, subject);
  });

  it('numbers with more digits when a folder holds more than 999 messages', () => {
    const paths = archiveEntryPaths(Array.from({ length: 1200 }, (_, i) => entry(String(i), 'inbox', 'x')));
    assert.equal(paths[0], 'Eingang/0001-x.eml');
    assert.equal(paths[1199], 'Eingang/1200-x.eml');
  });

  it('streams every message into the zip, reading each only when it is written', async () => {
    const entries = [entry('a', 'inbox', 'Eins'), entry('b', 'sent', 'Zwei'), entry('c', 'trash', 'Drei')];
    const opened: string[] = [];
    const zip = await buffer(
      mailboxArchive(entries, async (e) => {
        opened.push(e.rowId);
        return Buffer.from(`Subject: ${e.subject}\r\n\r\nInhalt ${e.rowId}\r\n`);
      }),
    );
    assert.deepEqual(opened, ['a', 'b', 'c']);
    assert.deepEqual(await readZip(zip), [
      { path: 'Eingang/001-Eins.eml', content: Buffer.from('Subject: Eins\r\n\r\nInhalt a\r\n') },
      { path: 'Gesendet/001-Zwei.eml', content: Buffer.from('Subject: Zwei\r\n\r\nInhalt b\r\n') },
      { path: 'Papierkorb/001-Drei.eml', content: Buffer.from('Subject: Drei\r\n\r\nInhalt c\r\n') },
    ]);
  });

  it('is an empty zip for an empty mailbox', async () => {
    assert.deepEqual(await readZip(await buffer(mailboxArchive([], async () => Buffer.alloc(0)))), []);
  });

  it('breaks off with the error when a message cannot be read, rather than leaving it out', async () => {
    const stream = mailboxArchive([entry('a', 'inbox', 'Eins'), entry('b', 'inbox', 'Zwei')], async (e) => {
      if (e.rowId === 'b') throw new Error('MAILBOX_CONTENT_TAMPERED');
      return Buffer.from('x');
    });
    await assert.rejects(buffer(stream), /MAILBOX_CONTENT_TAMPERED/);
  });
});
