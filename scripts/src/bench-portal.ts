// `./smgw bench portal`: requests/s of the Messenger portal for the two pages citizens use most, the inbox list and
// a message view, with autocannon (50 connections) against the mailbox service as a process (real PostgreSQL and
// Redis: session lookup, mailbox re-read, sealed summaries or the whole message decrypted and parsed per request).
//   --connections C (default 50)   --seconds S per page (default 10)   --messages M in the inbox (default 50)
//   --size bytes of each message (default 10240)
// The per-client limits are lifted for the run (SMGW_PORTAL_REQUESTS_PER_MINUTE, …_MESSAGE_VIEWS_PER_MINUTE): every
// connection comes from 127.0.0.1.
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { withTransaction } from '@smgw/db';
import {
  createFolderMailboxKeyStore,
  ensureMailbox,
  insertMailboxMessage,
  openMailboxKey,
  setMailboxPassword,
} from '@smgw/mailbox-store';
import { hashPassword } from '@smgw/submission-accounts';
import { startTestGateway } from '@smgw/testing';
import autocannon from 'autocannon';

const { values: args } = parseArgs({
  options: {
    connections: { type: 'string', default: '50' },
    seconds: { type: 'string', default: '10' },
    messages: { type: 'string', default: '50' },
    size: { type: 'string', default: '10240' },
  },
});
const CONNECTIONS = Number(args.connections);
const SECONDS = Number(args.seconds);
const MESSAGES = Number(args.messages);
const SIZE = Number(args.size);
const ADDRESS = 'bench@buerger.example';
const PASSWORD = 'Benchmark Sonnenblume 2026 lang';

function messageOf(n: number): Buffer {
  const head =
    `From: Sachbearbeitung <sachbearbeitung@behoerde.example>\r\nTo: ${ADDRESS}\r\n` +
    `Subject: Bescheid Nr. ${n}\r\nDate: Sat, 05 Dec 2026 10:00:00 +0100\r\n` +
    'Content-Type: text/plain; charset=utf-8\r\n\r\n';
  const line = `Bescheid ${n} `.padEnd(76, 'x');
  return Buffer.from(head + `${line}\r\n`.repeat(Math.max(1, Math.ceil((SIZE - head.length) / 78))));
}

/** Logs in like a browser: the CSRF cookie and token from the login page, then the form. Returns the Cookie header. */
async function logIn(portal: string): Promise<string> {
  const page = await fetch(`${portal}/anmelden`);
  const csrfCookie = page.headers.getSetCookie().map((c) => c.split(';')[0]);
  const token = /name="_csrf" value="([^"]+)"/.exec(await page.text())?.[1];
  if (!token) throw new Error('no CSRF token on the login page');
  const login = await fetch(`${portal}/anmelden`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: csrfCookie.join('; ') },
    body: new URLSearchParams({ _csrf: token, address: ADDRESS, password: PASSWORD }),
  });
  if (login.status !== 303) throw new Error(`login answered ${login.status}`);
  return [...csrfCookie, ...login.headers.getSetCookie().map((c) => c.split(';')[0])].join('; ');
}

function measure(url: string, cookie: string): Promise<autocannon.Result> {
  return autocannon({ url, connections: CONNECTIONS, duration: SECONDS, headers: { cookie } });
}

const gw = await startTestGateway({
  services: ['mailbox'],
  env: { SMGW_PORTAL_REQUESTS_PER_MINUTE: '10000000', SMGW_PORTAL_MESSAGE_VIEWS_PER_MINUTE: '10000000' },
});
try {
  const portal = `http://127.0.0.1:${gw.portalPort}`;
  const keys = createFolderMailboxKeyStore(gw.keys);
  const { mailbox } = await ensureMailbox(gw.db.pool, ADDRESS, keys);
  await setMailboxPassword(gw.db.pool, mailbox.id, await hashPassword(PASSWORD), new Date());
  const dataKey = await openMailboxKey(keys, mailbox);
  const rowIds: string[] = [];
  try {
    await withTransaction(gw.db.pool, async (db) => {
      for (let n = 0; n < MESSAGES; n++) {
        const id = await insertMailboxMessage(db, {
          mailboxId: mailbox.id,
          dataKey,
          folder: 'inbox',
          messageId: `bench-${randomUUID()}`,
          recipient: ADDRESS,
          raw: messageOf(n),
          receivedAt: new Date(),
          summary: {
            from: 'Sachbearbeitung <sachbearbeitung@behoerde.example>',
            to: ADDRESS,
            subject: `Bescheid Nr. ${n}`,
            date: '2026-12-05T09:00:00.000Z',
            attachments: 0,
          },
        });
        if (id) rowIds.push(id);
      }
    });
  } finally {
    dataKey.fill(0);
  }
  const cookie = await logIn(portal);
  const pages = [
    [`inbox list (${MESSAGES} messages)`, `${portal}/postfach/eingang`],
    [`message view (${SIZE} B, plain text)`, `${portal}/nachricht/${rowIds[0]}`],
  ] as const;
  console.log(`portal benchmark: ${CONNECTIONS} connections, ${SECONDS} s per page, autocannon`);
  console.log('page                                  req/s (mean)   p50 ms   p99 ms   non-2xx   errors');
  for (const [name, url] of pages) {
    const result = await measure(url, cookie);
    console.log(
      `${name.padEnd(38)}${result.requests.average.toFixed(0).padStart(12)}${String(result.latency.p50).padStart(9)}` +
        `${String(result.latency.p99).padStart(9)}${String(result.non2xx).padStart(10)}${String(result.errors).padStart(9)}`,
    );
    if (result.non2xx > 0) process.exitCode = 1;
  }
} finally {
  await gw.close();
}
