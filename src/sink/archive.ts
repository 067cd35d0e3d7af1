/**
 * The daily score archive: one Arrow IPC stream per model, trading day and daemon run
 * (`DIR/YYYY-MM-DD/<model>.<runId>.arrow`), appended after each commit. A run never
 * appends to another run's file (an Arrow stream cannot be reopened), so after a crash a
 * day may have two files; rows are identified by (symbol, barEnd, freq, modelVersion).
 */
import { join } from 'node:path';
import { TableWriter } from '../ingest/table-writer.js';
import { dayToIso, localDay } from '../market/time.js';
import { scoreTable, type ScoreRecord, type ScoreSource } from './scores.js';

export class ScoreArchive {
  private readonly dir: string;
  private readonly runId: string;
  private readonly writers = new Map<string, TableWriter>();

  constructor(dir: string, runId: string) {
    this.dir = dir;
    this.runId = runId;
  }

  append(records: readonly ScoreRecord[], src: ScoreSource): void {
    if (records.length === 0) return;
    const day = dayToIso(localDay(records[0].barEnd));
    const key = `${day}/${src.model}`;
    let w = this.writers.get(key);
    if (w === undefined) {
      // A new day closes the previous day's file of this model.
      for (const [k, old] of this.writers) {
        if (k.endsWith(`/${src.model}`)) {
          void old.close();
          this.writers.delete(k);
        }
      }
      w = new TableWriter(join(this.dir, day, `${src.model}.${this.runId}.arrow`), 'arrow');
      this.writers.set(key, w);
    }
    w.write(scoreTable(records, src));
  }

  async close(): Promise<void> {
    await Promise.all([...this.writers.values()].map((w) => w.close()));
    this.writers.clear();
  }
}
