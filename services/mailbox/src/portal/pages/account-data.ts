// The account's data sections of /konto: download every message as one zip (/konto/archiv), and delete the whole
// mailbox (/konto/loeschen: a confirmation page where the user types the address, ticks a box and gives the password
// again (password-check.ts: under the login's limits); then the mailbox,
// its messages, its data key and the certificates and OpenPGP keys uploaded for it go in one transaction, the audit
// trail records it, and every session ends).
import { withTransaction } from '@smgw/db';
import {
  deleteMailbox,
  listMailboxMessages,
  MAILBOX_FOLDERS,
  normalizeMailboxAddress,
  readMailboxMessage,
  recordMailboxAudit,
} from '@smgw/mailbox-store';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { attachmentDisposition } from '../attachment-names.ts';
import type { PortalContext, PortalPage } from '../context.ts';
import { type ArchiveEntry, mailboxArchive } from '../mailbox-archive.ts';
import { confirmCurrentPassword } from '../password-check.ts';
import { MAX_PASSWORD_LENGTH } from '../password-rules.ts';
import type { AccountSection } from './account.ts';
import { formField } from './form-fields.ts';

/** How many messages the mailbox holds (all folders), for the section texts. */
async function messageCount(ctx: PortalContext, req: FastifyRequest): Promise<number> {
  const { mailbox } = ctx.login(req);
  const counts = await Promise.all(
    MAILBOX_FOLDERS.map((folder) => listMailboxMessages(ctx.deps.pool, mailbox.id, folder)),
  );
  return counts.reduce((sum, rows) => sum + rows.length, 0);
}

export const DOWNLOAD_ALL_SECTION: AccountSection = {
  view: 'account/download-all',
  data: async (req, ctx) => ({ messageCount: await messageCount(ctx, req) }),
};

export const DELETE_MAILBOX_SECTION: AccountSection = { view: 'account/delete-mailbox' };

/** Zips in a row per client and minute: each one decrypts the whole mailbox. */
const ARCHIVES_PER_MINUTE = 5;

export const accountDataPages: PortalPage = async (app, ctx) => {
  app.get(
    '/konto/archiv',
    { config: { requireLogin: true, rateLimit: { max: ARCHIVES_PER_MINUTE, timeWindow: 60_000 } } },
    async (req, reply) => {
      const { mailbox } = ctx.login(req);
      const key = await ctx.openMailboxKey(mailbox);
      let entries: ArchiveEntry[];
      try {
        // Oldest first within each folder, so the numbers run with time.
        const folders = await Promise.all(
          MAILBOX_FOLDERS.map((folder) => listMailboxMessages(ctx.deps.pool, mailbox.id, folder, key)),
        );
        entries = folders.flatMap((rows) =>
          rows.reverse().map((row) => ({
            rowId: row.id,
            folder: row.folder,
            subject: row.summary?.subject ?? '',
            receivedAt: row.receivedAt,
            size: row.size,
          })),
        );
      } catch (err) {
        key.fill(0);
        throw err;
      }
      const archive = mailboxArchive(entries, async (entry) => {
        const raw = await readMailboxMessage(ctx.deps.pool, mailbox.id, key, entry.rowId);
        // Deleted while the zip was being written: the download breaks off rather than miss it silently.
        if (!raw) throw new Error('a message of the archive is gone');
        return raw;
      });
      archive.once('close', () => key.fill(0));
      await recordMailboxAudit(ctx.deps.pool, {
        mailboxId: mailbox.id,
        address: mailbox.address,
        event: 'mailbox.archive-downloaded',
        actor: 'portal',
        at: ctx.now(),
        detail: { messages: entries.length },
      });
      req.log.info(
        { code: 'PORTAL_ARCHIVE_DOWNLOADED', mailboxId: mailbox.id, messages: entries.length },
        'archive downloaded',
      );
      const day = ctx.now().toISOString().slice(0, 10);
      return reply
        .header('content-disposition', attachmentDisposition(`postfach-${day}.zip`))
        .header('content-security-policy', "default-src 'none'; sandbox")
        .header('x-content-type-options', 'nosniff')
        .type('application/zip')
        .send(archive);
    },
  );

  app.get('/konto/loeschen', { config: { requireLogin: true } }, async (req, reply) =>
    renderConfirmation(ctx, req, reply, {}, {}),
  );

  app.post('/konto/loeschen', { config: { requireLogin: true } }, async (req, reply) => {
    const { mailbox } = ctx.login(req);
    const t = ctx.t(req);
    const typed = formField(req.body, 'address', 320).trim();
    const confirmed = formField(req.body, 'confirm', 10) === 'ja';
    const password = formField(req.body, 'password', MAX_PASSWORD_LENGTH);
    const errors: Record<string, string> = {};
    if (normalizedOrNothing(typed) !== mailbox.address) errors.address = t('account.delete.addressWrong');
    if (!confirmed) errors.confirm = t('account.delete.confirmMissing');
    if (password === '') errors.password = t('reauth.passwordMissing');
    if (Object.keys(errors).length > 0) {
      return renderConfirmation(ctx, req, reply, errors, { address: typed, confirm: confirmed }, 400);
    }
    // The password again (a stolen session or an unlocked computer does not suffice), checked only once the rest
    // is right, so that a typo elsewhere costs no attempt.
    const refused = await confirmCurrentPassword(ctx, req, reply, password);
    if (refused) {
      const values = { address: typed, confirm: confirmed };
      return renderConfirmation(ctx, req, reply, { password: refused.error }, values, refused.status);
    }

    const at = ctx.now();
    const deleted = await withTransaction(ctx.deps.pool, async (db) => {
      const gone = await deleteMailbox(db, mailbox.id);
      if (gone) {
        await recordMailboxAudit(db, {
          mailboxId: mailbox.id,
          address: mailbox.address,
          event: 'mailbox.deleted',
          actor: 'portal',
          at,
          detail: {
            messages: gone.messages,
            bytes: gone.bytes,
            certificates: gone.certificates,
            pgpKeys: gone.pgpKeys,
          },
        });
      }
      return gone;
    });
    ctx.viewCache.forgetMailbox(mailbox.id);
    // Committed: now the mailbox's key goes, so nothing opens its content again, not even an earlier dump. If that
    // fails the mailbox is still gone; the reaper's orphan sweep destroys the key later (collectOrphanMailboxKeys).
    if (deleted) {
      await ctx.deps.mailboxKeys.destroy(mailbox.id).catch((err: Error) => {
        req.log.error(
          { err, code: 'PORTAL_MAILBOX_KEY_KEPT', mailboxId: mailbox.id },
          'the deleted mailbox keeps its key until the reaper collects it',
        );
      });
    }
    const sessions = await ctx.sessions.destroyAllOf(mailbox.id);
    await ctx.endSession(req, reply);
    req.log.info(
      {
        code: 'PORTAL_MAILBOX_DELETED',
        mailboxId: mailbox.id,
        messages: deleted?.messages ?? 0,
        certificates: deleted?.certificates ?? [],
        pgpKeys: deleted?.pgpKeys ?? [],
        sessions,
      },
      'mailbox deleted by its user',
    );
    return ctx.render(req, reply, 'pages/mailbox-deleted', { title: t('account.delete.done.title') });
  });
};

function normalizedOrNothing(typed: string): string | undefined {
  try {
    return normalizeMailboxAddress(typed);
  } catch {
    return undefined;
  }
}

async function renderConfirmation(
  ctx: PortalContext,
  req: FastifyRequest,
  reply: FastifyReply,
  errors: Record<string, string>,
  values: { address?: string; confirm?: boolean },
  status = 200,
) {
  const { mailbox } = ctx.login(req);
  return ctx.render(
    req,
    reply,
    'pages/delete-mailbox',
    {
      title: ctx.t(req)('account.delete.title'),
      address: mailbox.address,
      messageCount: await messageCount(ctx, req),
      errors,
      values,
    },
    status,
  );
}
