// Shared by the mq tests: a valid envelope, a raw AMQP channel on the test vhost (to look into queues and publish
// what a well-behaved client never would), and the RabbitMQ management API.
import { randomUUID } from 'node:crypto';
import { type Envelope, EXCHANGE, type Stage } from '@smgw/envelope';
import { createLogger, type Logger } from '@smgw/observability';
import { envelopeFixture, rabbitManagementApi, waitFor } from '@smgw/testing';
import { type Channel, type ChannelModel, connect, type GetMessage } from 'amqplib';

export const silentLogger: Logger = createLogger('mq-test', process.env.SMGW_TEST_LOG_LEVEL ?? 'silent');

export function testEnvelope(itinerary: Stage[], overrides: Partial<Envelope> = {}): Envelope {
  return envelopeFixture({
    direction: 'outbound',
    mailFrom: 'clerk@agency.example',
    recipients: ['citizen@example.org'],
    client: { listener: 'submission', ip: '10.0.0.7', helo: 'mail.agency.example', tls: true },
    blob: { ref: `blob:${randomUUID()}`, sha256: 'a'.repeat(64), size: 42 },
    itinerary,
    ...overrides,
  });
}

export function uniqueConnectionName(what: string): string {
  return `mq-test-${what}-${randomUUID()}`;
}

/** A plain amqplib connection to the test vhost. */
export class RawBroker {
  readonly model: ChannelModel;
  readonly channel: Channel;

  constructor(model: ChannelModel, channel: Channel) {
    this.model = model;
    this.channel = channel;
  }

  static async open(url: string): Promise<RawBroker> {
    const model = await connect(url);
    model.on('error', () => {});
    const channel = await model.createChannel();
    channel.on('error', () => {});
    return new RawBroker(model, channel);
  }

  /** Takes messages off `queue` until one matches (the others are dropped: each test looks for its own). */
  async take(queue: string, matches: (message: GetMessage) => boolean, what: string): Promise<GetMessage> {
    return waitFor(
      what,
      async () => {
        for (;;) {
          const message = await this.channel.get(queue, { noAck: true });
          if (message === false) return undefined;
          if (matches(message)) return message;
        }
      },
      { timeoutMs: 20_000 },
    );
  }

  /** The messages ready in a queue (queue.declare-ok count: exact, unlike the management API's sampled numbers). */
  async depth(queue: string): Promise<number> {
    return (await this.channel.checkQueue(queue)).messageCount;
  }

  publishRaw(routingKey: string, content: Buffer, headers: Record<string, string> = {}): void {
    this.channel.publish(EXCHANGE, routingKey, content, { persistent: true, headers, messageId: randomUUID() });
  }

  async close(): Promise<void> {
    await this.model.close().catch(() => {});
  }
}

/** Body of a message taken off a queue, decoded as an envelope. */
export function envelopeOf(message: GetMessage): Envelope {
  return JSON.parse(message.content.toString('utf8')) as Envelope;
}

export function hasEnvelopeId(id: string): (message: GetMessage) => boolean {
  return (message) => message.content.toString('utf8').includes(`"id":"${id}"`);
}

/** The RabbitMQ management API, as @smgw/testing calls it. */
export const managementApi = rabbitManagementApi;
