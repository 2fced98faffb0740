// mailbox's metrics: the stage metrics every consumer has, arrivals by outcome, PIN mails sent.
import { Counter, type Registry, stageMetrics } from '@smgw/observability';

export function mailboxMetrics(registry: Registry) {
  return {
    ...stageMetrics(registry, 'mailbox'),
    arrivals: new Counter({
      name: 'smgw_mailbox_arrivals_total',
      help: 'Recipients handled by the mailbox stage, by outcome (stored, over_quota) and whether the mailbox was new',
      labelNames: ['outcome', 'new_mailbox'] as const,
      registers: [registry],
    }),
    pinMails: new Counter({
      name: 'smgw_mailbox_pin_mails_total',
      help: 'Delayed PIN mails sent to recipients of new mailboxes',
      registers: [registry],
    }),
    tokenMailFailures: new Counter({
      name: 'smgw_mailbox_token_mail_failures_total',
      help: 'PIN mails and resend link mails that did not go out, by mail, outcome (abandoned, deferred) and code',
      labelNames: ['mail', 'outcome', 'code'] as const,
      registers: [registry],
    }),
  };
}
export type MailboxMetrics = ReturnType<typeof mailboxMetrics>;
