// A portal for tests: buildPortal with a database schema of its own, the real Redis under a key prefix of its own,
// a clock the test moves, the log lines captured, and the mails it publishes collected. `Browser` keeps cookies
// and the last page's CSRF token like a browser, over fastify's inject. portalWorldPerSuite gives a describe block
// its world; loggedInBrowser, mailText and the rest are what the portal's tests do again and again.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, beforeEach } from 'node:test';
import { type BlobStore, createBlobStore, createFolderKeyStore } from '@smgw/blob-store';
import type { Envelope } from '@smgw/envelope';
import {
  createFolderMailboxKeyStore,
  ensureActivationToken,
  ensureMailbox,
  type Mailbox,
  type MailboxKeyStore,
  setMailboxPassword,
} from '@smgw/mailbox-store';
import { createLogger } from '@smgw/observability';
import { hashPassword } from '@smgw/submission-accounts';
import { createTestDatabase, type TestDatabase, testRedisPrefix } from '@smgw/testing';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { Redis } from 'ioredis';
import { simpleParser } from 'mailparser';
import { loadMailboxTemplates, type MailboxTemplates } from '../src/notices.ts';
import type { PinMailDeps } from '../src/pin-mail-sweep.ts';
import { buildPortal, type PortalSettings } from '../src/portal/app.ts';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

export interface TestClock {
  now(): Date;
  advance(ms: number): void;
}

export interface PortalWorld {
  app: FastifyInstance;
  db: TestDatabase;
  redis: Redis;
  blobStore: BlobStore;
  /** The mailbox key store of the portal (the database's key folder): open data keys with it in tests. */
  mailboxKeys: MailboxKeyStore;
  templates: MailboxTemplates;
  settings: PortalSettings;
  clock: TestClock;
  /** Envelopes the portal published (generated mails), in order. */
  published: Envelope[];
  /** Every log line the portal wrote (JSON text). */
  logLines: string[];
  browser(ip?: string): Browser;
  close(): Promise<void>;
}

export interface WorldOptions {
  settings?: Partial<PortalSettings>;
  /** An existing world's database (a second app on the same data). */
  db?: TestDatabase;
  /** The message view worker's module (test/stalling-view-worker.ts); default the real one. */
  messageViewWorkerUrl?: URL;
  /** Runs before app.ready(): add test-only routes here. */
  beforeReady?: (app: FastifyInstance) => void | Promise<void>;
}

/** A portal on a fresh schema and Redis prefix. Close it in after(). */
export async function startPortalWorld(options: WorldOptions = {}): Promise<PortalWorld> {
  const db = options.db ?? (await createTestDatabase());
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  const prefix = testRedisPrefix();
  const blobStore = createBlobStore(db.pool, {
    keyStore: createFolderKeyStore({ keyStoreDir: db.keys.keyStoreDir, masterKey: db.keys.masterKey }),
  });
  const mailboxKeys = createFolderMailboxKeyStore(db.keys);
  const templates = await loadMailboxTemplates();
  let now = new Date('2026-03-02T09:00:00Z').getTime();
  const clock: TestClock = {
    now: () => new Date(now),
    advance: (ms) => {
      now += ms;
    },
  };
  const logLines: string[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      logLines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  const published: Envelope[] = [];
  const settings: PortalSettings = {
    publicUrl: 'http://127.0.0.1:8080',
    hostname: 'smgw.test',
    sessionIdleMs: 30 * 60_000,
    sessionMaxMs: 12 * 3_600_000,
    trustProxy: false,
    pinMaxAttempts: 5,
    pinDelayMs: 5 * 60_000,
    linkLifetimeMs: 14 * 86_400_000,
    reactivationLinkLifetimeMs: 86_400_000,
    quotaBytes: 30 * 1024 * 1024,
    redisPrefix: prefix,
    ...options.settings,
  };
  const app = await buildPortal({
    pool: db.pool,
    redis,
    blobStore,
    mailboxKeys,
    masterKey: db.keys.masterKey,
    templates,
    publish: async (envelope) => {
      published.push(envelope);
    },
    logger: createLogger('mailbox', 'debug', sink),
    settings,
    now: clock.now,
    ...(options.messageViewWorkerUrl ? { messageViewWorkerUrl: options.messageViewWorkerUrl } : {}),
  });
  await options.beforeReady?.(app);
  await app.ready();
  return {
    app,
    db,
    redis,
    blobStore,
    mailboxKeys,
    templates,
    settings,
    clock,
    published,
    logLines,
    browser: (ip) => new Browser(app, ip),
    async close() {
      await app.close();
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
      if (!options.db) await db.drop();
    },
  };
}

/**
 * For a describe block: a world started before its tests (then `setUp`, e.g. agencies to add) and closed after
 * them; before each test the limits' counters and the mails published so far are cleared, so every test counts its
 * own. The world returned stands in for the one started: use it inside hooks and tests, not at describe time.
 */
export function portalWorldPerSuite(
  options: WorldOptions & { setUp?: (world: PortalWorld) => Promise<unknown> } = {},
): PortalWorld {
  let started: PortalWorld | undefined;
  const world = (): PortalWorld => {
    if (!started) throw new Error('the portal world starts in before(): use it inside hooks and tests');
    return started;
  };
  before(async () => {
    started = await startPortalWorld(options);
    await options.setUp?.(started);
  });
  after(() => started?.close());
  beforeEach(async () => {
    await clearPortalLimits(world());
    world().published.length = 0;
  });
  return new Proxy({} as PortalWorld, {
    get: (_, key) => Reflect.get(world(), key),
    set: (_, key, value) => Reflect.set(world(), key, value),
  });
}

/** Forgets every limit's counters (limits count per client: tests from one address would share them). */
export async function clearPortalLimits(world: PortalWorld): Promise<void> {
  const keys = await world.redis.keys(`${world.settings.redisPrefix}portal:limit:*`);
  if (keys.length > 0) await world.redis.del(...keys);
}

let addresses = 0;
/** An address no other test uses: `<prefix><n>-<time>@buerger.example`. */
export const uniqueAddress = (prefix: string) => `${prefix}${++addresses}-${Date.now().toString(36)}@buerger.example`;

/** The page without the values that differ on every answer (the CSRF token). */
export const withoutCsrfToken = (body: string) => body.replace(/name="_csrf" value="[^"]+"/g, 'name="_csrf" value=""');

/** A published mail's recipients, subject and text. */
export async function mailText(world: PortalWorld, envelope: Envelope) {
  const parsed = await simpleParser(await world.blobStore.readAll(envelope.blob.ref));
  return { to: envelope.recipients, subject: parsed.subject ?? '', text: parsed.text ?? '' };
}

/** Posts a form from a new browser (from `ip`) after getting its page, and waits for the work after the answer. */
export async function submitAndWait(
  world: PortalWorld,
  url: string,
  fields: Record<string, string>,
  ip = '127.0.0.1',
): Promise<Page> {
  const page = await world.browser(ip).submit(url, fields);
  await world.app.portalWorkDone();
  return page;
}

/** The mailbox's live activation token (a new one unless it has one), with the world's link lifetime and PIN delay. */
export function liveActivationToken(world: PortalWorld, mailbox: Mailbox) {
  return ensureActivationToken(world.db.pool, {
    mailbox,
    keys: world.mailboxKeys,
    now: world.clock.now(),
    lifetimeMs: world.settings.linkLifetimeMs,
    pinDelayMs: world.settings.pinDelayMs,
  });
}

/** The PIN mail sweep's dependencies on the world's data, as at `now`; it publishes into world.published. */
export function pinMailSweepOf(world: PortalWorld, now: Date): PinMailDeps {
  return {
    pool: world.db.pool,
    blobStore: world.blobStore,
    mailboxKeys: world.mailboxKeys,
    hostname: world.settings.hostname,
    templates: world.templates,
    publish: async (envelope) => {
      world.published.push(envelope);
    },
    now: () => now,
  };
}

/** A mailbox with a password, as after activation. */
export async function activeMailbox(world: PortalWorld, address: string, password: string): Promise<Mailbox> {
  const { mailbox } = await ensureMailbox(world.db.pool, address, world.mailboxKeys);
  await setMailboxPassword(world.db.pool, mailbox.id, await hashPassword(password), world.clock.now());
  return { ...mailbox, state: 'active', hasPassword: true };
}

export interface Page {
  status: number;
  headers: Record<string, string | string[] | number | undefined>;
  body: string;
  /** The Location header of a redirect. */
  location: string | undefined;
}

/** Cookies and the CSRF token of the last page, over inject (from `ip`, default 127.0.0.1). */
export class Browser {
  readonly cookies = new Map<string, string>();
  csrfToken: string | undefined;
  private readonly app: FastifyInstance;
  /** The client address its requests come from. */
  readonly ip: string;

  constructor(app: FastifyInstance, ip = '127.0.0.1') {
    this.app = app;
    this.ip = ip;
  }

  get(url: string): Promise<Page> {
    return this.request('GET', url);
  }

  /** Posts a form; `_csrf` is the last page's token unless `fields` has its own (or `null`: none at all). */
  post(url: string, fields: Record<string, string | null> = {}): Promise<Page> {
    const form = new URLSearchParams();
    const withToken: Record<string, string | null> = { _csrf: this.csrfToken ?? null, ...fields };
    for (const [name, value] of Object.entries(withToken)) if (value !== null) form.append(name, value);
    return this.request('POST', url, form.toString());
  }

  /** Follows a GET to `url` for its token, then posts the form there (or to `action`). */
  async submit(url: string, fields: Record<string, string>, action = url): Promise<Page> {
    await this.get(url);
    return this.post(action, fields);
  }

  cookieHeader(): string {
    return [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ');
  }

  async request(method: 'GET' | 'POST', url: string, payload?: string): Promise<Page> {
    const res = await this.app.inject({
      method,
      url,
      remoteAddress: this.ip,
      headers: {
        ...(this.cookies.size > 0 ? { cookie: this.cookieHeader() } : {}),
        ...(payload !== undefined ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      },
      ...(payload !== undefined ? { payload } : {}),
    });
    for (const cookie of res.cookies as { name: string; value: string; expires?: Date; maxAge?: number }[]) {
      const gone =
        cookie.value === '' || cookie.maxAge === 0 || (cookie.expires && cookie.expires.getTime() <= Date.now());
      if (gone) this.cookies.delete(cookie.name);
      else this.cookies.set(cookie.name, cookie.value);
    }
    const token = /name="_csrf" value="([^"]+)"/.exec(res.body)?.[1];
    if (token) this.csrfToken = token;
    return pageOf(res);
  }
}

/** An inject response as a Page (tests that post multipart forms inject themselves). */
export function pageOf(res: LightMyRequestResponse): Page {
  const location = res.headers.location;
  return {
    status: res.statusCode,
    headers: res.headers,
    body: res.body,
    location: typeof location === 'string' ? location : undefined,
  };
}

/** Logs in through the form; returns the page the POST answered with (a 303 to the inbox when it worked). */
export async function logIn(browser: Browser, address: string, password: string): Promise<Page> {
  return browser.submit('/anmelden', { address, password });
}

/** An active mailbox at `address` and a browser (from `ip`) logged in to it. */
export async function loggedInBrowser(
  world: PortalWorld,
  address: string,
  password: string,
  ip?: string,
): Promise<{ mailbox: Mailbox; browser: Browser }> {
  const mailbox = await activeMailbox(world, address, password);
  const browser = world.browser(ip);
  assert.equal((await logIn(browser, address, password)).status, 303, `log in as ${address}`);
  return { mailbox, browser };
}
