// The whole gateway for the portal's browser tests: every stage as a process, one agency (behoerde.example) with
// the address that writes to citizens, and what the tests read from the sinks: the mails the gateway wrote to a
// citizen (activation links, PINs) and to the agency (PIN notices, DSNs).
import assert from 'node:assert/strict';
import { assertQueued, type SunkMessage, startTestGateway, type TestGateway, waitFor } from '@smgw/testing';
import { simpleParser } from 'mailparser';
import nodemailer from 'nodemailer';

export const AGENCY = 'sachbearbeitung@behoerde.example';

export async function startPortalGateway(env: Record<string, string> = {}): Promise<TestGateway> {
  const gw = await startTestGateway({
    services: ['ingest', 'scan', 'encrypt', 'deliver', 'mailbox', 'admin'],
    env: { SMGW_PIN_DELAY: '1s', SMGW_REVOCATION_MODE: 'off', ...env },
  });
  try {
    const agency = await adminPost(gw, '/agencies', { name: 'Landratsamt Beispiel', domains: ['behoerde.example'] });
    await adminPost(gw, `/agencies/${agency.id}/addresses`, { address: AGENCY, verifySignatures: false });
  } catch (err) {
    await gw.close();
    throw err;
  }
  return gw;
}

export async function adminPost(gw: TestGateway, path: string, body: unknown): Promise<Record<string, unknown>> {
  const response = await fetch(`http://127.0.0.1:${gw.adminPort}/api/v1${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${gw.adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  assert.ok(response.ok, `${path}: ${response.status} ${await response.clone().text()}`);
  return (await response.json()) as Record<string, unknown>;
}

/** The agency's mail server submits a message to `to` (no AUTH: 127.0.0.0/8 may submit). */
export async function agencySends(gw: TestGateway, to: string, mail: Record<string, unknown>): Promise<void> {
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: gw.submissionPort, ignoreTLS: true });
  try {
    assertQueued((await transport.sendMail({ from: AGENCY, to, ...mail })).response);
  } finally {
    transport.close();
  }
}

export async function mailText(message: SunkMessage): Promise<string> {
  return (await simpleParser(message.raw)).text ?? '';
}

export const ACTIVATION_LINK = /https?:\/\/\S+\/aktivieren\/[A-Za-z0-9_-]{43}/;
const PIN = /\b(\d{8})\b/;

/** The first mail to `to` at `sink`, after `skip` earlier ones, whose text matches `pattern`: the match. */
export async function awaitMailMatch(
  what: string,
  sink: SunkMessage[],
  to: string,
  pattern: RegExp,
  skip: ReadonlySet<SunkMessage> = new Set(),
): Promise<{ mail: SunkMessage; match: RegExpExecArray }> {
  return waitFor(what, async () => {
    for (const mail of sink) {
      if (skip.has(mail) || !mail.rcptTo.includes(to)) continue;
      const match = pattern.exec(await mailText(mail));
      if (match) return { mail, match };
    }
    return undefined;
  });
}

/** The link of a citizen's newest-not-yet-seen link mail and the PIN of the PIN mail that follows it. */
export async function linkAndPin(
  gw: TestGateway,
  citizen: string,
  seen: Set<SunkMessage> = new Set(),
): Promise<{ link: string; pin: string }> {
  const linkMail = await awaitMailMatch('the link mail', gw.smarthost.messages, citizen, ACTIVATION_LINK, seen);
  seen.add(linkMail.mail);
  const pinMail = await awaitMailMatch('the PIN mail', gw.smarthost.messages, citizen, PIN, seen);
  seen.add(pinMail.mail);
  return { link: linkMail.match[0], pin: pinMail.match[1] as string };
}
