/**
 * A trading system's view of factorstream: read the per-symbol scores from
 * `factor.scores` with read_committed isolation (only scores whose transaction committed,
 * each exactly once), and print the top and bottom of each cross-section as it completes.
 *
 *   node --import tsx examples/subscriber.ts [--brokers 127.0.0.1:9092] [--topic factor.scores] [--from-beginning]
 *       [--config FILE]   (the daemon's config file: its kafka.* brokers, TLS and SASL settings)
 *
 * A cross-section is complete when its `universe` scores for one (model, modelVersion,
 * freq, barEnd) have arrived; they are committed together, so a subscriber never sees
 * half of one after a crash of the daemon. The long side leaves out stocks locked at their
 * upper limit (`limit` 1: a buy will not fill) and the short side those at the lower (-1).
 */
import { parseArgs } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';
import { loadConfig } from '../src/config.js';
import { kafkaConnection } from '../src/ingest/kafka-client.js';
// The message as documented in README (Topics) and schemas/score.schema.json.
import type { ScoreRecord as Score } from '../src/sink/scores.js';


const { values } = parseArgs({
  options: {
    brokers: { type: 'string' },
    config: { type: 'string' },
    topic: { type: 'string', default: 'factor.scores' },
    group: { type: 'string', default: `factorstream-example-${process.pid}` },
    'from-beginning': { type: 'boolean', default: false },
    top: { type: 'string', default: '5' },
  },
});

// Brokers, TLS and SASL as the daemon takes them: the config file < FACTORSTREAM_KAFKA_* < --brokers (KAFKA_BROKERS as a fallback).
const brokers = values.brokers ?? process.env.KAFKA_BROKERS;
const config = loadConfig({ file: values.config, env: process.env, flags: { kafka: { brokers: brokers?.split(',') } } });
const kafka = new Kafka({ clientId: 'factorstream-example-subscriber', ...kafkaConnection(config.kafka), logLevel: logLevel.WARN });
// readUncommitted: false is read_committed: aborted or open transactions are never delivered.
const consumer = kafka.consumer({ groupId: values.group, readUncommitted: false });
const pending = new Map<string, Score[]>();
const top = Number(values.top);

await consumer.connect();
await consumer.subscribe({ topic: values.topic, fromBeginning: values['from-beginning'] });
await consumer.run({
  eachMessage: async ({ message }) => {
    if (message.value === null) return;
    const s = JSON.parse(message.value.toString()) as Score;
    const key = `${s.model}@${s.modelVersion} ${s.freq} ${s.barEnd}`;
    const list = pending.get(key) ?? [];
    list.push(s);
    pending.set(key, list);
    if (list.length < s.universe) return;
    pending.delete(key);
    list.sort((a, b) => b.rank - a.rank);
    const time = new Date(s.barEnd + 8 * 3_600_000).toISOString().slice(0, 16).replace('T', ' ');
    const fmt = (x: Score): string => `${x.symbol} z=${x.z.toFixed(2)}`;
    const long = list.filter((x) => x.limit !== 1).slice(0, top);
    const short = list.filter((x) => x.limit !== -1).slice(-top);
    const locked = list.filter((x) => x.limit !== 0).length;
    process.stdout.write(
      `${time} ${s.freq} ${s.model} (${s.modelVersion}): ${s.universe} scored | long ${long.map(fmt).join(', ')} | short ${short.map(fmt).join(', ')}${locked > 0 ? ` | ${locked} at a limit` : ''}\n`,
    );
  },
});

const stop = async (): Promise<void> => {
  await consumer.disconnect();
  process.exit(0);
};
process.once('SIGINT', () => void stop());
process.once('SIGTERM', () => void stop());
