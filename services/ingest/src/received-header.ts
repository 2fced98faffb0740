// The trace header ingest prepends to every message (RFC 5321 §4.4, protocol names from RFC 3848):
//
//   Received: from client.example (client.example [192.0.2.1])
//           by smgw.example with ESMTPS id 01J9Z3X4Q8R2M5N7P0S6T1V3W4
//           for <a@agency.example>; Tue, 07 Jan 2025 09:30:00 +0000
//
// Everything in it that the client chose (HELO name, recipient) is cut down to harmless characters: the header
// must never be a way to inject other headers or break the folding.
import { domainToASCII } from 'node:url';
import { rfc5322Date } from '@smgw/mime';

export interface ReceivedInfo {
  /** The name the client gave in HELO/EHLO ('' if none). */
  helo: string;
  /** Reverse-resolved name of the client, or undefined (we do not resolve). */
  clientHostname?: string | undefined;
  clientIp: string;
  /** Our own name (SMGW_HOSTNAME). */
  byHostname: string;
  protocol: ReceivedProtocol;
  /** TLS version and cipher, if the session was encrypted, e.g. "TLSv1.3:TLS_AES_256_GCM_SHA384". */
  tls?: string | undefined;
  messageId: string;
  /** Set only when the message has exactly one recipient (RFC 5321 §4.4: naming several would disclose them). */
  forRecipient?: string | undefined;
  date: Date;
}

export type ReceivedProtocol = 'SMTP' | 'ESMTP' | 'ESMTPS' | 'ESMTPA' | 'ESMTPSA';

/** RFC 3848: E for EHLO, S for TLS, A for an authenticated client. */
export function receivedProtocol(session: { ehlo: boolean; tls: boolean; authenticated: boolean }): ReceivedProtocol {
  if (!session.ehlo) return 'SMTP';
  return `ESMTP${session.tls ? 'S' : ''}${session.authenticated ? 'A' : ''}` as ReceivedProtocol;
}

/** Keeps letters, digits and the few characters of domains, address literals and addresses. */
function clean(value: string, allowed: RegExp, max = 255): string {
  const kept = [...value].map((ch) => (allowed.test(ch) ? ch : '_')).join('');
  return kept.slice(0, max) || 'unknown';
}

const DOMAINISH = /^[A-Za-z0-9.\-_:[\]]$/;
const ADDRESSISH = /^[A-Za-z0-9.\-_+=!#$%&'*/?^`{|}~@[\]:]$/;

/** smtp-server hands us internationalised domains in Unicode; the header shows their ASCII (punycode) form. */
function asciiDomain(address: string): string {
  const at = address.lastIndexOf('@');
  if (at < 0) return address;
  return `${address.slice(0, at)}@${domainToASCII(address.slice(at + 1)) || address.slice(at + 1)}`;
}

/** The complete header field, folded, ending in CRLF. */
export function buildReceivedHeader(info: ReceivedInfo): string {
  const helo = clean(info.helo, DOMAINISH);
  const ip = clean(info.clientIp, /^[0-9A-Fa-f.:]$/, 45);
  const reverse = info.clientHostname ? clean(info.clientHostname, DOMAINISH) : '';
  const ipLiteral = ip.includes(':') ? `IPv6:${ip}` : ip;
  const tcpInfo = reverse ? `${reverse} [${ipLiteral}]` : `[${ipLiteral}]`;
  const tls = info.tls ? ` (${clean(info.tls, /^[A-Za-z0-9._\-:]$/, 120)})` : '';
  const lines = [
    `Received: from ${helo} (${tcpInfo})`,
    `\tby ${clean(info.byHostname, DOMAINISH)} with ${info.protocol}${tls} id ${clean(info.messageId, /^[0-9A-Z]$/, 26)}`,
  ];
  const date = rfc5322Date(info.date);
  if (info.forRecipient !== undefined) {
    lines.push(`\tfor <${clean(asciiDomain(info.forRecipient), ADDRESSISH, 320)}>; ${date}`);
  } else {
    lines[1] += `; ${date}`;
  }
  return `${lines.join('\r\n')}\r\n`;
}
