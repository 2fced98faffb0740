// Everything outbound encryption needs to know before it decides, looked up in one place: each recipient's current
// certificates (validated now, revocation fetched per SMGW_REVOCATION_MODE) and OpenPGP keys (inspected now), and the
// author's signing keys. The decisions are plan-outbound.ts's, made on this data without a database.
import {
  encryptionKeyUsage,
  type PathValidationCache,
  type RevocationFetcher,
  type RevocationMode,
  recipientKeyProblems,
  validateCertificatePathFetchingRevocation,
} from '@smgw/crypto';
import type { Pool } from '@smgw/db';
import {
  currentCertificates,
  type KeyDirectoryCache,
  type PgpKeyForEncryption,
  pgpKeysFor,
  type StoredCapabilities,
} from '@smgw/key-directory';
import { type SenderSigning, senderSigningKeys } from './agency-signing.ts';

export interface RecipientKeys {
  recipient: string;
  /**
   * The current certificates, longest-lived first, as validated now. Validation stops at the first that validates:
   * no later one would be chosen, and each validation may fetch revocation over the network.
   */
  certificates: CheckedCertificate[];
  /**
   * The OpenPGP keys in any state, approved first, newest first; inspection stops at the first usable one. Not looked
   * up (empty) when a certificate validated: S/MIME comes first.
   */
  pgpKeys: CheckedPgpKey[];
}

export interface CheckedCertificate {
  fingerprint: string;
  der: Buffer;
  /** What the holder announced in signed mail (null: nothing harvested): decides OAEP and GCM. */
  capabilities: StoredCapabilities | null;
  validation:
    | { ok: true; keyType: 'rsa' | 'ec' }
    /** `problem`: the validation code and why; `revocationUnavailable`: why revocation could not be fetched. */
    | { ok: false; problem: string; revocationUnavailable?: string };
}

export interface CheckedPgpKey {
  fingerprint: string;
  armored: string;
  state: PgpKeyForEncryption['state'];
  /** inspectPublicKey's problem codes now; only approved keys are inspected (the others are never used). */
  problems: string[];
}

/** What planOutbound decides on: every recipient's keys in the envelope's order, and the sender's signing keys. */
export interface OutboundKeys {
  recipients: RecipientKeys[];
  signing: SenderSigning;
}

export interface KeyLookupDeps {
  pool: Pool;
  /** The key directory's rarely changed tables, in memory while their changes are heard (cachedKeyDirectory). */
  keyDirectory: KeyDirectoryCache;
  fetcher: RevocationFetcher;
  revocationMode: RevocationMode;
  /** Recent successful validations (createPathValidationCache); without it every message validates afresh. */
  validations?: PathValidationCache | undefined;
  /** SMGW_MASTER_KEY: unseals the agency's signing keys. */
  masterKey: Buffer;
  /** SMGW_MASTER_KEY_PREVIOUS during a rotation. */
  masterKeyPrevious?: Buffer | undefined;
}

export async function lookUpOutboundKeys(
  deps: KeyLookupDeps,
  message: { mailFrom: string; author?: string | undefined; recipients: readonly string[] },
  now: Date,
): Promise<OutboundKeys> {
  const recipientDeps = { ...deps, trustAnchors: await deps.keyDirectory.trustAnchorCertificates(), now };
  const recipients: RecipientKeys[] = [];
  for (const recipient of message.recipients) recipients.push(await lookUpRecipientKeys(recipientDeps, recipient));
  return { recipients, signing: await senderSigningKeys(deps, message) };
}

export interface RecipientLookupDeps {
  pool: Pool;
  trustAnchors: readonly Buffer[];
  fetcher: RevocationFetcher;
  revocationMode: RevocationMode;
  validations?: PathValidationCache | undefined;
  now: Date;
}

export async function lookUpRecipientKeys(deps: RecipientLookupDeps, recipient: string): Promise<RecipientKeys> {
  const certificates: CheckedCertificate[] = [];
  for (const certificate of await currentCertificates(deps.pool, recipient)) {
    const checked = {
      fingerprint: certificate.fingerprint,
      der: certificate.der,
      capabilities: certificate.smimeCapabilities,
      validation: await validateForEncryption(deps, recipient, certificate.der, certificate.intermediates),
    };
    certificates.push(checked);
    if (checked.validation.ok) return { recipient, certificates, pgpKeys: [] };
  }

  const pgpKeys: CheckedPgpKey[] = [];
  for (const key of await pgpKeysFor(deps.pool, recipient)) {
    const problems = key.state === 'approved' ? await recipientKeyProblems(key.armored, deps.now) : [];
    pgpKeys.push({ fingerprint: key.fingerprint, armored: key.armored, state: key.state, problems });
    if (key.state === 'approved' && problems.length === 0) break;
  }
  return { recipient, certificates, pgpKeys };
}

async function validateForEncryption(
  deps: RecipientLookupDeps,
  recipient: string,
  der: Buffer,
  intermediates: Buffer[],
): Promise<CheckedCertificate['validation']> {
  const usage = encryptionKeyUsage(der);
  if (!usage.ok) return { ok: false, problem: `${usage.code} (${usage.reason})` };
  const input = {
    endEntity: der,
    intermediates,
    trustAnchors: deps.trustAnchors.map((anchor) => ({ certificate: anchor })),
    time: deps.now,
    purpose: 'emailProtection' as const,
    emailAddress: recipient,
    leafKeyUsage: usage.keyUsage,
    revocation: deps.revocationMode,
  };
  const result = deps.validations
    ? await deps.validations.validate(input, deps.fetcher)
    : await validateCertificatePathFetchingRevocation(input, deps.fetcher);
  if (result.ok) return { ok: true, keyType: usage.keyType };
  const problem = `${result.code} (${result.reason})`;
  if (result.code === 'REVOCATION_UNKNOWN' && result.fetchProblems.length > 0) {
    return { ok: false, problem, revocationUnavailable: result.reason };
  }
  return { ok: false, problem };
}
