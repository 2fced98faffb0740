// The plan for one outbound message, decided on its looked-up keys (outbound-keys.ts) without database or network:
// each recipient's form, the groups of recipients that share one encrypted copy, the ciphers of each S/MIME copy,
// and whether each copy is signed, with which key.
//
// Groups: an encrypted copy names every recipient it is for (CMS RecipientInfos, OpenPGP PKESK key ids), so only
// recipients who see each other anyway share one: those named in the message's To or Cc share a copy per form, and
// every other recipient (a Bcc recipient) gets a copy of its own, which names it alone (issue 8, finding 6).
import type { ArmoredPrivateKey, ContentCipher, SigningKey } from '@smgw/crypto';
import type { NotSigned } from './agency-signing.ts';
import { chooseForm, type EarlierRoute, keepEarlierRoute, type RecipientChoice } from './choose-form.ts';
import type { OutboundKeys } from './outbound-keys.ts';
import { contentCipherFor, keyTransportFor, type RecipientKeyAlgorithm } from './smime-ciphers.ts';

export interface SmimeRecipient {
  form: 'smime';
  recipient: string;
  fingerprint: string;
  certificate: Buffer;
  /** The copy's cipher (the same for the whole group) and this recipient's own key management. */
  contentCipher: ContentCipher;
  keyTransport: RecipientKeyAlgorithm;
}
export type PgpRecipient = Extract<RecipientChoice, { form: 'pgp' }>;
export type PortalRecipient = Extract<RecipientChoice, { form: 'portal' }>;
export type PlannedRecipient = SmimeRecipient | PgpRecipient | PortalRecipient;

/** Whether a copy is signed: not (its agency does not sign), with this key, or not although the agency signs (why). */
export type CopySigning<Key> = { kind: 'off' } | { kind: 'sign'; key: Key } | { kind: 'not-signed'; why: NotSigned };

export type PlannedCopy =
  | { form: 'smime'; recipients: SmimeRecipient[]; contentCipher: ContentCipher; signing: CopySigning<SigningKey> }
  | { form: 'pgp'; recipients: PgpRecipient[]; signing: CopySigning<ArmoredPrivateKey> };

export interface OutboundPlan {
  /** Every recipient's form, in the envelope's order (the trace follows it). */
  recipients: PlannedRecipient[];
  /**
   * The encrypted copies: S/MIME first, then OpenPGP; per form, one for the recipients named in To/Cc and one for
   * each other recipient, in the envelope's order of their first recipient.
   */
  copies: PlannedCopy[];
  /** The recipients handed to the portal: the original message goes to them through the mailbox stage. */
  portal: PortalRecipient[];
}

export interface PlanOptions {
  lastAttempt: boolean;
  /** The addresses in the message's To and Cc fields, lower-cased: these recipients may share a copy. */
  namedInHeader: ReadonlySet<string>;
  /** For a redelivered message: how an earlier handling sent each recipient on (keepEarlierRoute). */
  earlier?: ReadonlyMap<string, EarlierRoute> | undefined;
}

/**
 * Throws RevocationUnavailableError (choose-form.ts) when a recipient's form has to wait for revocation, and
 * EarlierFormUnavailableError when a redelivered recipient cannot go the way it went before.
 */
export function planOutbound(keys: OutboundKeys, options: PlanOptions): OutboundPlan {
  const choices = keys.recipients.map((recipientKeys) =>
    keepEarlierRoute(chooseForm(recipientKeys, options.lastAttempt), options.earlier?.get(recipientKeys.recipient)),
  );
  // '' is the group of the recipients named in To/Cc; any other recipient is a group by itself.
  const groupOf = (recipient: string) => (options.namedInHeader.has(recipient.toLowerCase()) ? '' : recipient);
  // AES-256-GCM only when every recipient of the copy announced it (smime-ciphers.ts).
  const smimeGroups = Map.groupBy(
    choices.flatMap((c) => (c.form === 'smime' ? [c] : [])),
    (c) => groupOf(c.recipient),
  );
  const cipherOf = new Map(
    [...smimeGroups].map(([group, members]) => [group, contentCipherFor(members.map((m) => m.capabilities))]),
  );
  const recipients = choices.map((choice): PlannedRecipient => {
    if (choice.form !== 'smime') return choice;
    const { recipient, fingerprint, certificate, keyType, capabilities } = choice;
    const contentCipher = cipherOf.get(groupOf(recipient)) ?? 'aes-256-cbc';
    const keyTransport = keyTransportFor(keyType, capabilities);
    return { form: 'smime', recipient, fingerprint, certificate, contentCipher, keyTransport };
  });

  const copies: PlannedCopy[] = [];
  const smimeSigning = keys.signing.signs ? signingWith(keys.signing.smime) : OFF;
  const smime = recipients.filter((r) => r.form === 'smime');
  for (const group of Map.groupBy(smime, (r) => groupOf(r.recipient)).values()) {
    const contentCipher = group[0]?.contentCipher ?? 'aes-256-cbc';
    copies.push({ form: 'smime', recipients: group, contentCipher, signing: smimeSigning });
  }
  const pgpSigning = keys.signing.signs ? signingWith(keys.signing.pgp) : OFF;
  const pgp = recipients.filter((r) => r.form === 'pgp');
  for (const group of Map.groupBy(pgp, (r) => groupOf(r.recipient)).values()) {
    copies.push({ form: 'pgp', recipients: group, signing: pgpSigning });
  }
  return { recipients, copies, portal: recipients.filter((r) => r.form === 'portal') };
}

const OFF = { kind: 'off' } as const;

function signingWith<Key>(signer: { ok: true; key: Key } | NotSigned): CopySigning<Key> {
  return signer.ok ? { kind: 'sign', key: signer.key } : { kind: 'not-signed', why: signer };
}
