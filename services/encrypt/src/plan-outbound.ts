// The plan for one outbound message, decided on its looked-up keys (outbound-keys.ts) without database or network:
// each recipient's form, the groups of recipients that share one encrypted copy (every S/MIME recipient one copy,
// every OpenPGP recipient another), the ciphers of the S/MIME copy, and whether each copy is signed, with which key.
import type { ArmoredPrivateKey, ContentCipher, SigningKey } from '@smgw/crypto';
import type { NotSigned } from './agency-signing.ts';
import { chooseForm, type RecipientChoice } from './choose-form.ts';
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
  /** One encrypted copy per form that has recipients: S/MIME first, then OpenPGP. */
  copies: PlannedCopy[];
  /** The recipients handed to the portal: the original message goes to them through the mailbox stage. */
  portal: PortalRecipient[];
}

/** Throws RevocationUnavailableError (choose-form.ts) when a recipient's form has to wait for revocation. */
export function planOutbound(keys: OutboundKeys, options: { lastAttempt: boolean }): OutboundPlan {
  const choices = keys.recipients.map((recipientKeys) => chooseForm(recipientKeys, options.lastAttempt));
  // One copy for the whole S/MIME group: AES-256-GCM only when every recipient announced it (smime-ciphers.ts).
  const contentCipher = contentCipherFor(choices.flatMap((c) => (c.form === 'smime' ? [c.capabilities] : [])));
  const recipients = choices.map((choice): PlannedRecipient => {
    if (choice.form !== 'smime') return choice;
    const { recipient, fingerprint, certificate, keyType, capabilities } = choice;
    const keyTransport = keyTransportFor(keyType, capabilities);
    return { form: 'smime', recipient, fingerprint, certificate, contentCipher, keyTransport };
  });

  const copies: PlannedCopy[] = [];
  const smime = recipients.filter((r) => r.form === 'smime');
  if (smime.length > 0) {
    const signing = keys.signing.signs ? signingWith(keys.signing.smime) : OFF;
    copies.push({ form: 'smime', recipients: smime, contentCipher, signing });
  }
  const pgp = recipients.filter((r) => r.form === 'pgp');
  if (pgp.length > 0) {
    copies.push({ form: 'pgp', recipients: pgp, signing: keys.signing.signs ? signingWith(keys.signing.pgp) : OFF });
  }
  return { recipients, copies, portal: recipients.filter((r) => r.form === 'portal') };
}

const OFF = { kind: 'off' } as const;

function signingWith<Key>(signer: { ok: true; key: Key } | NotSigned): CopySigning<Key> {
  return signer.ok ? { kind: 'sign', key: signer.key } : { kind: 'not-signed', why: signer };
}
