import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { describe, it } from 'node:test';
import {
  BareLineEndingDetector,
  BareLineEndingError,
  BareLineEndingGuard,
  NulByteError,
} from '../src/bare-line-ending-guard.ts';

function scan(chunks: string[]): BareLineEndingError | NulByteError | undefined {
  const detector = new BareLineEndingDetector();
  for (const chunk of chunks) {
    const error = detector.check(Buffer.from(chunk, 'latin1'));
    if (error) return error;
  }
  return detector.end();
}

describe('bare line ending detection', () => {
  const clean: [string, string[]][] = [
    ['CRLF line endings', ['Subject: x\r\n\r\nbody\r\n']],
    ['an empty message', []],
    ['empty chunks', ['', 'a\r\n', '']],
    ['a CRLF split across two chunks (\\r ends one, \\n starts the next)', ['line one\r', '\nline two\r\n']],
    ['a chunk that is only \\r between two chunks', ['a', '\r', '\nb\r\n']],
    ['many CRLFs split every way', ['a\r\nb\r', '\n\r', '\n', 'c\r\n']],
    ['binary bytes without CR, LF or NUL', ['\u00ff\u0001\u007f\r\n']],
  ];
  for (const [name, chunks] of clean) {
    it(`lets ${name} through`, () => {
      assert.equal(scan(chunks), undefined);
    });
  }

  const dirty: [string, string[], number][] = [
    ['a bare LF', ['line\nnext\r\n'], 4],
    ['a bare LF at the start of a chunk after a chunk not ending in \\r', ['line\r\n', '\nnext'], 6],
    ['a bare LF at the very start', ['\nx'], 0],
    ['a bare CR', ['line\rnext\r\n'], 4],
    ['a bare CR at the end of a chunk followed by something other than \\n', ['line\r', 'x\r\n'], 4],
    ['a bare CR as the last byte of the message', ['line\r\nend\r'], 9],
    ['\\n.\\n (smuggling)', ['a\r\n\n.\n'], 3],
    ['\\r.\\r (smuggling)', ['a\r\n\r.\r'], 3],
    ['\\n.\\r\\n (smuggling)', ['a\n.\r\n'], 1],
    ['\\r\\r\\n', ['a\r\r\n'], 1],
  ];
  for (const [name, chunks, offset] of dirty) {
    it(`refuses ${name}`, () => {
      const error = scan(chunks);
      assert.ok(error instanceof BareLineEndingError);
      assert.equal(error.code, 'BARE_LINE_ENDING');
      assert.equal(error.offset, offset);
    });
  }
});

describe('NUL byte detection', () => {
  const cases: [string, string[], number][] = [
    ['a NUL in the body', ['Subject: a\r\n\r\nx\u0000y\r\n'], 15],
    ['a NUL as the first byte of a later chunk', ['abc\r\n', '\u0000'], 5],
    ['a NUL in a header', ['Subject: a\u0000b\r\n'], 10],
  ];
  for (const [name, chunks, offset] of cases) {
    it(`refuses ${name}`, () => {
      const error = scan(chunks);
      assert.ok(error instanceof NulByteError);
      assert.equal(error.code, 'NUL_BYTE');
      assert.equal(error.offset, offset);
    });
  }
});

describe('BareLineEndingGuard', () => {
  it('passes clean bytes through unchanged', async () => {
    const chunks = ['Subject: a\r', '\n\r\n', 'body\r\n'].map((c) => Buffer.from(c));
    const out = await buffer(Readable.from(chunks).pipe(new BareLineEndingGuard()));
    assert.equal(out.toString(), 'Subject: a\r\n\r\nbody\r\n');
  });

  it('fails the stream with BareLineEndingError on a bare LF', async () => {
    const guard = Readable.from([Buffer.from('a\r\n'), Buffer.from('b\nc')]).pipe(new BareLineEndingGuard());
    await assert.rejects(buffer(guard), BareLineEndingError);
  });

  it('fails the stream at the end when the last byte is a bare CR', async () => {
    const guard = Readable.from([Buffer.from('a\r\nb\r')]).pipe(new BareLineEndingGuard());
    await assert.rejects(buffer(guard), BareLineEndingError);
  });
});
