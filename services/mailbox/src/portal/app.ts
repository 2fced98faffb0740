// The Messenger portal: one fastify instance with strict security headers, cookie sessions in Redis, CSRF tokens on
// every form, per-client rate limits, server-rendered pages (eta, auto-escaped) in German and English. No JavaScript.
// Page groups are modules in pages/ (a function `(app, ctx)`), listed in PORTAL_PAGES below.
import { fileURLToPath } from 'node:url';
import fastifyCookie from '@fastify/cookie';
import fastifyCsrf from '@fastify/csrf-protection';
import fastifyFormbody from '@fastify/formbody';
import fastifyHelmet from '@fastify/helmet';
import fastifyRateLimit from '@fastify/rate-limit';
import fastifyStatic from '@fastify/static';
import fastifyView from '@fastify/view';
import { findMailboxById, openMailboxKey } from '@smgw/mailbox-store';
import { Eta } from 'eta';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from 'fastify';
import type { PortalContext, PortalDeps, PortalPage } from './context.ts';
import { formatMegabytes } from './format.ts';
import { isLanguage, type Language, type MessageKey, translator } from './i18n/index.ts';
import { clientSubject, createLimits, LIMIT_RULES, limitKeySecretFrom, subjectName } from './limits.ts';
import {
  createMessageViewCache,
  MESSAGE_VIEW_CACHE_MAX_BYTES,
  MESSAGE_VIEW_CACHE_TTL_MS,
} from './message-view-cache.ts';
import { startMessageViewWorkers } from './message-view-workers.ts';
import { accountPages } from './pages/account.ts';
import { accountDataPages } from './pages/account-data.ts';
import { activationPages } from './pages/activation.ts';
import { agencyRegistrationPages } from './pages/agency-registration.ts';
import { composePages } from './pages/compose.ts';
import { folderPages } from './pages/folders.ts';
import { homePages } from './pages/home.ts';
import { keyPages } from './pages/keys.ts';
import { loginPages } from './pages/login.ts';
import { messagePages } from './pages/message.ts';
import { reactivationPages } from './pages/reactivation.ts';
import { registrationPages } from './pages/registration.ts';
import { createSessionStore, mailboxStanding } from './session.ts';

export type { PortalContext, PortalDeps, PortalPage, PortalSettings } from './context.ts';

export const VIEWS_DIR = fileURLToPath(new URL('./views/', import.meta.url));
export const STATIC_DIR = fileURLToPath(new URL('./static/', import.meta.url));

/** Every page group, one line each (helpers add theirs on a line of its own). */
export const PORTAL_PAGES: PortalPage[] = [
  homePages,
  loginPages,
  activationPages,
  reactivationPages,
  accountPages,
  registrationPages,
  agencyRegistrationPages,
  keyPages,
  folderPages,
  messagePages,
  accountDataPages,
  composePages,
];

/** Requests per client and minute over all pages (the forms have stricter limits of their own: limits.ts). */
export const REQUESTS_PER_CLIENT_PER_MINUTE = 300;
/** Worker threads for message views, unless SMGW_PORTAL_VIEW_WORKERS (each ~45 MB, more while it parses). */
export const MESSAGE_VIEW_WORKERS = 2;
/** A view's CPU time in its worker, unless SMGW_PORTAL_VIEW_TIME_LIMIT_SECONDS: 4 MB of plain HTML takes 1.5–4.5 s. */
export const MESSAGE_VIEW_CPU_LIMIT_MS = 10_000;

const CSRF_ERRORS = new Set(['FST_CSRF_INVALID_TOKEN', 'FST_CSRF_MISSING_SECRET']);

/** Builds the portal (not listening: call listen, or use inject in tests). */
export async function buildPortal(deps: PortalDeps): Promise<FastifyInstance> {
  const { settings } = deps;
  const https = new URL(settings.publicUrl).protocol === 'https:';
  const now = deps.now ?? (() => new Date());
  const cookies = https
    ? { session: '__Host-smgw-session', csrf: '__Host-smgw-csrf', lang: '__Host-smgw-lang' }
    : { session: 'smgw-session', csrf: 'smgw-csrf', lang: 'smgw-lang' };
  const cookieOptions = { path: '/', httpOnly: true, sameSite: 'strict' as const, secure: https };

  const app = Fastify({
    loggerInstance: deps.logger.child({ component: 'portal' }) as FastifyBaseLogger,
    // fastify's own request lines carry the URL, and /aktivieren/<token> is a secret: onResponse logs the route.
    logController: new LogController({ disableRequestLogging: true }),
    trustProxy: settings.trustProxy,
    bodyLimit: 64 * 1024,
  });

  const sessions = createSessionStore({
    redis: deps.redis,
    prefix: settings.redisPrefix,
    idleMs: settings.sessionIdleMs,
    maxMs: settings.sessionMaxMs,
    now,
  });
  const limitSecret = limitKeySecretFrom(deps.masterKey);
  const limits = createLimits(deps.redis, settings.redisPrefix, limitSecret, {
    ...LIMIT_RULES,
    composePerClient: {
      ...LIMIT_RULES.composePerClient,
      max: settings.sendsPerClientPerHour ?? LIMIT_RULES.composePerClient.max,
    },
  });
  const messageViews = startMessageViewWorkers({
    size: settings.messageViewWorkers ?? MESSAGE_VIEW_WORKERS,
    cpuLimitMs: settings.messageViewCpuLimitMs ?? MESSAGE_VIEW_CPU_LIMIT_MS,
    ...(deps.messageViewWorkerUrl ? { workerUrl: deps.messageViewWorkerUrl } : {}),
  });
  const viewCache = createMessageViewCache({
    ttlMs: MESSAGE_VIEW_CACHE_TTL_MS,
    maxBytes: MESSAGE_VIEW_CACHE_MAX_BYTES,
    now: () => now().getTime(),
  });
  const eta = new Eta({ views: VIEWS_DIR, autoEscape: true, cache: true });
  const running = new Set<Promise<unknown>>();

  const ctx: PortalContext = {
    deps,
    settings,
    sessions,
    limits,
    messageViews,
    viewCache,
    now,
    openMailboxKey: (mailbox) => openMailboxKey(deps.mailboxKeys, mailbox),
    cookies,
    clientOf: (req) => clientSubject(req.ip),
    afterAnswer(req, failureCode, work) {
      const log = req.log;
      const done: Promise<unknown> = Promise.resolve()
        .then(work)
        .catch((err: Error) => log.error({ err, code: failureCode }, 'work after the answer failed'))
        .finally(() => running.delete(done));
      running.add(done);
    },
    t: (req) => translator(req.lang),
    async requireLogin(req, reply) {
      if (!req.portalLogin) return reply.redirect('/anmelden', 303);
    },
    login(req) {
      if (!req.portalLogin) throw new Error('login(): the route has no requireLogin');
      return req.portalLogin;
    },
    async render(req, reply, view, data, status = 200) {
      const t = translator(req.lang);
      const login = req.portalLogin;
      const common = {
        t,
        lang: req.lang,
        csrfToken: reply.generateCsrf(),
        login: login ? { address: login.mailbox.address } : undefined,
        quota: login
          ? {
              used: login.mailbox.usageBytes,
              max: settings.quotaBytes,
              text: t('quota.text', {
                used: formatMegabytes(login.mailbox.usageBytes, req.lang),
                quota: formatMegabytes(settings.quotaBytes, req.lang),
              }),
            }
          : undefined,
        path: req.url.split('?')[0],
        errors: {},
        values: {},
      };
      const html = await reply.viewAsync(view, { ...common, ...data });
      return reply.code(status).type('text/html; charset=utf-8').send(html);
    },
    renderError(req, reply, status, retryAfterMs) {
      const kind = status === 403 ? 'csrf' : [400, 404, 429].includes(status) ? String(status) : '500';
      const t = translator(req.lang ?? 'de');
      if (status === 429 && retryAfterMs) reply.header('retry-after', Math.ceil(retryAfterMs / 1000));
      return ctx.render(
        req,
        reply,
        'error',
        {
          title: t(`error.${kind}.title` as MessageKey),
          heading: t(`error.${kind}.title` as MessageKey),
          text: t(`error.${kind}.text` as MessageKey, {
            minutes: Math.max(1, Math.ceil((retryAfterMs ?? 0) / 60_000)),
          }),
        },
        status,
      );
    },
    async startSession(req, reply, mailbox) {
      const { cookieId, session } = await sessions.rotate(req.cookies[cookies.session], mailbox);
      reply.setCookie(cookies.session, cookieId, cookieOptions);
      // A new CSRF secret with the new session: a token seen before login is worthless after it.
      reply.clearCookie(cookies.csrf, cookieOptions);
      return session;
    },
    async endSession(req, reply) {
      const cookieId = req.cookies[cookies.session];
      if (cookieId) await sessions.destroy(cookieId);
      req.portalLogin = undefined;
      reply.clearCookie(cookies.session, cookieOptions);
      reply.clearCookie(cookies.csrf, cookieOptions);
    },
  };

  await app.register(fastifyHelmet, {
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'none'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
        baseUri: ["'none'"],
      },
    },
    // HSTS only where the portal is reached over https (behind the TLS proxy).
    strictTransportSecurity: https ? { maxAge: 31_536_000, includeSubDomains: true } : false,
    referrerPolicy: { policy: 'no-referrer' },
    frameguard: { action: 'deny' },
    crossOriginEmbedderPolicy: false,
  });
  await app.register(fastifyCookie);
  await app.register(fastifyFormbody, { bodyLimit: 64 * 1024 });
  await app.register(fastifyCsrf, {
    sessionPlugin: '@fastify/cookie',
    cookieKey: cookies.csrf,
    cookieOpts: cookieOptions,
    getToken: (req: FastifyRequest) => csrfTokenOf(req.body),
  });
  await app.register(fastifyRateLimit, {
    global: true,
    max: settings.requestsPerClientPerMinute ?? REQUESTS_PER_CLIENT_PER_MINUTE,
    timeWindow: 60_000,
    redis: deps.redis,
    nameSpace: `${settings.redisPrefix}portal:requests:`,
    // Named as the limits name clients: Redis keeps no client addresses.
    keyGenerator: (req) => subjectName(limitSecret, clientSubject(req.ip)),
    errorResponseBuilder: (_req, context) => ({
      statusCode: 429,
      code: 'PORTAL_RATE_LIMITED',
      message: 'too many requests',
      retryAfterMs: context.ttl,
    }),
  });
  await app.register(fastifyView, {
    engine: { eta },
    root: VIEWS_DIR,
    production: true,
  });
  await app.register(fastifyStatic, {
    root: STATIC_DIR,
    prefix: '/static/',
    index: false,
    list: false,
    decorateReply: false,
    cacheControl: true,
    maxAge: '1h',
  });

  app.decorateRequest('portalLogin', undefined);
  app.decorateRequest('lang', 'de');

  // Language: ?lang= chooses and is remembered; else the cookie; else German.
  app.addHook('onRequest', async (req, reply) => {
    const asked = (req.query as Record<string, unknown> | undefined)?.lang;
    if (isLanguage(asked)) {
      req.lang = asked;
      reply.setCookie(cookies.lang, asked, { ...cookieOptions, maxAge: 365 * 86_400 });
    } else {
      const remembered = req.cookies[cookies.lang];
      req.lang = isLanguage(remembered) ? (remembered as Language) : 'de';
    }
  });

  // Who is logged in: the session, and its mailbox re-read (a locked or deleted mailbox ends every session; a lock
  // or password change since the login ends that session).
  app.addHook('onRequest', async (req, reply) => {
    if (req.url.startsWith('/static/')) return;
    const cookieId = req.cookies[cookies.session];
    if (!cookieId) return;
    const session = await sessions.resolve(cookieId);
    if (!session) {
      reply.clearCookie(cookies.session, cookieOptions);
      return;
    }
    const mailbox = await findMailboxById(deps.pool, session.mailboxId);
    if (mailbox?.state !== 'active') {
      const ended = await sessions.destroyAllOf(session.mailboxId);
      req.log.info(
        {
          code: 'PORTAL_SESSIONS_ENDED',
          mailboxId: session.mailboxId,
          sessions: ended,
          reason: mailbox ? mailbox.state : 'deleted',
        },
        'sessions of a locked or deleted mailbox ended',
      );
      reply.clearCookie(cookies.session, cookieOptions);
      return;
    }
    // Locked and unlocked again, or a new password, since this session began: it ends (only this one: a session
    // opened after the change has the new standing).
    if (session.standing !== mailboxStanding(mailbox)) {
      await sessions.destroy(cookieId);
      req.log.info(
        { code: 'PORTAL_SESSION_OUTDATED', mailboxId: mailbox.id },
        'session older than its mailbox standing ended',
      );
      reply.clearCookie(cookies.session, cookieOptions);
      return;
    }
    req.portalLogin = { session, mailbox };
  });

  // Every state-changing request carries the form's CSRF token (login and activation forms too: login CSRF).
  app.addHook('preHandler', (req, reply, done) => {
    if (req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS') return done();
    app.csrfProtection(req, reply, done);
  });
  app.addHook('preHandler', async (req, reply) => {
    if (req.routeOptions.config.requireLogin) return ctx.requireLogin(req, reply);
  });

  // Pages show a mailbox's content: never cached, never stored.
  app.addHook('onSend', async (req, reply) => {
    if (!req.url.startsWith('/static/')) reply.header('cache-control', 'no-store');
  });

  app.addHook('onResponse', async (req, reply) => {
    req.log.info(
      {
        code: 'PORTAL_REQUEST',
        method: req.method,
        route: req.routeOptions.url ?? 'unmatched',
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime),
        mailboxId: req.portalLogin?.mailbox.id,
      },
      'portal request',
    );
  });

  app.setNotFoundHandler((req, reply) => ctx.renderError(req, reply, 404));
  app.setErrorHandler(
    async (err: Error & { statusCode?: number; code?: string; retryAfterMs?: number }, req, reply) => {
      try {
        if (err.code && CSRF_ERRORS.has(err.code)) {
          req.log.warn({ code: 'PORTAL_CSRF_REFUSED', route: req.routeOptions.url }, 'form without a valid CSRF token');
          return await ctx.renderError(req, reply, 403);
        }
        const status = err.statusCode ?? 500;
        if (status === 429) {
          req.log.warn({ code: 'PORTAL_RATE_LIMITED', route: req.routeOptions.url }, 'client over the request limit');
          return await ctx.renderError(req, reply, 429, err.retryAfterMs);
        }
        if (status >= 500) {
          req.log.error({ err, code: 'PORTAL_INTERNAL_ERROR', route: req.routeOptions.url }, 'portal request failed');
          return await ctx.renderError(req, reply, 500);
        }
        return await ctx.renderError(req, reply, status === 404 ? 404 : 400);
      } catch (renderErr) {
        req.log.error({ err: renderErr, code: 'PORTAL_ERROR_PAGE_FAILED' }, 'the error page failed');
        return reply.code(500).type('text/plain; charset=utf-8').send('500');
      }
    },
  );

  app.decorate('portalWorkDone', async () => {
    while (running.size > 0) await Promise.allSettled([...running]);
  });
  app.addHook('onClose', async () => {
    await app.portalWorkDone();
    await messageViews.close();
  });

  const routes: { method: string; url: string }[] = [];
  app.decorate('portalRoutes', routes);
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) routes.push({ method, url: route.url });
  });
  for (const page of PORTAL_PAGES) {
    await app.register(async (scope) => page(scope, ctx));
  }
  return app;
}

/** The form's token: a urlencoded field, or a multipart field (attachFieldsToBody) with a value. */
function csrfTokenOf(body: unknown): string | undefined {
  const field = (body as Record<string, unknown> | undefined)?._csrf;
  if (typeof field === 'string') return field;
  const value = (field as { value?: unknown } | undefined)?.value;
  return typeof value === 'string' ? value : undefined;
}

export type { FastifyReply, FastifyRequest };
