// Outbound: each recipient's copy encrypted in the best form it can open (S/MIME, else OpenPGP), or handed to the
// portal (mailbox). Recipients named in To/Cc sharing a form share one encrypted message, every other (Bcc) recipient
// gets its own; one child envelope per copy. Nothing leaves in clear: a temporary failure retries, mail that is
// already encrypted goes on with its body as it is. Every copy, the portal's too, carries the one outer header
// (outer-headers.ts), never the agency's whole header.
//
// In order: the header (already encrypted?), every key looked up (outbound-keys.ts), the plan decided on them
// (plan-outbound.ts), one copy per group (encrypt-copies.ts), the outcome recorded in one statement, then the
// children, which the consumer publishes (confirmed) before it acks.
//
// A copy whose encryptor refuses the outer header (not-encryptable.ts) can never be made: its recipients alone are
// given up (one child to deliver, which bounces them with a DSN to the sender), while every other copy, and the
// portal's, goes on. Each recipient gets the outcome of its own form.

import type { StagedBlob } from '@smgw/blob-store';
import { checkWholeMessageEncrypted, encryptedFormOf } from '@smgw/crypto';
import {
  advance,
  type BlobRef,
  type Envelope,
  forRecipients,
  NOT_ENCRYPTABLE_STATUS,
  rerouteAfterCurrent,
  withBlob,
  withVerdict,
} from '@smgw/envelope';
import { splitMessage } from '@smgw/mime';
import { type HandlerContext, next, type Outcome } from '@smgw/mq';
import { recipientEventsOf, recordEvent, recordEvents, type TraceEvent } from '@smgw/trace';
import { forgetSigningKeys } from './agency-signing.ts';
import type { EarlierRoute } from './choose-form.ts';
import { type CopyDeps, type EncryptedCopy, encryptCopy, stagePortalCopy } from './encrypt-copies.ts';
import { headerRefusedBy, type NotEncryptable } from './not-encryptable.ts';
import { type KeyLookupDeps, lookUpOutboundKeys } from './outbound-keys.ts';
import { namedInHeader, outerHeaderPairs, passThroughMessage, underOwnBoundary } from './outer-headers.ts';
import { type OutboundPlan, type PlannedCopy, type PlannedRecipient, planOutbound } from './plan-outbound.ts';

export interface OutboundDeps extends KeyLookupDeps, CopyDeps {
  /** SMGW_HOSTNAME: the domain of a Message-ID the gateway has to make up. */
  hostname: string;
  metrics?: { recipients: { inc(labels: { form: string }): void } };
  now: () => Date;
}

export async function encryptOutbound(
  deps: OutboundDeps,
  envelope: Envelope,
  context: HandlerContext,
): Promise<Outcome> {
  const at = deps.now();
  const { fields, body } = await splitMessage(deps.blobStore.open(envelope.blob.ref));
  body.destroy();
  // A label is only a claim: already encrypted means the whole message is one encrypted structure (the same
  // predicate deliver applies to what it sends outside). Only labelled mail is read a second time for it.
  const claimed = encryptedFormOf(fields);
  const check = claimed ? await checkWholeMessageEncrypted(deps.blobStore.open(envelope.blob.ref)) : undefined;
  if (check && !check.encrypted) {
    context.log.warn(
      { code: 'ENCRYPT_FALSE_ENCRYPTED_LABEL', form: claimed, reason: check.reason },
      'labelled as encrypted but not wholly encrypted: encrypted like plain mail',
    );
  }

  // One rule for what of the header may be read outside, whoever encrypted the message.
  const { pairs: outerHeaders, dropped } = outerHeaderPairs(fields, {
    mailFrom: envelope.mailFrom,
    date: new Date(envelope.receivedAt),
    messageId: `${envelope.id}@${deps.hostname}`,
  });
  if (dropped.length > 0) {
    context.log.warn(
      { code: 'ENCRYPT_HEADER_DROPPED', fields: dropped },
      'outer header fields with raw non-ASCII left out',
    );
  }

  if (check?.encrypted) {
    const already = check.form;
    await recordEvent(deps.pool, envelope.id, {
      stage: 'encrypt',
      event: 'message.already-encrypted',
      outcome: 'next',
      data: { form: already },
      at,
    });
    deps.metrics?.recipients.inc({ form: 'already-encrypted' });
    context.log.info(
      { code: 'ENCRYPT_ALREADY_ENCRYPTED', form: already },
      'already encrypted: passed on with its body as it is, under the outer header',
    );
    const verdict = { status: 'already-encrypted', at: at.toISOString(), form: already };
    const blob = await storedAsPassedThrough(deps, envelope, outerHeaders, check);
    return next(advance(withVerdict({ ...envelope, blob }, 'crypto', verdict), 'encrypt'));
  }

  const keys = await lookUpOutboundKeys(deps, envelope, at);
  try {
    // Redelivered, its children may have gone already: each recipient goes the way it went then.
    const earlier = context.redelivered ? await earlierRoutes(deps, envelope.id) : undefined;
    const plan = planOutbound(keys, {
      lastAttempt: context.lastAttempt,
      namedInHeader: namedInHeader(fields),
      earlier,
    });
    const copies: EncryptedCopy[] = [];
    const givenUp: GivenUpCopy[] = [];
    let portalCopy: StagedBlob | undefined;
    const staged = () => [...copies.map((copy) => copy.staged), ...(portalCopy ? [portalCopy] : [])];
    try {
      for (const copy of plan.copies) {
        try {
          copies.push(await encryptCopy(deps, envelope.id, envelope.blob, copy, outerHeaders, at));
        } catch (err) {
          const refused = headerRefusedBy(err);
          if (!refused) throw err;
          givenUp.push({ copy, ...refused });
        }
      }
      if (plan.portal.length > 0) portalCopy = await stagePortalCopy(deps, envelope.id, envelope.blob, outerHeaders);
      // The whole outcome at once, with the copies' blob rows: a redelivery after a failure here starts again from a
      // trace without half of it, and leaves no copy behind.
      const rows = staged().flatMap((blob) => blob.rows);
      await recordEvents(deps.pool, envelope.id, outcomeEvents(plan, copies, givenUp, at), rows);
    } catch (err) {
      await Promise.all(staged().map((blob) => blob.discard()));
      throw err;
    }
    // Committed: the copies' files (of those kept in files) in place before any child envelope names them.
    for (const blob of staged()) await blob.publish();
    for (const { copy, notSigned } of copies) {
      if (!notSigned) continue;
      const why = `signing on for the sender's agency, but not signed: ${notSigned.reason}`;
      context.log.warn({ code: notSigned.code, form: copy.form }, why);
    }
    for (const { copy, code, reason } of givenUp) {
      const recipients = copy.recipients.length;
      context.log.warn(
        { code, reason, form: copy.form, recipients },
        'the header cannot be encrypted in this form: its recipients given up, to be bounced by deliver',
      );
    }
    const gaveUp = new Set(givenUp.flatMap(({ copy }) => copy.recipients.map((r) => r.recipient)));
    for (const recipient of plan.recipients) {
      deps.metrics?.recipients.inc({ form: gaveUp.has(recipient.recipient) ? NOT_ENCRYPTABLE_STATUS : recipient.form });
    }
    const count = (form: string) => plan.recipients.filter((r) => r.form === form && !gaveUp.has(r.recipient)).length;
    context.log.info(
      { code: 'ENCRYPT_DONE', smime: count('smime'), pgp: count('pgp'), portal: count('portal'), givenUp: gaveUp.size },
      'recipients encrypted or handed to the portal',
    );
    const children = copies.map((copy) => encryptedChild(envelope, copy, at));
    if (portalCopy) children.push(portalChild(envelope, plan, portalCopy.ref, at));
    if (givenUp.length > 0) children.push(givenUpChild(envelope, plan, gaveUp, givenUp, at));
    return next(...children);
  } finally {
    forgetSigningKeys(keys.signing);
  }
}

/** A copy its encryptor refused to make (headerRefusedBy): its recipients go to deliver to be bounced. */
interface GivenUpCopy extends NotEncryptable {
  copy: PlannedCopy;
}

/** How this stage sent each recipient on before (its recipient events), for a redelivered envelope. */
async function earlierRoutes(deps: OutboundDeps, messageId: string): Promise<Map<string, EarlierRoute>> {
  const events = await recipientEventsOf(deps.pool, messageId, {
    stage: 'encrypt',
    events: ['recipient.to-portal', 'recipient.encrypted'],
  });
  return new Map(
    [...events].map(([recipient, event]) => [recipient, event === 'recipient.to-portal' ? 'portal' : 'encrypted']),
  );
}

/**
 * The encrypted body again under the rebuilt header (passThroughMessage), PGP/MIME under a boundary of ours
 * (underOwnBoundary): a new blob, the original stays for the other envelopes. Bounded like an encrypted copy: the
 * header may grow by the fields filled in from the envelope.
 */
async function storedAsPassedThrough(
  deps: OutboundDeps,
  envelope: Envelope,
  outerHeaders: Array<[string, string]>,
  check: { contentFields: Array<[string, string]>; boundary?: string | undefined },
) {
  const split = await splitMessage(deps.blobStore.open(envelope.blob.ref));
  const { contentFields, body } =
    check.boundary === undefined ? { ...check, body: split.body } : underOwnBoundary(check.boundary, split.body);
  return deps.blobStore.put(passThroughMessage(outerHeaders, contentFields, body), {
    messageId: envelope.id,
    maxBytes: deps.maxEncryptedBytes,
  });
}

function encryptedChild(envelope: Envelope, { copy, blob }: EncryptedCopy, at: Date): Envelope {
  const recipients = copy.recipients.map((r) => r.recipient);
  const child = withBlob(forRecipients(envelope, recipients), blob);
  const verdict = { status: 'encrypted', form: copy.form, at: at.toISOString() };
  return advance(withVerdict(child, 'crypto', verdict), 'encrypt');
}

/**
 * The portal group with its copy (stagePortalCopy: the outer header, not the agency's whole header), rerouted to the
 * mailbox stage, which stores it as it is. The original stays in `receivedBlob` for a DSN's quote.
 */
function portalChild(envelope: Envelope, plan: OutboundPlan, copy: BlobRef, at: Date): Envelope {
  const child = withBlob(
    forRecipients(
      rerouteAfterCurrent(envelope, ['mailbox']),
      plan.portal.map((r) => r.recipient),
    ),
    copy,
  );
  return advance(withVerdict(child, 'crypto', { status: 'portal', at: at.toISOString() }), 'encrypt');
}

/**
 * The recipients of the copies that could not be made, in the envelope's order, in one child (one DSN for the sender):
 * on to deliver with the crypto verdict `not-encryptable`, whose outbound guard sends it nowhere and bounces them. It
 * keeps the message as the agency sent it, whose header block the DSN quotes; the encryptors' words go to the trace.
 */
function givenUpChild(
  envelope: Envelope,
  plan: OutboundPlan,
  gaveUp: ReadonlySet<string>,
  givenUp: readonly GivenUpCopy[],
  at: Date,
): Envelope {
  const recipients = plan.recipients.map((r) => r.recipient).filter((r) => gaveUp.has(r));
  const [first] = givenUp;
  const verdict = {
    status: NOT_ENCRYPTABLE_STATUS,
    code: first?.code,
    detail: [...new Set(givenUp.map((g) => g.reason))].join('; '),
    at: at.toISOString(),
  };
  const child = forRecipients(rerouteAfterCurrent(envelope, ['deliver']), recipients);
  return advance(withVerdict(child, 'crypto', verdict), 'encrypt');
}

/**
 * The stage's trace: why a copy is not signed, why a copy could not be made (`message.not-encryptable`, naming its
 * form and recipients), then the form of every other recipient in the envelope's order.
 */
function outcomeEvents(
  plan: OutboundPlan,
  copies: EncryptedCopy[],
  givenUp: readonly GivenUpCopy[],
  at: Date,
): TraceEvent[] {
  const notSigned = copies.flatMap(({ copy, notSigned }): TraceEvent[] =>
    notSigned
      ? [
          {
            stage: 'encrypt',
            event: 'message.not-signed',
            outcome: 'next',
            code: notSigned.code,
            reason: notSigned.reason,
            data: { form: copy.form },
            at,
          },
        ]
      : [],
  );
  const notEncryptable = givenUp.map(
    ({ copy, code, reason }): TraceEvent => ({
      stage: 'encrypt',
      event: 'message.not-encryptable',
      outcome: 'next',
      code,
      reason,
      data: { form: copy.form, recipients: copy.recipients.map((r) => r.recipient) },
      at,
    }),
  );
  const gaveUp = new Set(givenUp.flatMap(({ copy }) => copy.recipients.map((r) => r.recipient)));
  const signedFor = new Map(copies.flatMap((c) => c.copy.recipients.map((r) => [r.recipient, c.signed] as const)));
  const made = plan.recipients.filter((r) => !gaveUp.has(r.recipient));
  return [
    ...notSigned,
    ...notEncryptable,
    ...made.map((r) => recipientEvent(r, signedFor.get(r.recipient) ?? false, at)),
  ];
}

function recipientEvent(planned: PlannedRecipient, signed: boolean, at: Date): TraceEvent {
  const { recipient } = planned;
  if (planned.form === 'portal') {
    const { code, why } = planned;
    return { stage: 'encrypt', event: 'recipient.to-portal', outcome: 'next', code, reason: why, recipient, at };
  }
  const data: Record<string, unknown> = { form: planned.form, fingerprint: planned.fingerprint, signed };
  if (planned.form === 'smime') {
    data.contentCipher = planned.contentCipher;
    data.keyTransport = planned.keyTransport;
  }
  return { stage: 'encrypt', event: 'recipient.encrypted', outcome: 'next', recipient, data, at };
}
