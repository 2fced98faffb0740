// Confirmed publishing on one ConfirmChannel: persistent + mandatory; a publish succeeds only when the broker acked
// it AND did not return it (LIBRARY-NOTES §2: basic.return arrives before basic.ack, and a returned message is still
// acked, so returned publishes are remembered by their unique messageId).
import { randomUUID } from 'node:crypto';
import { EXCHANGE } from '@smgw/envelope';
import type { Logger } from '@smgw/observability';
import type { ChannelModel, ConfirmChannel, Message } from 'amqplib';
import { PublishError } from './errors.ts';

export interface OutgoingMessage {
  /** The target queue's name (the direct exchange routes by queue name). */
  routingKey: string;
  content: Buffer;
  /** Unique per publish (see publishToken): how a basic.return is matched to its publish. */
  messageId: string;
  headers: Record<string, string>;
  contentType?: string;
}

/** "<envelope id>.<random token>": names the message for people, and is unique per publish for return matching. */
export function publishToken(envelopeId: string): string {
  return `${envelopeId}.${randomUUID()}`;
}

export class ConfirmedPublisher {
  readonly #channel: ConfirmChannel;
  /** messageIds the broker returned and whose ack has not arrived yet. */
  readonly #returned = new Set<string>();
  /** Set while the channel's write buffer is full: later publishes wait for 'drain' first. */
  #drained: Promise<void> | undefined;
  #closed = false;

  constructor(channel: ConfirmChannel, log: Logger) {
    this.#channel = channel;
    channel.on('return', (message: Message) => {
      const id = message.properties.messageId;
      if (typeof id === 'string') this.#returned.add(id);
    });
    channel.on('error', (err: Error) => {
      log.warn({ code: 'MQ_CHANNEL_ERROR', err: err.message }, 'publish channel closed by the broker');
    });
    channel.on('close', () => {
      this.#closed = true;
    });
  }

  /** True once the channel is closed (broker error or connection loss); the client then opens a new one. */
  get closed(): boolean {
    return this.#closed;
  }

  async publish(message: OutgoingMessage): Promise<void> {
    // Backpressure: once publish() returned false the message was still queued; wait until the buffer drains.
    while (this.#drained) await this.#drained;
    if (this.#closed) throw new PublishError('MQ_PUBLISH_CHANNEL_CLOSED', 'the publish channel is closed');
    await new Promise<void>((resolve, reject) => {
      const settle = (err: Error | null) => {
        const returned = this.#returned.delete(message.messageId);
        if (err) {
          // amqplib: Error('message nacked') on basic.nack, Error('channel closed') if the channel went away unconfirmed
          const nacked = err.message === 'message nacked';
          reject(
            new PublishError(
              nacked ? 'MQ_PUBLISH_NACKED' : 'MQ_PUBLISH_CHANNEL_CLOSED',
              nacked
                ? `the broker refused ${message.routingKey} (queue full or unavailable)`
                : `the channel closed before the broker confirmed the publish to ${message.routingKey}`,
            ),
          );
        } else if (returned) {
          reject(new PublishError('MQ_PUBLISH_RETURNED', `no queue is bound for ${message.routingKey}`));
        } else {
          resolve();
        }
      };
      let accepted: boolean;
      try {
        accepted = this.#channel.publish(
          EXCHANGE,
          message.routingKey,
          message.content,
          {
            persistent: true,
            mandatory: true,
            messageId: message.messageId,
            contentType: message.contentType ?? 'application/json',
            headers: message.headers,
          },
          settle,
        );
      } catch (err) {
        if ((err as Error).name === 'IllegalOperationError') {
          reject(new PublishError('MQ_PUBLISH_CHANNEL_CLOSED', 'the publish channel is closed'));
        } else {
          reject(err);
        }
        return;
      }
      if (!accepted) this.#waitForDrain();
    });
  }

  #waitForDrain(): void {
    if (this.#drained) return;
    this.#drained = new Promise<void>((resolve) => {
      const done = () => {
        this.#channel.off('drain', done);
        this.#channel.off('close', done);
        this.#drained = undefined;
        resolve();
      };
      this.#channel.on('drain', done);
      this.#channel.on('close', done);
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#channel.close().catch(() => {});
  }
}

export async function openPublisher(
  model: ChannelModel,
  log: Logger,
  bufferSize: number | undefined,
): Promise<ConfirmedPublisher> {
  const channel = await model.createConfirmChannel(bufferSize ? { highWaterMark: bufferSize } : undefined);
  return new ConfirmedPublisher(channel, log);
}
