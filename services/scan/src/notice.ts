// The notice about a quarantined message: plain text, German then English, naming the finding and the message id.
// It never carries the message's content (not even its headers or subject: those may be what the attacker chose).
// Templates are files (templates/virus-notice.*), like deliver's DSN templates.
import { fileURLToPath } from 'node:url';
import { sameNetwork } from '@smgw/config';
import type { Envelope } from '@smgw/envelope';
import {
  type Bilingual,
  type BilingualTemplates,
  bilingualText,
  type GeneratedMail,
  generatedMail,
  loadBilingualTemplates,
  oneLine,
  renderTemplate,
  rfc5322Date,
} from '@smgw/mime';

export const TEMPLATES_DIR = fileURLToPath(new URL('../templates/', import.meta.url));

export interface NoticeTemplates extends BilingualTemplates {
  verdicts: Record<'infected' | 'suspicious', Bilingual>;
  /** Added to the last notice an address gets in an hour about one sender network's mail ({{limit}}). */
  lastNotice: Bilingual;
  /** Added instead to the last notice an address gets in an hour about the mail of all networks ({{limit}}). */
  lastNoticeOverall: Bilingual;
}

export function loadNoticeTemplates(dir: string = TEMPLATES_DIR): Promise<NoticeTemplates> {
  return loadBilingualTemplates<NoticeTemplates>(dir, 'virus-notice');
}

/** One notice: who it goes to, and the recipients of the message it names. */
export interface NoticeGroup {
  to: string[];
  recipients: string[];
}

/**
 * Who is told, and about which recipients: the sender for mail from agencies and the portal (all recipients); for
 * inbound mail (the sender is outside and may be forged) the configured address (all recipients), or else
 * postmaster@ each recipient domain, each about its own domain's recipients only: an agency's postmaster does not
 * learn who else got the message (a Bcc at another agency). Nobody for a null sender or generated mail.
 */
export function noticeGroups(envelope: Envelope, inboundNoticeTo: string | undefined): NoticeGroup[] {
  const all = envelope.recipients;
  if (envelope.direction === 'inbound') {
    if (inboundNoticeTo) return [{ to: [inboundNoticeTo], recipients: all }];
    const byDomain = Map.groupBy(all, (r) => r.slice(r.lastIndexOf('@') + 1).toLowerCase());
    return [...byDomain]
      .filter(([domain]) => domain !== '')
      .map(([domain, recipients]) => ({ to: [`postmaster@${domain}`], recipients }));
  }
  if (envelope.direction === 'generated' || envelope.mailFrom === '') return [];
  return [{ to: [envelope.mailFrom], recipients: all }];
}

/** The notices about inbound mail one address gets per hour about one sender network's mail (an IPv4 /24, IPv6 /48). */
export const INBOUND_NOTICES_PER_HOUR = 10;

/** The notices about inbound mail one address gets per hour about the mail of all networks together. */
export const INBOUND_NOTICES_PER_HOUR_TOTAL = 50;

/**
 * Whether an inbound notice goes out: yes; yes, and it is the last one this hour about that sender network's mail, or
 * about anyone's (`last-overall`); or no (the quarantine records it).
 */
export type NoticeAllowance = 'send' | 'last' | 'last-overall' | 'withhold';

/**
 * Whether a notice about inbound mail from `client` goes to an address that got notices this hour about mail from
 * `earlierClients` (inboundNoticeClientsSince of @smgw/quarantine). A stranger who sends thousands of infected
 * messages to an agency would make the gateway send its postmaster thousands of notices: per sender network (its MAIL
 * FROM costs nothing to change, its network does) the first `perHour`, and, since a botnet has many networks, the
 * first `perHourTotal` of all networks together; the last of either saying that more are not told (the overall one
 * first: after it, no network's mail is told).
 */
export function inboundNoticeAllowance(
  earlierClients: string[],
  client: string,
  perHour: number,
  perHourTotal: number = INBOUND_NOTICES_PER_HOUR_TOTAL,
): NoticeAllowance {
  const earlier = earlierClients.filter((ip) => sameNetwork(ip, client)).length;
  if (earlier >= perHour || earlierClients.length >= perHourTotal) return 'withhold';
  if (earlierClients.length === perHourTotal - 1) return 'last-overall';
  return earlier === perHour - 1 ? 'last' : 'send';
}

export interface NoticeInput {
  original: Envelope;
  to: string[];
  /** The recipients the notice names (its group's). */
  recipients: string[];
  verdict: 'infected' | 'suspicious';
  finding: string;
  /** Set on the last notice of the hour (inboundNoticeAllowance): the notices per hour, which the text names. */
  lastOfHour?: number | undefined;
  /** The last of the hour is so over all networks (lastNoticeOverall), not over the sender network's mail. */
  lastOverall?: boolean | undefined;
  noticeMessageId: string;
  hostname: string;
  now: Date;
  expiresAt: Date;
  templates: NoticeTemplates;
}

export function buildNotice(input: NoticeInput): GeneratedMail {
  const { original, templates } = input;
  const values: Record<string, string> = {
    hostname: input.hostname,
    messageId: original.id,
    receivedAt: rfc5322Date(new Date(original.receivedAt)),
    mailFrom: original.mailFrom === '' ? '<>' : oneLine(original.mailFrom),
    // Each address whole: map(oneLine) would pass the index as oneLine's length limit and cut them to nothing.
    recipients: input.recipients.map((recipient) => oneLine(recipient)).join(', '),
    finding: oneLine(input.finding),
    expiresAt: rfc5322Date(input.expiresAt),
  };
  const text = (lang: 'de' | 'en') =>
    renderTemplate(templates[lang], {
      ...values,
      verdictText: templates.verdicts[input.verdict][lang],
      lastNotice:
        input.lastOfHour === undefined
          ? ''
          : renderTemplate((input.lastOverall ? templates.lastNoticeOverall : templates.lastNotice)[lang], {
              limit: String(input.lastOfHour),
            }),
    });

  const root = generatedMail('text/plain; charset=utf-8', {
    fromName: templates.from,
    hostname: input.hostname,
    to: input.to.join(', '),
    subject: renderTemplate(templates.subject, { messageId: original.id }),
    date: input.now,
    messageId: input.noticeMessageId,
    // RFC 3834: generated by the gateway.
    autoSubmitted: 'auto-generated',
    extra: [['X-SMGW-Quarantined-Message-Id', original.id]],
  });
  root.setContent(bilingualText(text('de'), text('en'), templates.separator));
  return root;
}
