/**
 * Follows the compacted reference topic (`md.reference`): every daemon reads all of it —
 * it is not split over the consumer group like the market data — from the earliest
 * retained record, first to the end the topic had when the follower started (`ready`
 * resolves then), then as records arrive during the day. Its consumer group is a
 * throwaway one: nothing is committed, the topic is read whole at every start.
 */
import { randomUUID } from 'node:crypto';
import type { Consumer, Kafka } from 'kafkajs';
import { FactorstreamError } from '../errors.js';
import type { ReferenceRecord } from '../market/reference.js';
import { restartOnlyWhile } from './kafka-client.js';
import { decodeReferenceMessage } from './reference-codec.js';
import { headerText } from './topic-reader.js';

export interface ReferenceFollowerHandlers {
  /** Records of one message, in topic order per partition. */
  records(records: ReferenceRecord[]): Promise<void>;
  /** A message that is not a valid reference record (code and detail in the error). */
  invalid(err: FactorstreamError, where: string): void;
}

export class ReferenceFollower {
  private consumer: Consumer | undefined;
  /** Once stopped, a crash of the consumer does not bring it back. */
  private stopped = false;

  constructor(
    private readonly kafka: Kafka,
    readonly topic: string,
    private readonly handlers: ReferenceFollowerHandlers,
    /** Create the topic (compacted) when it does not exist (kafka.createTopics). */
    private readonly create: boolean,
  ) {}

  /** Starts following; resolves once every record that was in the topic at the start has been handled. */
  async start(timeoutMs: number): Promise<number> {
    const admin = this.kafka.admin();
    await admin.connect();
    const ends = new Map<number, number>();
    try {
      if (this.create && !(await admin.listTopics()).includes(this.topic)) await admin.createTopics({ topics: [{ topic: this.topic, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] }], waitForLeaders: true });
      if ((await admin.listTopics()).includes(this.topic)) for (const o of await admin.fetchTopicOffsets(this.topic)) if (Number(o.high) > Number(o.low)) ends.set(o.partition, Number(o.high));
    } finally {
      await admin.disconnect();
    }
    const reached = new Map<number, number>();
    let handled = 0;
    let ready: () => void = () => undefined;
    const caughtUp = new Promise<void>((resolve) => (ready = resolve));
    const check = (): void => {
      if ([...ends].every(([p, end]) => (reached.get(p) ?? 0) >= end)) ready();
    };
    check();
    // A short long-poll: the topic is quiet, and a stop (which waits for the fetch in flight) should not wait 5 s for it.
    const consumer = this.kafka.consumer({ groupId: `factorstream-reference-${randomUUID()}`, readUncommitted: false, allowAutoTopicCreation: false, maxWaitTimeInMs: 500, retry: restartOnlyWhile(() => !this.stopped) });
    this.consumer = consumer;
    // Compaction leaves offset gaps: the batch events say how far a partition has been read.
    consumer.on(consumer.events.END_BATCH_PROCESS, (e) => {
      reached.set(e.payload.partition, Math.max(reached.get(e.payload.partition) ?? 0, Number(e.payload.lastOffset) + 1));
      check();
    });
    await consumer.connect();
    await consumer.subscribe({ topics: [this.topic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        const where = `${this.topic}/${partition}@${message.offset}`;
        if (message.value === null) return; // a tombstone: the symbol's record is withdrawn from compaction; the book keeps what it read
        let records: ReferenceRecord[];
        try {
          records = decodeReferenceMessage(message.value, headerText(message.headers)['content-type'], where);
        } catch (err) {
          if (!(err instanceof FactorstreamError)) throw err;
          this.handlers.invalid(err, where);
          return;
        }
        await this.handlers.records(records);
        handled += records.length;
      },
    });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`reading the reference topic ${this.topic} to its end took more than ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      await Promise.race([caughtUp, timeout]);
    } finally {
      clearTimeout(timer);
    }
    return handled;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.consumer?.disconnect().catch(() => undefined);
  }
}
