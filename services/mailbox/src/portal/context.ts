// What every page module gets: the portal's dependencies, the session store, the limits, and helpers to render a
// view in the layout, require a login, and open the mailbox's data key. Page modules are plain functions
// `(app, ctx) => Promise<void>` registered in app.ts (PORTAL_PAGES).
import type { BlobStore } from '@smgw/blob-store';
import type { RevocationAllow, RevocationMode } from '@smgw/crypto';
import type { Pool } from '@smgw/db';
import type { Envelope } from '@smgw/envelope';
import type { Mailbox, MailboxKeyStore } from '@smgw/mailbox-store';
import type { Logger } from '@smgw/observability';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';
import type { MailboxTemplates } from '../notices.ts';
import type { Language, Translate } from './i18n/index.ts';
import type { Limits } from './limits.ts';
import type { MessageViewCache } from './message-view-cache.ts';
import type { MessageViewWorkers } from './message-view-workers.ts';
import type { SessionMailbox, SessionRecord, SessionStore } from './session.ts';

/** The portal's settings (from MailboxConfig; tests pass their own). */
export interface PortalSettings {
  /** SMGW_PUBLIC_URL: https makes the cookies __Host- and Secure and turns HSTS on. */
  publicUrl: string;
  /** SMGW_HOSTNAME: in generated mails. */
  hostname: string;
  /** SMGW_PORTAL_SESSION_IDLE, SMGW_PORTAL_SESSION_MAX (ms). */
  sessionIdleMs: number;
  sessionMaxMs: number;
  /** SMGW_PORTAL_TRUST_PROXY: false, or the proxies' addresses/networks. */
  trustProxy: false | string[];
  /** SMGW_PIN_MAX_ATTEMPTS: wrong PINs per link (checkTokenPin). */
  pinMaxAttempts: number;
  /** SMGW_PIN_DELAY, SMGW_ACTIVATION_LINK_LIFETIME (ms): for tokens the portal makes. */
  pinDelayMs: number;
  linkLifetimeMs: number;
  /** SMGW_REACTIVATION_LINK_LIFETIME (ms): a re-activation link sets a new password, so it lives far shorter. */
  reactivationLinkLifetimeMs: number;
  /** SMGW_MAILBOX_QUOTA_BYTES: the quota bar. */
  quotaBytes: number;
  /** SMGW_REVOCATION_MODE, SMGW_REVOCATION_ALLOW: a certificate uploaded on /schluessel is checked as the admin API
   * checks one (default 'require', fetching only from public addresses). */
  revocationMode?: RevocationMode;
  revocationAllow?: RevocationAllow;
  /** SMGW_REDIS_PREFIX: every Redis key of the portal starts with it. */
  redisPrefix: string;
  /** SMGW_INTERNAL_DOMAINS: the only domains a portal user may write to (portal-write), and where self-registration
   * is refused (with the key directory's agency domains); none when unset. */
  internalDomains?: string[] | undefined;
  /** SMGW_PORTAL_MAX_UPLOAD_BYTES: text and attachments of one message (portal-write); default 20 MB. */
  maxUploadBytes?: number | undefined;
  /** Requests per client and minute over all pages; default REQUESTS_PER_CLIENT_PER_MINUTE (300). */
  requestsPerClientPerMinute?: number;
  /** Message views, frames and downloads per client and minute (each parses a message); default 120. */
  messageViewsPerClientPerMinute?: number;
  /** SMGW_PORTAL_SENDS_PER_HOUR: messages per client and hour over all its mailboxes; default 60 (limits.ts). */
  sendsPerClientPerHour?: number;
  /** SMGW_PORTAL_VIEW_WORKERS: worker threads parsing and sanitising messages for their page; default 2. */
  messageViewWorkers?: number;
  /** SMGW_PORTAL_VIEW_TIME_LIMIT_SECONDS in ms: a message view's CPU time in its worker thread; default 10 s. */
  messageViewCpuLimitMs?: number;
}

export interface PortalDeps {
  pool: Pool;
  redis: Redis;
  blobStore: BlobStore;
  /** The mailbox keys (SMGW_KEY_STORE_DIR/mailboxes, under the master key ring): each mailbox's data key opens with it. */
  mailboxKeys: MailboxKeyStore;
  /** SMGW_MASTER_KEY: the key of the compose form's draft tokens derives from it (draft-token.ts). */
  masterKey: Buffer;
  /** The notice templates (notices.ts), for the mails the portal sends. */
  templates: MailboxTemplates;
  /** Publishes a generated mail's envelope (confirmed) to its next stage: deliver. */
  publish: (envelope: Envelope) => Promise<void>;
  logger: Logger;
  settings: PortalSettings;
  /** The clock (tests inject one); default: new Date(). */
  now?: () => Date;
  /** The message view worker's module (tests give one that crashes or spins); default message-view-worker.ts. */
  messageViewWorkerUrl?: URL;
}

/** The logged-in user of this request (set by app.ts for every request with a live session). */
export interface PortalLogin {
  session: SessionRecord;
  /** Re-read from the database for this request: active, not locked, not deleted. */
  mailbox: Mailbox;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The live session and its mailbox, or undefined when nobody is logged in. */
    portalLogin: PortalLogin | undefined;
    /** The language of this request's pages. */
    lang: Language;
  }
  interface FastifyInstance {
    /** Every route of the portal's pages (method, url pattern), for tests that walk them (CSRF on every POST). */
    portalRoutes: { method: string; url: string }[];
    /** Resolves when the work started by ctx.afterAnswer so far is done (tests; close waits for it too). */
    portalWorkDone(): Promise<void>;
  }
  interface FastifyContextConfig {
    /** Pages for logged-in users set this, or use ctx.requireLogin as preHandler. */
    requireLogin?: boolean;
  }
}

export interface RenderData {
  /** The page's <title> (before " – SecureMail Messenger"); the view has its own h1. */
  title: string;
  [name: string]: unknown;
}

export interface PortalContext {
  deps: PortalDeps;
  settings: PortalSettings;
  sessions: SessionStore;
  limits: Limits;
  /** Messages parsed and sanitised for their page in worker threads, under a CPU limit (message-view-workers.ts). */
  messageViews: MessageViewWorkers;
  /** The views made in the last minute, per mailbox and message (message-view-cache.ts). */
  viewCache: MessageViewCache;
  now(): Date;
  /**
   * The mailbox's data key (32 bytes), from the mailbox key store. Zero it when done: `key.fill(0)` in a finally.
   * Rejects with MailboxStoreError MAILBOX_KEY_GONE when the mailbox was deleted meanwhile.
   */
  openMailboxKey(mailbox: Mailbox): Promise<Buffer>;
  /** preHandler: a request without a live session is sent to /anmelden (303); after it, req.portalLogin is set. */
  requireLogin(req: FastifyRequest, reply: FastifyReply): Promise<void>;
  /** The logged-in user or a thrown error (use after requireLogin, for the type). */
  login(req: FastifyRequest): PortalLogin;
  /** Renders views/<view>.eta in the layout with `data` plus it.t, it.lang, it.csrfToken, it.login, it.quota… */
  render(
    req: FastifyRequest,
    reply: FastifyReply,
    view: string,
    data: RenderData,
    status?: number,
  ): Promise<FastifyReply>;
  /** The error page (views/error.eta) with a status: 400, 403 (CSRF), 404, 429 (retryAfterMs), 500. */
  renderError(req: FastifyRequest, reply: FastifyReply, status: number, retryAfterMs?: number): Promise<FastifyReply>;
  /** t() of the request's language. */
  t(req: FastifyRequest): Translate;
  /**
   * Logs in: rotates the session (the old cookie's session is destroyed), sets the cookie, a new CSRF secret. The
   * mailbox as read before its password was checked (or as its password was set): the session keeps its standing.
   */
  startSession(req: FastifyRequest, reply: FastifyReply, mailbox: SessionMailbox): Promise<SessionRecord>;
  /** Logs out this request's session and clears the cookie. */
  endSession(req: FastifyRequest, reply: FastifyReply): Promise<void>;
  /**
   * Runs `work` after the answer, so the answer's timing does not tell what the work found (enumeration). A failure
   * is logged with `failureCode`; closing the app waits for running work.
   */
  afterAnswer(req: FastifyRequest, failureCode: string, work: () => Promise<unknown>): void;
  /** The client a limit counts (req.ip; IPv6 by /64). */
  clientOf(req: FastifyRequest): string;
  /** Cookie names (they depend on https). */
  cookies: { session: string; csrf: string; lang: string };
}

export type PortalPage = (app: FastifyInstance, ctx: PortalContext) => Promise<void>;
