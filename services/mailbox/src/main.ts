// mailbox: consumes smgw.mailbox, stores each key-less recipient's message in their own encrypted mailbox and tells
// recipient and sender; sends the delayed PIN mails. Wiring only.
import { loadConfigOrExit } from '@smgw/config';
import { createLogger, runService } from '@smgw/observability';
import { mailboxSpec } from './config.ts';
import { startMailbox } from './service.ts';

const config = loadConfigOrExit('mailbox', mailboxSpec);
const log = createLogger('mailbox', config.logLevel);
await runService('mailbox', log, () => startMailbox(config, log), 'stopping: draining in-flight envelopes');
