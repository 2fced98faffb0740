// Hand-written MIME for the portal tests: what a sender controls (header values, filenames, bodies) goes in as is.

export interface Part {
  headers: string[];
  body: string | Buffer;
}

/** A leaf part's bytes (headers, blank line, body). */
function partBytes(part: Part): Buffer {
  return Buffer.concat([Buffer.from(`${part.headers.join('\r\n')}\r\n\r\n`, 'utf8'), Buffer.from(part.body)]);
}

/** multipart/<subtype> with the given parts, as a Part itself (so it nests). */
export function multipart(
  subtype: string,
  parts: Part[],
  boundary = `b-${subtype}-${parts.length}-${Math.random()}`,
): Part {
  const chunks: Buffer[] = [];
  for (const part of parts) chunks.push(Buffer.from(`--${boundary}\r\n`), partBytes(part), Buffer.from('\r\n'));
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { headers: [`Content-Type: multipart/${subtype}; boundary="${boundary}"`], body: Buffer.concat(chunks) };
}

export function textPart(text: string): Part {
  return {
    headers: ['Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 8bit'],
    body: text,
  };
}

export function htmlPart(html: string): Part {
  return { headers: ['Content-Type: text/html; charset=utf-8', 'Content-Transfer-Encoding: 8bit'], body: html };
}

export function base64Lines(content: Buffer): string {
  return `${content.toString('base64').replace(/.{76}/g, '$&\r\n').replace(/\r\n$/, '')}\r\n`;
}

/** An attachment; `dispositionName` is written into the header as given (quotes and all), so tests can be evil. */
export function attachmentPart(
  contentType: string,
  dispositionName: string,
  content: Buffer,
  extra: string[] = [],
): Part {
  return {
    headers: [
      `Content-Type: ${contentType}`,
      `Content-Disposition: attachment; filename=${dispositionName}`,
      'Content-Transfer-Encoding: base64',
      ...extra,
    ],
    body: base64Lines(content),
  };
}

export interface MessageHeaders {
  from?: string;
  to?: string;
  cc?: string;
  subject?: string;
  date?: string;
}

/** A whole message: the top-level fields, MIME-Version, then the body part's own headers and body. */
export function message(headers: MessageHeaders, body: Part): Buffer {
  const fields = [
    headers.from === undefined ? 'From: Amt <amt@behoerde.example>' : `From: ${headers.from}`,
    headers.to === undefined ? 'To: buerger@example.org' : `To: ${headers.to}`,
    ...(headers.cc ? [`Cc: ${headers.cc}`] : []),
    headers.subject === undefined ? 'Subject: Bescheid' : `Subject: ${headers.subject}`,
    headers.date === undefined ? 'Date: Tue, 01 Jul 2025 10:00:00 +0200' : `Date: ${headers.date}`,
    'Message-ID: <m1@behoerde.example>',
    'MIME-Version: 1.0',
  ];
  return Buffer.concat([Buffer.from(`${fields.join('\r\n')}\r\n`, 'utf8'), partBytes(body)]);
}
