// Outbound: each recipient's copy encrypted in the best form it can open (S/MIME, else OpenPGP), or handed to the
// portal (mailbox). Recipients sharing a form share one encrypted message; one child envelope per group. Nothing
// leaves in clear: a temporary failure retries, mail that is already encrypted goes on as it is.
import { Readable } from 'node:stream';
import type { BlobStore } from '@smgw/blob-store';
import {
  encryptEnveloped,
  encryptPgpMime,
  PgpError,
  type RevocationFetcher,
  type RevocationMode,
  SmimeError,
  signMultipart,
} from '@smgw/crypto';
import type { Pool } from '@smgw/db';
import { advance, type BlobRef, type Envelope, forRecipients, rerouteAfterCurrent, withVerdict } from '@smgw/envelope';
import { trustAnchorCertificates } from '@smgw/key-directory';
import { canonicalLineEnds, splitMessage } from '@smgw/mime';
import { type HandlerContext, next, type Outcome } from '@smgw/mq';
import { recordEvent } from '@smgw/trace';
import { type NotSigned, pgpSignerFor, readBounded, senderAgencySigns, smimeSignerFor } from './agency-signing.ts';
import { bodyLooksEncrypted, readBodyHead } from './already-encrypted.ts';
import { chooseForm, type RecipientChoice } from './choose-form.ts';
import { encryptedFormOf } from './encrypted-form.ts';
import { innerEntity, outerHeaderPairs, pgpOuterHeaders } from './outer-headers.ts';
import { contentCipherFor, keyTransportFor } from './smime-ciphers.ts';

export interface OutboundDeps {
  pool: Pool;
  blobStore: BlobStore;
  fetcher: RevocationFetcher;
  revocationMode: RevocationMode;
  /** Upper bound for an encrypted copy (base64 and armour add about a third to the original). */
  maxEncryptedBytes: number;
  /** SMGW_HOSTNAME: the domain of a Message-ID the gateway has to make up. */
  hostname: string;
  metrics?: { recipients: { inc(labels: { form: string }): void } };
  /** SMGW_MASTER_KEY: unseals the agency's signing keys. */
  masterKey: Buffer;
  /** SMGW_MAX_MESSAGE_BYTES: bounds the inner entity read into memory for S/MIME signing. */
  maxMessageBytes: number;
  now: () => Date;
}

/** Room for the Content-* header fields that innerEntity may fold differently from the original. */
const SIGN_SLACK_BYTES = 64 * 1024;

export async function encryptOutbound(
  deps: OutboundDeps,
  envelope: Envelope,
  context: HandlerContext,
): Promise<Outcome> {
  const at = deps.now();
  const { fields, body } = await splitMessage(deps.blobStore.open(envelope.blob.ref));
  const claimed = encryptedFormOf(fields);
  const bodyHead = await readBodyHead(body);
  const already = claimed && bodyLooksEncrypted(claimed, fields, bodyHead) ? claimed : undefined;
  if (claimed && !already) {
    context.log.warn(
      { code: 'ENCRYPT_FALSE_ENCRYPTED_LABEL', form: claimed },
      'labelled as encrypted but the body is not: encrypted like plain mail',
    );
  }
  if (already) {
    await recordEvent(deps.pool, envelope.id, {
      stage: 'encrypt',
      event: 'message.already-encrypted',
      outcome: 'next',
      data: { form: already },
      at,
    });
    deps.metrics?.recipients.inc({ form: 'already-encrypted' });
    context.log.info({ code: 'ENCRYPT_ALREADY_ENCRYPTED', form: already }, 'already encrypted: passed on as it is');
    const verdict = { status: 'already-encrypted', at: at.toISOString(), form: already };
    return next(advance(withVerdict(envelope, 'crypto', verdict), 'encrypt'));
  }

  const formDeps = {
    pool: deps.pool,
    trustAnchors: await trustAnchorCertificates(deps.pool),
    fetcher: deps.fetcher,
    revocationMode: deps.revocationMode,
    now: at,
    lastAttempt: context.lastAttempt,
  };
  const choices: RecipientChoice[] = [];
  for (const recipient of envelope.recipients) choices.push(await chooseForm(formDeps, recipient));

  const { pairs, dropped } = outerHeaderPairs(fields, {
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

  const children: Envelope[] = [];
  const signs = await senderAgencySigns(deps.pool, envelope.mailFrom);
  const signedForm = new Map<'smime' | 'pgp', boolean>();
  const smime = choices.filter((c) => c.form === 'smime');
  // One copy for the whole S/MIME group: AES-256-GCM only when every recipient announced it (smime-ciphers.ts).
  const contentCipher = contentCipherFor(smime.map((c) => c.capabilities));
  const cipherOf = new Map(
    smime.map((c) => [c.recipient, { contentCipher, keyTransport: keyTransportFor(c.keyType, c.capabilities) }]),
  );
  if (smime.length > 0) {
    const recipients = smime.map((c) => {
      const keyTransport = cipherOf.get(c.recipient)?.keyTransport;
      return keyTransport === 'ecdh' || keyTransport === undefined
        ? { certificate: c.certificate }
        : { certificate: c.certificate, keyTransport };
    });
    const signed = signs ? await smimeSigned() : undefined;
    signedForm.set('smime', signed !== undefined);
    const blob = await putEncrypted(async (content) =>
      encryptEnveloped({ content: signed ?? content, recipients, contentCipher, headers: pairs }),
    );
    children.push(encryptedChild(envelope, smime, blob, 'smime', at));
  }
  const pgp = choices.filter((c) => c.form === 'pgp');
  if (pgp.length > 0) {
    const { headers, extraLines } = pgpOuterHeaders(pairs);
    const recipientKeys = pgp.map((c) => c.armored);
    const putPgp = (signingKey?: { armored: string }) =>
      putEncrypted(async (content) => {
        const message = await encryptPgpMime({
          content,
          recipientKeys,
          headers,
          now: at,
          ...(signingKey ? { signingKey } : {}),
        });
        return Readable.from(prepend(Buffer.from(extraLines, 'latin1'), message), { objectMode: false });
      });
    let blob: BlobRef | undefined;
    const signer = signs ? await pgpSignerFor(deps, envelope.mailFrom) : undefined;
    if (signer && !signer.ok) await notSigned('pgp', signer);
    if (signer?.ok) {
      try {
        blob = await putPgp(signer.key);
      } catch (err) {
        // The key is refused before any byte is written (encryptPgpMime): the copy goes unsigned instead.
        if (!(err instanceof PgpError && err.code === 'PGP_SIGNING_KEY_UNUSABLE')) throw err;
        await notSigned('pgp', { ok: false, code: err.code, reason: err.message });
      }
    }
    signedForm.set('pgp', blob !== undefined);
    blob ??= await putPgp();
    children.push(encryptedChild(envelope, pgp, blob, 'pgp', at));
  }
  const portal = choices.filter((c) => c.form === 'portal');
  if (portal.length > 0) {
    const verdict = { status: 'portal', at: at.toISOString() };
    const child = forRecipients(
      rerouteAfterCurrent(envelope, ['mailbox']),
      portal.map((c) => c.recipient),
    );
    children.push(advance(withVerdict(child, 'crypto', verdict), 'encrypt'));
  }

  for (const choice of choices) {
    deps.metrics?.recipients.inc({ form: choice.form });
    const signed = choice.form === 'portal' ? false : (signedForm.get(choice.form) ?? false);
    await recordEvent(deps.pool, envelope.id, recipientEvent(choice, at, cipherOf.get(choice.recipient), signed));
  }
  context.log.info(
    { code: 'ENCRYPT_DONE', smime: smime.length, pgp: pgp.length, portal: portal.length },
    'recipients encrypted or handed to the portal',
  );
  return next(...children);

  /** The inner entity signed as multipart/signed, or undefined (with the event saying why) when it cannot be. */
  async function smimeSigned(): Promise<Buffer | undefined> {
    const signer = await smimeSignerFor(deps, envelope.mailFrom);
    if (!signer.ok) {
      await notSigned('smime', signer);
      return undefined;
    }
    try {
      // signMultipart takes the entity whole (its digest goes into the signature): held in memory, bounded by
      // SMGW_MAX_MESSAGE_BYTES, which ingest already enforced. Unsigned copies still stream.
      const original = await splitMessage(deps.blobStore.open(envelope.blob.ref));
      const entity = await readBounded(
        innerEntity(original.fields, original.body),
        deps.maxMessageBytes + SIGN_SLACK_BYTES,
      );
      if (!entity) {
        await notSigned('smime', {
          ok: false,
          code: 'ENCRYPT_TOO_LARGE_TO_SIGN',
          reason: `the entity is larger than ${deps.maxMessageBytes} bytes`,
        });
        return undefined;
      }
      return await signMultipart({ entity: canonicalLineEnds(entity), key: signer.key, signingTime: at });
    } catch (err) {
      if (!(err instanceof SmimeError)) throw err;
      await notSigned('smime', { ok: false, code: err.code, reason: err.message });
      return undefined;
    } finally {
      signer.privateKey.fill(0);
    }
  }

  async function notSigned(form: 'smime' | 'pgp', why: NotSigned): Promise<void> {
    await recordEvent(deps.pool, envelope.id, {
      stage: 'encrypt',
      event: 'message.not-signed',
      outcome: 'next',
      code: why.code,
      reason: why.reason,
      data: { form },
      at,
    });
    context.log.warn({ code: why.code, form }, `signing on for the sender's agency, but not signed: ${why.reason}`);
  }

  async function putEncrypted(encrypt: (content: Readable) => Promise<Readable>): Promise<BlobRef> {
    // A fresh read of the original per form: the body is streamed, never held whole.
    const original = await splitMessage(deps.blobStore.open(envelope.blob.ref));
    const content = innerEntity(original.fields, original.body);
    try {
      return await deps.blobStore.put(await encrypt(content), { maxBytes: deps.maxEncryptedBytes });
    } finally {
      content.destroy();
    }
  }
}

function encryptedChild(
  envelope: Envelope,
  group: RecipientChoice[],
  blob: BlobRef,
  form: 'smime' | 'pgp',
  at: Date,
): Envelope {
  const child = {
    ...forRecipients(
      envelope,
      group.map((c) => c.recipient),
    ),
    blob,
  };
  return advance(withVerdict(child, 'crypto', { status: 'encrypted', form, at: at.toISOString() }), 'encrypt');
}

function recipientEvent(
  choice: RecipientChoice,
  at: Date,
  cipher: { contentCipher: string; keyTransport: string } | undefined,
  signed: boolean,
) {
  if (choice.form === 'portal') {
    return {
      stage: 'encrypt',
      event: 'recipient.to-portal',
      outcome: 'next',
      code: choice.code,
      reason: choice.why,
      recipient: choice.recipient,
      at,
    };
  }
  return {
    stage: 'encrypt',
    event: 'recipient.encrypted',
    outcome: 'next',
    recipient: choice.recipient,
    data: {
      form: choice.form,
      fingerprint: choice.fingerprint,
      signed,
      ...(choice.form === 'smime' ? cipher : {}),
    },
    at,
  };
}

async function* prepend(head: Buffer, rest: Readable): AsyncGenerator<Buffer> {
  if (head.length > 0) yield head;
  for await (const chunk of rest) yield Buffer.from(chunk as Uint8Array);
}
