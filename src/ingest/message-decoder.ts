/**
 * Input messages as a partitioned source delivers them (Kafka, or the embedded
 * simulator's in-process "topic"), and their decoding: the `content-type` header picks
 * the codec (JSON, one event a message; Arrow IPC, many), an oversized message or an
 * unknown content type is rejected whole, and every valid event is appended to the
 * caller's batch. The same codecs and checks as files: an event means the same thing
 * wherever it came from.
 */
import type { ErrorCode } from '../errors.js';
import { ArrowBarDecoder, ArrowTickDecoder } from './arrow-codec.js';
import { codecOf, type Codec, type DecodeContext } from './decode.js';
import type { BarBatch, TickBatch } from './events.js';
import { decodeBarJson } from './json-codec.js';
import { decodeTickJsonBytes } from './json-scan.js';

/** One message from a partitioned source. */
export interface InputMessage {
  topic: string;
  partition: number;
  offset: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: Readonly<Record<string, string | undefined>>;
}

const EMPTY = Buffer.alloc(0);

/** The codec of a message by its content-type header, or undefined. */
export function messageCodec(m: InputMessage): Codec | undefined {
  return codecOf(m.headers['content-type']);
}

export class MessageDecoder {
  private readonly maxMessageBytes: number;
  private readonly arrowTicks = new ArrowTickDecoder();
  private readonly arrowBars = new ArrowBarDecoder();

  constructor(maxMessageBytes: number) {
    this.maxMessageBytes = maxMessageBytes;
  }

  /**
   * Decodes `m` into `into` (rows whose origin is the message offset), reporting each
   * invalid event once to `ctx` (row -1 for a reject of the whole message).
   */
  decode(m: InputMessage, into: TickBatch | BarBatch, kind: 'ticks' | 'bars', ctx: DecodeContext): void {
    const value = m.value ?? EMPTY;
    const codec = messageCodec(m);
    const reject = (code: ErrorCode, detail: string): void => ctx.reject(code, detail, m.offset, -1, undefined);
    if (value.length > this.maxMessageBytes) reject('E_OVERSIZED', `${value.length} bytes, more than daemon.maxMessageBytes = ${this.maxMessageBytes}`);
    else if (codec === undefined) reject('E_UNKNOWN_CONTENT_TYPE', `content-type ${JSON.stringify(m.headers['content-type'] ?? null)}`);
    else if (codec === 'json') {
      if (kind === 'bars') decodeBarJson(value.toString('utf8'), m.offset, into as BarBatch, ctx);
      else decodeTickJsonBytes(value, 0, value.length, m.offset, into as TickBatch, ctx);
    } else if (kind === 'bars') this.arrowBars.decodeMessage(value, m.offset, into as BarBatch, ctx);
    else this.arrowTicks.decodeMessage(value, m.offset, into as TickBatch, ctx);
  }
}
