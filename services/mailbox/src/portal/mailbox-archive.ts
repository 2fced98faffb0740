// "Alle Nachrichten herunterladen": the whole mailbox as one zip, streamed. One .eml per message under its folder
// (Eingang/001-Betreff.eml); each message is read and decrypted only when the zip writer reaches it, so one
// message at a time is in memory, whatever the mailbox holds.
import { Readable } from 'node:stream';
import type { MailboxFolder } from '@smgw/mailbox-store';
import { displayText } from '@smgw/mime';
import { ZipFile } from 'yazl';

export interface ArchiveEntry {
  rowId: string;
  folder: MailboxFolder;
  /** The subject as the summary has it (may be empty). */
  subject: string;
  receivedAt: Date;
  size: number;
}

export const ARCHIVE_FOLDERS: Record<MailboxFolder, string> = {
  inbox: 'Eingang',
  sent: 'Gesendet',
  trash: 'Papierkorb',
};

const MAX_SUBJECT_CHARS = 60;

/** A subject as part of a file name: one path segment of safe characters, short, never empty. */
export function subjectFilePart(subject: string): string {
  const cleaned = displayText(subject, 10_000)
    .replace(/[/\\:*?"<>|]/g, '_')
    .replace(/\s+/g, ' ');
  const cut = [...cleaned].slice(0, MAX_SUBJECT_CHARS).join('');
  return cut.replace(/^[\s.]+|[\s.]+$/g, '') || 'ohne Betreff';
}

/**
 * The path of each entry in the zip, in order: `<folder>/<NNN>-<subject>.eml`, numbered per folder in the given order
 * (at least three digits), so every path is unique even when subjects are not.
 */
export function archiveEntryPaths(entries: readonly ArchiveEntry[]): string[] {
  const totals = new Map<MailboxFolder, number>();
  for (const entry of entries) totals.set(entry.folder, (totals.get(entry.folder) ?? 0) + 1);
  const counters = new Map<MailboxFolder, number>();
  return entries.map((entry) => {
    const number = (counters.get(entry.folder) ?? 0) + 1;
    counters.set(entry.folder, number);
    const digits = Math.max(3, String(totals.get(entry.folder)).length);
    return `${ARCHIVE_FOLDERS[entry.folder]}/${String(number).padStart(digits, '0')}-${subjectFilePart(entry.subject)}.eml`;
  });
}

/**
 * The zip as a stream. `open` reads one message's raw bytes when the writer gets to it; if it fails the stream ends
 * with that error (the download breaks off rather than leaving a message out silently).
 */
export function mailboxArchive(
  entries: readonly ArchiveEntry[],
  open: (entry: ArchiveEntry) => Promise<Buffer>,
): Readable {
  const zip = new ZipFile();
  const output = zip.outputStream as Readable;
  zip.on('error', (err: Error) => output.destroy(err));
  const paths = archiveEntryPaths(entries);
  entries.forEach((entry, i) => {
    zip.addReadStreamLazy(paths[i] ?? '', { mtime: entry.receivedAt, mode: 0o100644 }, (callback) => {
      open(entry).then(
        (raw) => callback(null, Readable.from([raw])),
        (err: unknown) => callback(err, Readable.from([])),
      );
    });
  });
  zip.end();
  return output;
}
