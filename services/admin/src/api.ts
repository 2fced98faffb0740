import type { RevocationFetcher, RevocationMode } from '@smgw/crypto';
import { databaseReachable, type Pool } from '@smgw/db';
import { type Envelope, isMessageId } from '@smgw/envelope';
import { type Logger, type Registry, runChecks } from '@smgw/observability';
import { getTrace } from '@smgw/trace';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { agencyRegistrationRoutes } from './agency-registration-routes.ts';
import { agencyRoutes } from './agency-routes.ts';
import { AUTH_FAILURES_PER_CLIENT, createAuthFailures } from './auth-failures.ts';
import { bearerTokenMatches } from './bearer-auth.ts';
import { refuseUnacceptedBodyType, unsupportedMediaType } from './body-types.ts';
import { certificateWithdrawalRoutes } from './certificate-withdrawal-routes.ts';
import { type MailboxRouteOptions, mailboxRoutes } from './mailbox-routes.ts';
import { pgpKeyRoutes } from './pgp-key-routes.ts';
import { portalReachableRoutes } from './portal-reachable-routes.ts';
import { codeOfStatus, problem } from './problem.ts';
import { quarantineRoutes } from './quarantine-routes.ts';
import { submissionAccountRoutes } from './submission-account-routes.ts';
import { trustRoutes } from './trust-routes.ts';

/**
 * The admin API (SPEC.md "Admin API"): everything under /api/v1 needs the bearer token (a client that keeps
 * guessing it is turned away for a while: auth-failures.ts); /healthz, /readyz and /metrics are open (the network
 * keeps this port internal).
 */
export function buildAdminApi(options: {
  pool: Pool;
  token: string;
  logger: Logger;
  registry: Registry;
  /** The broker: releasing from quarantine publishes (confirmed) to the message's next stage. */
  mq: { publish(envelope: Envelope): Promise<void>; isReady(): boolean };
  /** The key directory: revocation checking of uploaded certificates, and the fetcher of CRLs/OCSP answers. */
  keyDirectory: {
    revocationMode: RevocationMode;
    revocationFetcher: RevocationFetcher;
    /** SMGW_MASTER_KEY: agency private keys are sealed under it; without it, key uploads answer 503. */
    masterKey: Buffer | undefined;
    /** The clock of certificate validation and of recorded times. */
    now: () => Date;
  };
  /** Portal mailboxes (lock, resend activation, delete): the same clock as the key directory. */
  mailboxes: Omit<MailboxRouteOptions, 'pool' | 'now'>;
}): FastifyInstance {
  const app = Fastify({
    loggerInstance: options.logger as FastifyBaseLogger,
    bodyLimit: 1024 * 1024,
    trustProxy: false,
  });

  // Every answer (traces with citizens' addresses, agency keys' public parts, registrations) is for the caller only:
  // no cache on the way keeps it, and no client takes it for another type than it says (a browser pointed at it).
  app.addHook('onSend', async (_req, reply) => {
    reply.header('cache-control', 'no-store');
    reply.header('x-content-type-options', 'nosniff');
  });

  // Probes and scrapes every few seconds would drown the log: only their warnings and errors are logged.
  const quiet = { logLevel: 'warn' as const };
  app.get('/healthz', quiet, async () => ({ status: 'alive' }));
  app.get('/readyz', quiet, async (_req, reply) => {
    const checks = await runChecks({
      db: () => databaseReachable(options.pool),
      amqp: () => options.mq.isReady(),
    });
    const ready = Object.values(checks).every(Boolean);
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', checks });
  });
  app.get('/metrics', quiet, async (_req, reply) =>
    reply.type(options.registry.contentType).send(await options.registry.metrics()),
  );

  const authFailures = createAuthFailures();
  app.register(
    async (api) => {
      api.addHook('onRequest', async (req, reply) => {
        const now = Date.now();
        const wait = authFailures.blockedFor(req.ip, now);
        if (wait > 0) {
          return reply
            .code(429)
            .header('retry-after', String(Math.ceil(wait / 1000)))
            .send(problem('AUTH_RATE_LIMITED', 'too many wrong bearer tokens from this client; try again later'));
        }
        if (!bearerTokenMatches(req.headers.authorization, options.token)) {
          // A call without a token guesses nothing (a probe, a forgotten setting): only wrong tokens count.
          if (req.headers.authorization !== undefined && authFailures.failed(req.ip, now)) {
            req.log.warn(
              { code: 'ADMIN_AUTH_BLOCKED', client: req.ip, failures: AUTH_FAILURES_PER_CLIENT },
              'too many wrong bearer tokens: client turned away for a while',
            );
          }
          return reply
            .code(401)
            .header('www-authenticate', 'Bearer')
            .send(problem('UNAUTHORIZED', 'a valid bearer token is required'));
        }
        authFailures.succeeded(req.ip);
      });
      api.addHook('preValidation', refuseUnacceptedBodyType);

      api.get<{ Params: { id: string } }>('/messages/:id', async (req, reply) => {
        const id = req.params.id.toUpperCase();
        if (!isMessageId(id)) {
          return reply.code(400).send(problem('BAD_MESSAGE_ID', 'a message id is a 26-character ULID'));
        }
        const trace = await getTrace(options.pool, id);
        if (!trace) return reply.code(404).send(problem('MESSAGE_NOT_FOUND', `no message ${id}`));
        return trace;
      });

      await api.register(quarantineRoutes, { pool: options.pool, publish: (envelope) => options.mq.publish(envelope) });
      const { keyDirectory } = options;
      await api.register(trustRoutes, {
        pool: options.pool,
        revocationMode: keyDirectory.revocationMode,
        revocationFetcher: keyDirectory.revocationFetcher,
        now: keyDirectory.now,
      });
      await api.register(certificateWithdrawalRoutes, {
        pool: options.pool,
        revocationMode: keyDirectory.revocationMode,
        revocationFetcher: keyDirectory.revocationFetcher,
        now: keyDirectory.now,
      });
      await api.register(pgpKeyRoutes, { pool: options.pool, now: keyDirectory.now });
      await api.register(agencyRoutes, {
        pool: options.pool,
        masterKey: keyDirectory.masterKey,
        now: keyDirectory.now,
      });
      await api.register(submissionAccountRoutes, { pool: options.pool });
      await api.register(agencyRegistrationRoutes, { pool: options.pool, now: keyDirectory.now });
      await api.register(portalReachableRoutes, { pool: options.pool });
      await api.register(mailboxRoutes, { ...options.mailboxes, pool: options.pool, now: keyDirectory.now });
    },
    { prefix: '/api/v1' },
  );

  app.setNotFoundHandler((_req, reply) => reply.code(404).send(problem('NOT_FOUND', 'no such resource')));
  // fastify's own refusals (body too large 413, no parser for the content-type 415, bad JSON 400, schema 400) and
  // anything thrown: the code is the status's name, so the two agree.
  app.setErrorHandler((err, req, reply) => {
    const status = (err as { statusCode?: number }).statusCode ?? 500;
    if (status >= 500) {
      req.log.error({ err, code: 'ADMIN_INTERNAL_ERROR' }, 'admin request failed');
      return reply.code(status).send(problem(codeOfStatus(status), 'internal error'));
    }
    if (status === 415) return reply.code(415).send(unsupportedMediaType(req));
    return reply.code(status).send(problem(codeOfStatus(status), (err as Error).message));
  });
  return app;
}
