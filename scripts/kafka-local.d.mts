/** Types of kafka-local.mjs (a plain script, so that it runs before anything is built). */
export declare const KAFKA_VERSION: string;
export declare function missingTools(): string | undefined;
export declare function fetchJars(): string;
export interface LocalKafka {
  brokers: string;
  version: string;
  dir: string;
  stop(): Promise<void>;
}
export declare function startKafka(opts?: { port?: number; quiet?: boolean; timeoutMs?: number }): Promise<LocalKafka>;
