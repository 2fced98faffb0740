// The two ways an envelope comes into being: a message the gateway accepted (ingest, later the portal) and mail the
// gateway writes itself (DSNs, notices). Every envelope is made here, so a new envelope version changes this file.
import {
  type BlobRef,
  type ClientInfo,
  type Direction,
  type DsnRequest,
  ENVELOPE_VERSION,
  type Envelope,
} from './envelope.ts';
import { newMessageId, newTraceId } from './ids.ts';
import { itineraryFor } from './itinerary.ts';

export interface AcceptedMessage {
  /** Where the message comes from and goes to (the gateway's own mail is made by generatedEnvelope). */
  direction: Direction;
  /** Envelope sender; '' is the null reverse-path. */
  mailFrom: string;
  recipients: readonly string[];
  client: ClientInfo;
  blob: BlobRef;
  dsn?: DsnRequest | undefined;
  /** Submitted mail: the checked author (the first From address, else the envelope sender). */
  author?: string | undefined;
  /** Given when the id is needed before the envelope (ingest writes it into the Received header); else new. */
  id?: string;
  /** Given when the message is one of several envelopes of one accepted message; else new. */
  traceId?: string;
  /** Default: now. */
  receivedAt?: Date;
}

/** The envelope of a message the gateway just accepted: at the start of its direction's itinerary, nothing decided. */
export function newEnvelope(message: AcceptedMessage): Envelope {
  const receivedAt = message.receivedAt ?? new Date();
  return {
    v: ENVELOPE_VERSION,
    id: message.id ?? newMessageId(receivedAt.getTime()),
    traceId: message.traceId ?? newTraceId(),
    receivedAt: receivedAt.toISOString(),
    direction: message.direction,
    mailFrom: message.mailFrom,
    recipients: [...message.recipients],
    client: message.client,
    blob: message.blob,
    itinerary: itineraryFor(message.direction),
    hop: 0,
    verdicts: {},
    attempt: 0,
    ...(message.dsn ? { dsn: message.dsn } : {}),
    ...(message.author ? { author: message.author } : {}),
  };
}

export interface GeneratedMail {
  /** The trace the mail belongs to: that of the message it is about. */
  traceId: string;
  /** The message it is about (a DSN's original message, a notice's quarantined one). */
  relatesTo?: string | undefined;
  /** Default '' (the null reverse-path): nothing may bounce back to the gateway about its own mail (RFC 3464). */
  mailFrom?: string;
  recipients: readonly string[];
  blob: BlobRef;
  /** The gateway's host name: it is the client that submitted the mail. */
  hostname: string;
  /** When the gateway made the mail. */
  createdAt: Date;
  /** Given when the id is needed before the envelope (the mail's own Message-ID); else new. */
  id?: string;
}

/** The envelope of mail the gateway writes itself: direction generated, from the gateway, straight to deliver. */
export function generatedEnvelope(mail: GeneratedMail): Envelope {
  return {
    v: ENVELOPE_VERSION,
    id: mail.id ?? newMessageId(mail.createdAt.getTime()),
    traceId: mail.traceId,
    receivedAt: mail.createdAt.toISOString(),
    direction: 'generated',
    mailFrom: mail.mailFrom ?? '',
    recipients: [...mail.recipients],
    client: { listener: 'gateway', ip: '', helo: mail.hostname, tls: false },
    blob: mail.blob,
    itinerary: itineraryFor('generated'),
    hop: 0,
    verdicts: {},
    attempt: 0,
    ...(mail.relatesTo ? { relatesTo: mail.relatesTo } : {}),
  };
}
