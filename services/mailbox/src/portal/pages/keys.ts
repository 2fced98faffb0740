// /schluessel: bring your own key. A logged-in user uploads an S/MIME certificate (PEM or DER), taken only when it
// validates to a trust anchor for e-mail protection and holds the user's address (acceptRecipientCertificate, the
// admin API's rule) and is not one an operator withdrew, or an OpenPGP public key, taken only when a valid user ID
// holds the user's address, stored pending with source 'portal' under that address alone until an operator approves
// it (admin API). A key or certificate already on record for another address is refused: a stored one keeps its
// addresses, so it would not be the user's; a newer copy of the user's own key on record is merged into it (a renewal
// or a revocation), its approval unchanged. From then on the encrypt stage sends the user's mail encrypted by e-mail instead of to this mailbox,
// and the page says so. The form asks for the password again (password-check.ts). What was uploaded goes with the mailbox (deleteMailbox), also when the deletion came while the
// upload was being checked.
// The upload is multipart: parsed only for a logged-in user (as compose.ts), one small file.
import fastifyMultipart, { type MultipartFile } from '@fastify/multipart';
import {
  createRevocationFetcher,
  HARVESTED_KEY_LIMITS,
  inspectPublicKey,
  mergePublicKeyUpdate,
  NOTHING_ALLOWED,
  PemError,
  PgpKeyBeyondLimitsError,
  type PgpKeyInfo,
  PgpKeyMalformedError,
  readCertificateUpload,
  recipientKeyProblems,
} from '@smgw/crypto';
import { withTransaction } from '@smgw/db';
import {
  acceptRecipientCertificate,
  addPgpKey,
  deletePortalKeys,
  getPgpKey,
  getPgpKeyArmored,
  listCertificates,
  listPgpKeys,
  type PgpKeyState,
  pgpKeyStateFor,
  updatePgpKeyMaterial,
} from '@smgw/key-directory';
import { findMailbox, lockMailbox, type Mailbox, recordMailboxAudit } from '@smgw/mailbox-store';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { PortalContext, PortalPage } from '../context.ts';
import type { MessageKey } from '../i18n/de.ts';
import { confirmCurrentPassword } from '../password-check.ts';
import { MAX_PASSWORD_LENGTH } from '../password-rules.ts';
import { multipartField } from './form-fields.ts';

/** A certificate with its chain, or an armored key: a few kilobytes. */
export const MAX_KEY_UPLOAD_BYTES = 64 * 1024;

/** The limits of HARVESTED_KEY_LIMITS the page names when it refuses a key beyond them. */
const KEY_LIMITS_SHOWN = {
  userIds: HARVESTED_KEY_LIMITS.userIds,
  subkeys: HARVESTED_KEY_LIMITS.subkeys,
  selfSignatures: HARVESTED_KEY_LIMITS.selfSignatures,
};

const ARMORED_PUBLIC_KEY = '-----BEGIN PGP PUBLIC KEY BLOCK-----';

/** Which key the encrypt stage uses for the address now, as the page tells it. */
export type KeyStatus = 'certificate' | 'pgp-approved' | 'pgp-pending' | 'portal';

/** `pgp-update`: a newer copy of a key already stored for the user, merged into it (state unchanged). */
export type UploadOutcome =
  | { ok: true; kind: 'certificate' | 'pgp' | 'pgp-update'; fingerprint: string }
  | { ok: false; error: MessageKey };

export const keyPages: PortalPage = async (app, ctx) => {
  const revocationFetcher = createRevocationFetcher({
    now: () => ctx.now(),
    allow: ctx.settings.revocationAllow ?? NOTHING_ALLOWED,
  });
  const uploads = new WeakMap<FastifyRequest, { bytes: Buffer[]; size: number; tooLarge: boolean }>();

  await app.register(fastifyMultipart, {
    attachFieldsToBody: true,
    throwFileSizeLimit: false,
    limits: { fieldNameSize: 50, fieldSize: 1024, fields: 3, fileSize: MAX_KEY_UPLOAD_BYTES, files: 1, parts: 4 },
    async onFile(this: FastifyRequest, part: MultipartFile) {
      const upload = uploads.get(this) ?? { bytes: [], size: 0, tooLarge: false };
      uploads.set(this, upload);
      for await (const chunk of part.file) {
        upload.size += chunk.length;
        if (upload.size > MAX_KEY_UPLOAD_BYTES) upload.tooLarge = true;
        else upload.bytes.push(chunk as Buffer);
      }
      if (part.file.truncated) upload.tooLarge = true;
    },
  });
  // A stranger's upload is not read at all: without a session the multipart body is never parsed.
  app.addHook('preParsing', async (req, reply) => {
    if (req.method === 'POST' && /^multipart\//i.test(req.headers['content-type'] ?? '') && !req.portalLogin) {
      return reply.redirect('/anmelden', 303);
    }
  });

  async function renderPage(req: FastifyRequest, reply: FastifyReply, extra: Record<string, unknown>, status = 200) {
    const { mailbox } = ctx.login(req);
    const keys = await keysOf(ctx, mailbox.address);
    return ctx.render(
      req,
      reply,
      'pages/keys',
      { title: ctx.t(req)('keys.title'), ...keys, maxKb: MAX_KEY_UPLOAD_BYTES / 1024, ...extra },
      status,
    );
  }

  app.get<{ Querystring: { hinzugefuegt?: string } }>(
    '/schluessel',
    { config: { requireLogin: true } },
    async (req, reply) => {
      const added = req.query.hinzugefuegt;
      const notice =
        added === 'zertifikat' || added === 'pgp' ? added : added === 'pgp-aktualisiert' ? 'pgpUpdated' : undefined;
      return renderPage(req, reply, { notice });
    },
  );

  app.post('/schluessel', { config: { requireLogin: true } }, async (req, reply) => {
    const t = ctx.t(req);
    const { mailbox } = ctx.login(req);
    const upload = uploads.get(req);
    const refuse = (error: MessageKey, status = 400) =>
      renderPage(
        req,
        reply,
        { errors: { key: t(error, { maxKb: MAX_KEY_UPLOAD_BYTES / 1024, ...KEY_LIMITS_SHOWN }) } },
        status,
      );
    if (!upload || upload.size === 0) return refuse('keys.error.empty');
    if (upload.tooLarge) return refuse('keys.error.tooLarge', 413);
    // The password again before the key is taken: from then on the user's mail goes encrypted to whoever holds its
    // private key, so a stolen session must not be able to put one there.
    const password = multipartField(req.body, 'password', MAX_PASSWORD_LENGTH);
    const refused = await confirmCurrentPassword(ctx, req, reply, password);
    if (refused) return renderPage(req, reply, { errors: { password: refused.error } }, refused.status);
    const limit = await ctx.limits.hit('keyUploadPerMailbox', mailbox.id);
    if (limit.exceeded) return ctx.renderError(req, reply, 429, limit.retryAfterMs);

    const outcome = await takeKey(ctx, mailbox, Buffer.concat(upload.bytes), revocationFetcher);
    if (!outcome.ok) return refuse(outcome.error, 422);
    if (!(await keepKeyOfLiveMailbox(ctx, mailbox))) {
      req.log.info(
        { code: 'PORTAL_KEY_DROPPED', mailboxId: mailbox.id, kind: outcome.kind, fingerprint: outcome.fingerprint },
        'the mailbox was deleted while its key was uploaded: the key went too',
      );
      return reply.redirect('/anmelden', 303);
    }
    req.log.info(
      { code: 'PORTAL_KEY_ADDED', mailboxId: mailbox.id, kind: outcome.kind, fingerprint: outcome.fingerprint },
      ADDED_LOG_MESSAGES[outcome.kind],
    );
    return reply.redirect(`/schluessel?hinzugefuegt=${ADDED_NOTICES[outcome.kind]}`, 303);
  });
};

const ADDED_LOG_MESSAGES = {
  certificate: 'certificate taken from the portal',
  pgp: 'OpenPGP key stored pending',
  'pgp-update': 'OpenPGP key updated with a newer copy',
} as const;
const ADDED_NOTICES = { certificate: 'zertifikat', pgp: 'pgp', 'pgp-update': 'pgp-aktualisiert' } as const;

/**
 * After an upload: true while the mailbox is there. A mailbox deleted meanwhile (in another tab, by an operator; the
 * check of a certificate's revocation can take seconds) took its owner's keys with it but not this one, stored
 * after: it goes now, unless the address has a new mailbox by then. deleteMailbox deletes the mailbox row before the
 * keys, so the row lock here waits for a deletion in progress and then finds the row gone.
 */
export async function keepKeyOfLiveMailbox(ctx: PortalContext, mailbox: Mailbox): Promise<boolean> {
  return withTransaction(ctx.deps.pool, async (db) => {
    if (await lockMailbox(db, mailbox.id)) return true;
    if (!(await findMailbox(db, mailbox.address))) await deletePortalKeys(db, mailbox.address);
    return false;
  });
}

/** The user's certificates and keys, and which one the encrypt stage uses now. */
export async function keysOf(ctx: PortalContext, address: string) {
  const now = ctx.now();
  const certificates = (await listCertificates(ctx.deps.pool, { address, includeReplaced: false, limit: 20 })).filter(
    (c) => new Date(c.notAfter) > now,
  );
  // Each key as it stands for this address: a key approved for other addresses alone is not used for it, nor is an
  // approved key that expired or was revoked (the encrypt stage's check, recipientKeyProblems: mail then comes here).
  const listed = await listPgpKeys(ctx.deps.pool, { address, limit: 20 });
  const pgpKeys = (
    await Promise.all(
      listed.map(async (k) => {
        const state: PgpKeyState | 'unusable' = pgpKeyStateFor(k, address);
        if (state !== 'approved') return { ...k, state };
        const armored = await getPgpKeyArmored(ctx.deps.pool, k.fingerprint);
        const usable = armored !== undefined && (await recipientKeyProblems(armored, now)).length === 0;
        return { ...k, state: usable ? state : 'unusable' };
      }),
    )
  ).filter((k) => k.state !== 'rejected');
  const status: KeyStatus =
    certificates.length > 0
      ? 'certificate'
      : pgpKeys.some((k) => k.state === 'approved')
        ? 'pgp-approved'
        : pgpKeys.some((k) => k.state === 'pending')
          ? 'pgp-pending'
          : 'portal';
  return { certificates, pgpKeys, status };
}

/** Takes the upload as the user's certificate or OpenPGP key, or says why not. */
export async function takeKey(
  ctx: PortalContext,
  mailbox: Mailbox,
  bytes: Buffer,
  revocationFetcher: ReturnType<typeof createRevocationFetcher>,
): Promise<UploadOutcome> {
  const now = ctx.now();
  const audit = (event: string, detail: Record<string, unknown>) =>
    recordMailboxAudit(ctx.deps.pool, {
      mailboxId: mailbox.id,
      address: mailbox.address,
      event,
      actor: 'portal',
      at: now,
      detail,
    });

  if (bytes.subarray(0, 4096).toString('latin1').includes(ARMORED_PUBLIC_KEY)) {
    let info: PgpKeyInfo;
    try {
      // The limits a harvested key is held to (HARVESTED_KEY_LIMITS), checked before any signature is verified: the
      // 64 KiB of an upload hold some 200 user IDs, each of whose self-signatures inspectPublicKey would verify.
      info = await inspectPublicKey(bytes.toString('utf8'), { now, withinLimits: true });
    } catch (err) {
      if (err instanceof PgpKeyBeyondLimitsError) return { ok: false, error: 'keys.error.pgpBeyondLimits' };
      return { ok: false, error: 'keys.error.pgpUnreadable' };
    }
    // A newer copy of the user's key on record (extended, with a new subkey, or revoked: then with problems) is merged
    // into it: else the holder could neither renew an approved key that expires nor revoke one that was compromised,
    // and the stored copy would go on being used or stay expired.
    const known = await getPgpKey(ctx.deps.pool, info.fingerprint);
    if (known?.addresses.includes(mailbox.address)) {
      let updated: Awaited<ReturnType<typeof updatePgpKeyMaterial>>;
      try {
        updated = await updatePgpKeyMaterial(ctx.deps.pool, info.fingerprint, async (stored) => {
          const armored = await mergePublicKeyUpdate(stored, info.armored, now);
          return { armored, expiresAt: (await inspectPublicKey(armored, { now })).expires };
        });
      } catch (err) {
        if (err instanceof PgpKeyMalformedError) return { ok: false, error: 'keys.error.pgpUnreadable' };
        throw err;
      }
      if (updated) {
        await audit('mailbox.pgp-key-updated', { fingerprint: info.fingerprint });
        return { ok: true, kind: 'pgp-update', fingerprint: info.fingerprint };
      }
    }
    if (info.problems.length > 0) return { ok: false, error: 'keys.error.pgpUnusable' };
    if (!info.addresses.includes(mailbox.address)) return { ok: false, error: 'keys.error.pgpAddress' };
    // Stored for this address alone: another address in the key's user IDs is not the user's to claim.
    const { key, created } = await addPgpKey(ctx.deps.pool, {
      fingerprint: info.fingerprint,
      armored: info.armored,
      addresses: [mailbox.address],
      algorithm: info.curve ? `${info.algorithm} ${info.curve}` : `${info.algorithm} ${info.bits ?? ''}`.trim(),
      expiresAt: info.expires,
      source: 'portal',
    });
    if (!created && !key.addresses.includes(mailbox.address)) {
      // The key is on record for another address (harvested from mail that named it as sender, or an operator's):
      // a stored key keeps its addresses, so it would not wait for this user. Said to be pending for them, its
      // fingerprint would reach an operator as the user's, and approving it would approve it for the other address.
      ctx.deps.logger.info(
        {
          code: 'PORTAL_PGP_KEY_REFUSED',
          mailboxId: mailbox.id,
          reasonCode: 'KEY_HELD_FOR_ANOTHER_ADDRESS',
          fingerprint: info.fingerprint,
        },
        'OpenPGP key from the portal refused: on record for another address',
      );
      return { ok: false, error: 'keys.error.heldForAnotherAddress' };
    }
    await audit('mailbox.pgp-key-submitted', { fingerprint: info.fingerprint, created });
    return { ok: true, kind: 'pgp', fingerprint: info.fingerprint };
  }

  let chain: ReturnType<typeof readCertificateUpload>;
  try {
    chain = readCertificateUpload(bytes);
  } catch (err) {
    if (err instanceof PemError) return { ok: false, error: 'keys.error.unreadable' };
    throw err;
  }
  const accepted = await acceptRecipientCertificate(ctx.deps.pool, {
    chain,
    address: mailbox.address,
    source: 'portal',
    by: `portal:${mailbox.id}`,
    now,
    revocationMode: ctx.settings.revocationMode ?? 'require',
    revocationFetcher,
  });
  if (!accepted.ok) {
    ctx.deps.logger.info(
      { code: 'PORTAL_CERTIFICATE_REFUSED', mailboxId: mailbox.id, reasonCode: accepted.code },
      'certificate from the portal refused',
    );
    return {
      ok: false,
      error:
        accepted.code === 'ADDRESS_NOT_IN_CERTIFICATE'
          ? 'keys.error.certificateAddress'
          : 'keys.error.certificateInvalid',
    };
  }
  if (accepted.certificate.withdrawnAt) {
    // An operator took it out of use (admin API); uploading it again does not bring it back, only they can.
    ctx.deps.logger.info(
      {
        code: 'PORTAL_CERTIFICATE_REFUSED',
        mailboxId: mailbox.id,
        reasonCode: 'CERTIFICATE_ALREADY_WITHDRAWN',
        fingerprint: accepted.certificate.fingerprint,
      },
      'certificate from the portal refused: withdrawn by an operator',
    );
    return { ok: false, error: 'keys.error.certificateWithdrawn' };
  }
  if (!accepted.created && !accepted.certificate.addresses.includes(mailbox.address)) {
    // Already on record for other addresses the certificate names (harvested from their mail, or an operator's): a
    // stored certificate keeps its addresses, so it is not used for this user, and the page must not say it is.
    ctx.deps.logger.info(
      {
        code: 'PORTAL_CERTIFICATE_REFUSED',
        mailboxId: mailbox.id,
        reasonCode: 'CERTIFICATE_HELD_FOR_ANOTHER_ADDRESS',
        fingerprint: accepted.certificate.fingerprint,
      },
      'certificate from the portal refused: on record for another address',
    );
    return { ok: false, error: 'keys.error.heldForAnotherAddress' };
  }
  await audit('mailbox.certificate-added', {
    fingerprint: accepted.certificate.fingerprint,
    created: accepted.created,
  });
  return { ok: true, kind: 'certificate', fingerprint: accepted.certificate.fingerprint };
}
