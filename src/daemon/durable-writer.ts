/**
 * Makes checkpoint bytes durable on a thread of their own. Each write is a few file-system
 * calls (open, write, fsync, close; for a full checkpoint also the rename and the folder's
 * fsync); with node:fs/promises each call's continuation waits for the main thread, which
 * during a commit is encoding the transaction's records, so a 1 ms fsync took hundreds of
 * milliseconds to complete. Here the calls run back to back, synchronously, in one worker
 * thread, in the order they were asked for; a failed write fails every later one (a chain
 * with a gap must not be extended), a failed sync of other code's files (the score
 * archive's, ahead of the checkpoint that follows them) only itself. The worker is plain
 * JavaScript evaluated from this file's function, so it runs from the sources (tests) and
 * the build alike.
 */
import { Worker } from 'node:worker_threads';

/**
 * Appends `parts` to `path` and fsyncs it ('append'), or replaces `path` atomically by them
 * through `path`.tmp, then truncates `truncate` ('replace'), or fsyncs files and folders
 * other code wrote ('sync': the score archive's, so that a checkpoint written after them is
 * never on disk before them). A failed sync fails itself alone: it breaks no chain.
 */
export type DurableWrite = { kind: 'append'; path: string; parts: Uint8Array[] } | { kind: 'replace'; path: string; parts: Uint8Array[]; truncate: string } | { kind: 'sync'; paths: string[] };

interface Reply {
  id: number;
  /** threadTime() (market/clock.ts) in the worker when the bytes were on disk. */
  doneAt: number;
  error?: string;
  /** Whether the error fails every later write (a chain's), not this one alone (a sync's). */
  fatal?: boolean;
}

/** The worker's body: no imports or closures, it is evaluated as the text of this function. */
function writerThread(): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const fs = require('node:fs') as typeof import('node:fs');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { dirname } = require('node:path') as typeof import('node:path');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { parentPort } = require('node:worker_threads') as typeof import('node:worker_threads');
  const port = parentPort as NonNullable<typeof parentPort>;
  let failed: string | undefined;
  const syncPath = (path: string): void => {
    const fd = fs.openSync(path, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  };
  const durably = (path: string, parts: readonly Uint8Array[], flags: 'a' | 'w'): void => {
    fs.mkdirSync(dirname(path), { recursive: true });
    const fd = fs.openSync(path, flags);
    try {
      if (parts.length > 0) fs.writevSync(fd, parts);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  };
  port.on('message', (m: { id: number; write: DurableWrite }) => {
    const w = m.write;
    let syncError: string | undefined;
    if (w.kind === 'sync') {
      for (const path of w.paths) {
        try {
          syncPath(path);
        } catch (err) {
          syncError ??= (err as Error).message;
        }
      }
    } else if (failed === undefined) {
      try {
        if (w.kind === 'append') durably(w.path, w.parts, 'a');
        else {
          const tmp = `${w.path}.tmp`;
          durably(tmp, w.parts, 'w');
          fs.renameSync(tmp, w.path);
          syncPath(dirname(w.path));
          durably(w.truncate, [], 'w');
        }
      } catch (err) {
        failed = (err as Error).message;
      }
    }
    // A sync answers for itself; a write for the chain, which the first failed write broke.
    const fatal = w.kind !== 'sync';
    const error = fatal ? failed : syncError;
    // market/clock.ts's threadTime(), which this thread cannot import.
    // eslint-disable-next-line no-restricted-properties
    const reply: Reply = { id: m.id, doneAt: performance.timeOrigin + performance.now(), ...(error === undefined ? {} : { error, fatal }) };
    port.postMessage(reply);
  });
}

export class DurableWriter {
  private worker: Worker | undefined;
  private nextId = 0;
  /** The first failure: every write after it fails too. */
  private failure: Error | undefined;
  private readonly waiting = new Map<number, { resolve(doneAt: number): void; reject(err: Error): void }>();

  /**
   * Hands `write` to the writer thread (its parts are transferred where they own their
   * memory, so do not use them afterwards); resolves with the threadTime() (market/clock.ts)
   * at which they were on disk.
   */
  write(write: DurableWrite): Promise<number> {
    // A sync of other files does not extend the chain: it runs after a failed write too.
    if (this.failure !== undefined && write.kind !== 'sync') return Promise.reject(this.failure);
    const worker = this.started();
    const id = this.nextId++;
    const done = new Promise<number>((resolve, reject) => this.waiting.set(id, { resolve, reject }));
    // Whole-buffer parts move to the thread without a copy; pooled slices are copied.
    const transfer = (write.kind === 'sync' ? [] : write.parts).filter((p) => p.byteOffset === 0 && p.byteLength === p.buffer.byteLength).map((p) => p.buffer as ArrayBuffer);
    worker.postMessage({ id, write }, [...new Set(transfer)]);
    worker.ref();
    return done;
  }

  private started(): Worker {
    if (this.worker !== undefined) return this.worker;
    // The function's text as compiled (tsc, or esbuild under tsx, whose keepNames wraps functions in __name).
    const worker = new Worker(`const __name = (f) => f;\n(${writerThread.toString()})()`, { eval: true });
    worker.on('message', (r: Reply) => {
      const w = this.waiting.get(r.id);
      this.waiting.delete(r.id);
      if (r.error === undefined) w?.resolve(r.doneAt);
      else if (r.fatal === true) w?.reject((this.failure ??= new Error(r.error)));
      else w?.reject(new Error(r.error));
      // Idle, it does not keep the process alive.
      if (this.waiting.size === 0) worker.unref();
    });
    worker.on('error', (err) => this.failAll(err));
    worker.on('exit', (code) => {
      if (this.worker === worker) this.worker = undefined;
      if (this.waiting.size > 0) this.failAll(new Error(`the checkpoint writer thread exited (code ${code})`));
    });
    this.worker = worker;
    return worker;
  }

  private failAll(err: Error): void {
    this.failure ??= err;
    for (const w of this.waiting.values()) w.reject(err);
    this.waiting.clear();
  }

  /** Stops the thread (after the writes asked for have completed, if the caller awaited them). */
  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    if (worker !== undefined) await worker.terminate();
  }
}
