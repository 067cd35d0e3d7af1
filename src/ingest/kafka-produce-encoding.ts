/**
 * A transaction's produce requests encoded as the vendored kafkajs producer encodes them
 * before it sends them (vendor/kafkajs: its grouping of messages by partition, then the
 * produce request with its record batches and their CRCs), sending nothing. serve runs it
 * on a synthetic close at start (daemon/warm-up.ts), so that the first close of the day is
 * not also the first time V8 runs that code. Produce requests v4–v7 encode through v3's.
 */
import { createRequire } from 'node:module';
import type { OutgoingMessage } from './kafka-chunks.js';

type Grouper = (args: { topic: string; partitionMetadata: unknown[]; messages: readonly OutgoingMessage[]; partitioner: (a: { message: OutgoingMessage }) => number }) => Record<string, OutgoingMessage[]>;
type ProduceRequest = (args: Record<string, unknown>) => { encode: () => Promise<{ buffer: Buffer }> };

const require = createRequire(import.meta.url);
const groupMessagesPerPartition = require('kafkajs/src/producer/groupMessagesPerPartition.js') as Grouper;
const produceRequest = require('kafkajs/src/protocol/requests/produce/v3/request.js') as ProduceRequest;

/** The bytes of one request carrying `round` (one of topicRounds' requests, its messages' partitions set). */
export async function encodeProduceRequest(round: readonly { topic: string; messages: readonly OutgoingMessage[] }[], transactionalId: string): Promise<Buffer> {
  const topicData = round.map(({ topic, messages }) => {
    const byPartition = groupMessagesPerPartition({ topic, partitionMetadata: [{}], messages, partitioner: ({ message }) => message.partition ?? 0 });
    return { topic, partitions: Object.entries(byPartition).map(([partition, list]) => ({ partition: Number(partition), firstSequence: 0, messages: list })) };
  });
  const request = produceRequest({ acks: -1, timeout: 30_000, transactionalId, producerId: '0', producerEpoch: 0, topicData });
  return (await request.encode()).buffer;
}
