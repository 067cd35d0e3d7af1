/** Types of kafka-local.mjs (a plain script, so that it runs before anything is built). */
export declare const KAFKA_VERSION: string;
export declare const SECURE_USERS: Readonly<Record<'factorstream' | 'reader', string>>;
export declare function missingTools(): string | undefined;
export declare function fetchJars(): string;
/** The secured listeners of a broker started with `secure` and what a client needs for them (PEM files). */
export interface SecureKafka {
  /** SASL_SSL: SCRAM-SHA-512, SCRAM-SHA-256 and PLAIN over TLS. */
  saslBrokers: string;
  /** SSL with a client certificate required (mutual TLS). */
  mtlsBrokers: string;
  caFile: string;
  /** A CA that signed nothing of this broker's: a client trusting only it must fail. */
  otherCaFile: string;
  clientCertFile: string;
  clientKeyFile: string;
  /** factorstream is a super user; reader has no ACL. */
  users: Readonly<Record<'factorstream' | 'reader', string>>;
}
export interface LocalKafka {
  brokers: string;
  version: string;
  dir: string;
  secure: SecureKafka | undefined;
  /** Stops the broker, keeping its data (SIGKILL: as a crash). */
  halt(signal?: 'SIGTERM' | 'SIGKILL'): Promise<void>;
  /** Starts it again on the same data folder and ports. */
  resume(): Promise<void>;
  stop(): Promise<void>;
}
export declare function startKafka(opts?: { port?: number; quiet?: boolean; timeoutMs?: number; secure?: boolean }): Promise<LocalKafka>;
