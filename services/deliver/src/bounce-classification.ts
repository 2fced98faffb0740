// What an answer from the next hop means for a recipient: delivered, deferred (try again later) or bounced.
// Policy as data (like zone-mta's config/bounces.txt): the first rule that matches wins; add rules, not branches.

export type DeliveryResult = 'delivered' | 'deferred' | 'bounced';

/** One recipient's answer: an SMTP reply, or the error of the client/connector when there was none. */
export interface DeliveryAnswer {
  /** The server's reply, e.g. "550 5.1.1 <a@b.example>: no such user". */
  reply?: string | undefined;
  /** Error code of the SMTP client or connector when there was no reply (ECONNECTION, ETIMEDOUT, ENULLMX…). */
  errorCode?: string | undefined;
  /** The connector said the failure is permanent (mx-connect: the domain does not exist or takes no mail). */
  permanent?: boolean | undefined;
}

export interface BounceRule {
  /** Matched against the reply (basic code, enhanced code and text). */
  reply?: RegExp;
  /** Matched against the error code when there was no reply. */
  error?: RegExp;
  /** Only when the connector judged the failure permanent. */
  permanent?: true;
  result: DeliveryResult;
  /** Short name for logs, metrics and the trace. */
  category: string;
  /** RFC 3463 status for the DSN when the reply carries no enhanced code. */
  status: string;
  /** The trace code of a bounce when it is not the next hop's refusal (default DELIVERY_BOUNCED). */
  code?: string;
  /** The DSN's phrase for a bounce deliver decided itself, from its templates' `reasons` (default `rejected`). */
  dsnReason?: OwnFailureReason;
}

/** Why deliver bounced a recipient without any next hop's word: the DSN says it in its own phrase. */
export type OwnFailureReason = 'header-invalid' | 'header-too-large';

export const BOUNCE_RULES: readonly BounceRule[] = [
  { reply: /^2\d\d/, result: 'delivered', category: 'accepted', status: '2.0.0' },
  // Our own address on a block list: a permanent-looking reply that an operator can fix, so keep trying.
  {
    reply: /^5\d\d[ -].*(blocked using|listed (at|in|by)|black ?list|spamhaus|dnsbl|poor reputation)/i,
    result: 'deferred',
    category: 'blocklist',
    status: '4.7.1',
  },
  { reply: /^552[ -]+5\.3\.4/, result: 'bounced', category: 'message-too-large', status: '5.3.4' },
  { reply: /^5\d\d[ -]+5\.3\.4/, result: 'bounced', category: 'message-too-large', status: '5.3.4' },
  // RFC 5321 §4.5.3.1.10: treat 552 (storage exceeded) as 452. A full mailbox may be emptied in time.
  { reply: /^552[ -]/, result: 'deferred', category: 'mailbox-full', status: '4.2.2' },
  { reply: /^5\d\d[ -]+5\.2\.2/, result: 'deferred', category: 'mailbox-full', status: '4.2.2' },
  {
    reply: /^5\d\d[ -].*(mailbox (is )?full|over ?quota|quota exceeded|insufficient storage)/i,
    result: 'deferred',
    category: 'mailbox-full',
    status: '4.2.2',
  },
  { reply: /^4\d\d/, result: 'deferred', category: 'temporary', status: '4.0.0' },
  { reply: /^5\d\d[ -]+5\.1\.\d+/, result: 'bounced', category: 'recipient', status: '5.1.1' },
  { reply: /^5\d\d[ -]+5\.7\.\d+/, result: 'bounced', category: 'policy', status: '5.7.1' },
  { reply: /^5\d\d/, result: 'bounced', category: 'rejected', status: '5.0.0' },
  // Refused by deliver itself, nothing sent (send-to-destination.ts): the same answer would come every time.
  {
    error: /^ENOTPLAINADDRESS$/,
    result: 'bounced',
    category: 'address-syntax',
    status: '5.1.3',
    code: 'DELIVERY_RECIPIENT_INVALID',
  },
  // RFC 3463 X.1.2: the destination system named in the address cannot take mail (route-recipients.ts).
  {
    error: /^ENOTINTERNETDOMAIN$/,
    result: 'bounced',
    category: 'address-domain',
    status: '5.1.2',
    code: 'DELIVERY_RECIPIENT_DOMAIN_REFUSED',
  },
  {
    error: /^EENVELOPEMISMATCH$/,
    result: 'bounced',
    category: 'envelope-mismatch',
    status: '5.3.0',
    code: 'DELIVERY_ENVELOPE_MISMATCH',
  },
  // Given up by encrypt, nothing sent (outbound-guard.ts): the message's own header can never stand outside the
  // encryption, so it would fail the same way every time. RFC 3463 X.6.0: something about the content; X.3.4: too
  // big, as ingest answers a header block over 1 MiB at the door (552 5.3.4).
  {
    error: /^ENCRYPT_HEADER_INVALID$/,
    result: 'bounced',
    category: 'not-encryptable',
    status: '5.6.0',
    code: 'ENCRYPT_HEADER_INVALID',
    dsnReason: 'header-invalid',
  },
  {
    error: /^ENCRYPT_HEADER_TOO_LARGE$/,
    result: 'bounced',
    category: 'not-encryptable',
    status: '5.3.4',
    code: 'ENCRYPT_HEADER_TOO_LARGE',
    dsnReason: 'header-too-large',
  },
  // Not sent: this process already delivers as much to that domain, or to all domains' MX together, as it lets them
  // take (destination-slots.ts).
  { error: /^EDESTINATIONBUSY$/, result: 'deferred', category: 'destination-busy', status: '4.4.5' },
  // Not connected: the domain's MX got no answer a few minutes ago (suspended-destinations.ts). 4.4.1: no answer.
  { error: /^EDESTINATIONSUSPENDED$/, result: 'deferred', category: 'destination-suspended', status: '4.4.1' },
  // RFC 7505: a null MX says the domain takes no mail at all.
  { error: /^ENULLMX$/, result: 'bounced', category: 'null-mx', status: '5.1.10' },
  { error: /./, permanent: true, result: 'bounced', category: 'dns', status: '5.1.2' },
  { error: /^(ETLS|EREQUIRETLS)$/, result: 'deferred', category: 'tls', status: '4.7.5' },
  { error: /^(ETIMEDOUT|ETIMEOUT)$/, result: 'deferred', category: 'timeout', status: '4.4.2' },
  { error: /^(EDNS|ENOTFOUND|ENODATA|ESERVFAIL)$/, result: 'deferred', category: 'dns', status: '4.4.3' },
  {
    error: /^(ECONNECTION|ECONNREFUSED|ECONNRESET|EHOSTUNREACH|ENETUNREACH|ESOCKET)$/,
    result: 'deferred',
    category: 'network',
    status: '4.4.1',
  },
  // Anything else we did not foresee (a stream error, an abort at shutdown): never lose it, try again.
  { error: /./, result: 'deferred', category: 'other', status: '4.0.0' },
  { result: 'deferred', category: 'other', status: '4.0.0' },
];

/**
 * Categories in which the next hop gave no reply at all: it timed out, or the connection failed or dropped. A reply,
 * even 4xx or 5xx, comes from a live server. An MX that ends an attempt in one of these is suspended for a while
 * (suspended-destinations.ts).
 */
export const NO_ANSWER_CATEGORIES: ReadonlySet<string> = new Set(['timeout', 'network']);

export interface Classification {
  result: DeliveryResult;
  category: string;
  /** RFC 3463 status: the reply's own enhanced code when it has one, else the rule's. */
  status: string;
  /** The rule's trace code for a bounce deliver decided itself (BounceRule.code). */
  code?: string;
  /** The rule's DSN phrase for such a bounce (BounceRule.dsnReason). */
  dsnReason?: OwnFailureReason;
}

/** The enhanced status code (RFC 3463) of a reply like "550 5.1.1 no such user", if it carries one. */
export function enhancedStatusOf(reply: string | undefined): string | undefined {
  return reply ? /^[245]\d\d[ -]+([245]\.\d{1,3}\.\d{1,3})(?=\s|$)/.exec(reply)?.[1] : undefined;
}

function matches(rule: BounceRule, answer: DeliveryAnswer): boolean {
  if (rule.reply) return answer.reply !== undefined && rule.reply.test(answer.reply);
  if (answer.reply !== undefined) return !rule.error; // a reply never falls through to error rules
  if (rule.permanent && !answer.permanent) return false;
  if (rule.error) return answer.errorCode !== undefined && rule.error.test(answer.errorCode);
  return true;
}

export function classifyAnswer(answer: DeliveryAnswer, rules: readonly BounceRule[] = BOUNCE_RULES): Classification {
  const rule = rules.find((r) => matches(r, answer)) ?? rules[rules.length - 1];
  if (!rule) throw new Error('bounce rules are empty');
  const own = enhancedStatusOf(answer.reply);
  // Keep the server's enhanced code when its class agrees with the result (a 5.2.2 we defer keeps its rule's 4.2.2).
  const status = own && own[0] === rule.status[0] ? own : rule.status;
  return {
    result: rule.result,
    category: rule.category,
    status,
    ...(rule.code ? { code: rule.code } : {}),
    ...(rule.dsnReason ? { dsnReason: rule.dsnReason } : {}),
  };
}
