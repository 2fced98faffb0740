// The client side of the run: sends every planned message over SMTP the way an MTA does. Each try is an attempt of
// its own (`<seq>.<try>`) and every reply is recorded: 250, 4xx, 5xx, a timeout or a broken connection. Without a
// 250 the client tries again after a pause (the gateway is down or refusing); a 5xx ends the message.
import { setTimeout as sleep } from 'node:timers/promises';
import nodemailer from 'nodemailer';
import { attemptId, composeAttempt, type PlannedMessage } from './workload.ts';

export type ReplyKind = '250' | '4xx' | '5xx' | 'timeout' | 'error';

export interface Attempt {
  id: string;
  seq: number;
  tryNo: number;
  reply: ReplyKind;
  /** The reply line, or the client's error. */
  text: string;
  /** The gateway's message id from `250 … queued as <id>`. */
  gatewayId?: string;
}

export interface LoadTarget {
  host: string;
  inboundPort: number;
  submissionPort: number;
}

export interface LoadOptions {
  runId: string;
  concurrency: number;
  /** Attempts per message before the client gives up (a real MTA would try for days). */
  maxTries: number;
  /** Awaited before a message is first sent (the run holds the load back until a planned nemesis has begun). */
  gate?: (seq: number) => Promise<void>;
}

/** Every attempt made so far, by id; `accepted` counts the 250s, `finished` the messages done with (the nemeses
 * are timed by it). */
export class LoadRecord {
  readonly attempts = new Map<string, Attempt>();
  accepted = 0;
  finished = 0;
}

function classifyError(err: unknown): { reply: ReplyKind; text: string } {
  const e = err as { responseCode?: number; code?: string; response?: string; message?: string };
  const text = e.response ?? e.message ?? String(err);
  if (typeof e.responseCode === 'number' && e.responseCode >= 500) return { reply: '5xx', text };
  if (typeof e.responseCode === 'number' && e.responseCode >= 400) return { reply: '4xx', text };
  if (e.code === 'ETIMEDOUT') return { reply: 'timeout', text };
  return { reply: 'error', text };
}

async function sendAttempt(target: LoadTarget, m: PlannedMessage, tryNo: number, runId: string): Promise<Attempt> {
  const composed = composeAttempt(m, tryNo, runId);
  const transport = nodemailer.createTransport({
    host: target.host,
    port: composed.listener === 'inbound' ? target.inboundPort : target.submissionPort,
    ignoreTLS: true,
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 60_000,
  });
  const base = { id: attemptId(m.seq, tryNo), seq: m.seq, tryNo };
  try {
    const info = await transport.sendMail({ envelope: composed.envelope, raw: composed.raw });
    const gatewayId = /^250 .*queued as (\S+)/.exec(info.response)?.[1];
    if (!/^250 /.test(info.response)) return { ...base, reply: 'error', text: info.response };
    return { ...base, reply: '250', text: info.response, ...(gatewayId ? { gatewayId } : {}) };
  } catch (err) {
    return { ...base, ...classifyError(err) };
  } finally {
    transport.close();
  }
}

/** Sends every planned message (until a 250, a 5xx or maxTries), `concurrency` at a time. */
export async function sendWorkload(
  planned: readonly PlannedMessage[],
  target: LoadTarget,
  record: LoadRecord,
  options: LoadOptions,
): Promise<void> {
  let next = 0;
  const sendOne = async (m: PlannedMessage) => {
    await options.gate?.(m.seq);
    try {
      await trySending(m);
    } finally {
      record.finished++;
    }
  };
  const trySending = async (m: PlannedMessage) => {
    for (let tryNo = 1; tryNo <= options.maxTries; tryNo++) {
      const id = attemptId(m.seq, tryNo);
      // Recorded before the first byte: an attempt that got no reply may still arrive ("recovered").
      record.attempts.set(id, { id, seq: m.seq, tryNo, reply: 'timeout', text: 'in progress' });
      const attempt = await sendAttempt(target, m, tryNo, options.runId);
      record.attempts.set(id, attempt);
      if (attempt.reply === '250') {
        record.accepted++;
        return;
      }
      if (attempt.reply === '5xx') return;
      await sleep(Math.min(2000, 250 * 2 ** Math.min(tryNo - 1, 3)));
    }
  };
  await Promise.all(
    Array.from({ length: options.concurrency }, async () => {
      while (next < planned.length) {
        const m = planned[next++];
        if (m) await sendOne(m);
      }
    }),
  );
}
