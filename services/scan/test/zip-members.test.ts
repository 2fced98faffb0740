// The zip walk's budget of MIME parts and zip members (clamd's MaxFiles), called directly: a stranger's message of
// many tiny parts ends in a finding at the budget, and the work done is counted in parts, not in seconds.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { multipartParts } from '@smgw/crypto';
import { ARCHIVE_FINDINGS, archiveFindingOf, archiveLimitsFor } from '../src/zip-members.ts';
import { streamedZip } from './fixtures.ts';

/** A zip with no members: just its end record (22 bytes). */
const EMPTY_ZIP = Buffer.from(`504b0506${'00'.repeat(18)}`, 'hex');
const LIMITS = archiveLimitsFor(51 * 1024 * 1024);

/** A message of `count` parts, each holding `part` (binary, no header of its own). */
function messageOfParts(count: number, part: Buffer): Buffer {
  const one = Buffer.concat([Buffer.from('--b\r\n\r\n'), part, Buffer.from('\r\n')]);
  return Buffer.concat([
    Buffer.from('From: a@example.org\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'),
    ...Array<Buffer>(count).fill(one),
    Buffer.from('--b--\r\n'),
  ]);
}

const findingOf = (message: Buffer, limits = LIMITS) =>
  archiveFindingOf([{ bytes: message, path: '/', mime: true }], limits);

describe('the budget of MIME parts and zip members (MaxFiles)', () => {
  it('ends a message of 100,000 empty zips (3 MB) at part 10,000: the message and 9,999 parts are all it walks', async () => {
    const message = messageOfParts(100_000, EMPTY_ZIP);
    // What the walk gets to split: no more than the budget left, plus the one part that says there are more.
    assert.equal(multipartParts(message.subarray(message.indexOf('--b')), 'b', LIMITS.maxFiles - 1).length, 10_000);
    assert.deepEqual(await findingOf(message), {
      signature: ARCHIVE_FINDINGS.files,
      where: '/10000: more than 10000 MIME parts and zip members',
    });
  });

  it('ends there also when the parts are not zips at all (what lies beyond is not looked at)', async () => {
    const message = messageOfParts(20_000, Buffer.from('x'));
    assert.equal((await findingOf(message))?.signature, ARCHIVE_FINDINGS.files);
  });

  it('counts parts and members together: 5 parts of a zip of 3 members is 1 + 5 + 15', async () => {
    const zip = streamedZip(['a', 'b', 'c'].map((name) => ({ name, chunks: () => [Buffer.from(name)] })));
    const message = messageOfParts(5, zip);
    assert.equal(await findingOf(message, { ...LIMITS, maxFiles: 21 }), undefined);
    assert.deepEqual(await findingOf(message, { ...LIMITS, maxFiles: 20 }), {
      signature: ARCHIVE_FINDINGS.files,
      where: 'zip at /5, entry 3: more than 20 MIME parts and zip members',
    });
  });

  it('leaves a message within the budget without a finding', async () => {
    assert.equal(await findingOf(messageOfParts(9_999, EMPTY_ZIP)), undefined);
  });
});

describe("the budget of header lines (every MIME entity's, in all)", () => {
  /** A message of one part whose header block is `header`, an empty zip its body. */
  const messageWithPartHeader = (header: string) =>
    Buffer.concat([
      Buffer.from(
        `From: a@example.org\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n${header}\r\n`,
      ),
      EMPTY_ZIP,
      Buffer.from('\r\n--b--\r\n'),
    ]);

  it('ends a part of 4 million header lines (31 MB: 2–3 s of CPU before) in a finding, none of them parsed', async () => {
    assert.deepEqual(await findingOf(messageWithPartHeader('X-A: b\r\n'.repeat(4_000_000))), {
      signature: ARCHIVE_FINDINGS.header,
      where: '/1: more than 99997 header lines left to read',
    });
  });

  it("ends the message's own header block of too many folded lines, or a part's of one line over 1 MiB, there too", async () => {
    const folded = Buffer.from(`From: a@example.org\r\nX-A: b${'\r\n b'.repeat(100_000)}\r\n\r\nx\r\n`);
    assert.equal((await findingOf(folded))?.where, '/: more than 100000 header lines left to read');
    const long = await findingOf(messageWithPartHeader(`X-A: ${'b'.repeat(2 * 1024 * 1024)}\r\n`));
    assert.deepEqual(long, {
      signature: ARCHIVE_FINDINGS.header,
      where: '/1: a header block longer than 1048576 bytes',
    });
  });

  it('lets 9,999 parts of three header lines each pass (30,000 lines), and counts them all against the budget', async () => {
    const part = (i: number) =>
      `--b\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename="${i}.txt"\r\nContent-Transfer-Encoding: 7bit\r\n\r\nx\r\n`;
    const head = 'From: a@example.org\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n';
    const message = Buffer.from(`${head}${Array.from({ length: 9_999 }, (_, i) => part(i)).join('')}--b--\r\n`);
    assert.equal(await findingOf(message), undefined);
    assert.equal(await findingOf(message, { ...LIMITS, maxHeaderLines: 3 + 3 * 9_999 }), undefined);
    // The message's own 3 lines, then 3 a part: part 9,999 finds 2 left.
    assert.deepEqual(await findingOf(message, { ...LIMITS, maxHeaderLines: 2 + 3 * 9_999 }), {
      signature: 'Smgw.Limits.Exceeded.Archive.MaxHeader',
      where: '/9999: more than 2 header lines left to read',
    });
  });
});
