/**
 * CrossSectionScorer.run as serve calls it: at the close itself, in the middle of a batch
 * (pipeline.ts launch). A job with none before it starts before run returns (an inference
 * worker steps while the main thread reads on); jobs run one at a time, in the order run
 * was called, since they share the scorer's buffers; a failed one does not stop the rest.
 */
import { describe, expect, it } from 'vitest';
import { FEATURE_COUNT } from '../src/features/feature-set.js';
import type { ComputeTime } from '../src/market/clock.js';
import { readMeta } from '../src/model/artifact.js';
import type { Predictor } from '../src/model/predictor.js';
import { CrossSectionScorer, type ScoringJob } from '../src/model/scorer.js';

/** Records each job as it starts (by its input's first value) and finishes them when told. */
class GatedPredictor implements Predictor {
  readonly engine = 'onnx' as const;
  readonly backend = 'gated';
  readonly started: number[] = [];
  private readonly open: { finish: () => void; fail: () => void }[] = [];

  predict(input: Float32Array, n: number, out: Float32Array): Promise<ComputeTime> {
    const id = input[0];
    this.started.push(id);
    return new Promise((resolve, reject) => {
      this.open.push({
        finish: () => {
          out.fill(id, 0, n);
          resolve({ seconds: id / 1000, waitSeconds: 0 });
        },
        fail: () => reject(new Error(`job ${id} failed`)),
      });
    });
  }

  /** Ends the oldest running job. */
  end(how: 'finish' | 'fail'): void {
    const job = this.open.shift();
    if (job === undefined) throw new Error('no job is running');
    job[how]();
  }

  get running(): number {
    return this.open.length;
  }

  async dispose(): Promise<void> {}
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('CrossSectionScorer.run', () => {
  it('starts a job at once when none is in flight, runs one at a time in call order, and carries on after a failure', async () => {
    const meta = readMeta('models/demo-10m');
    const predictor = new GatedPredictor();
    const scorer = new CrossSectionScorer(predictor, meta, 0);
    const job = (id: number): ScoringJob => ({ barEnd: id, universe: 2, n: 2, ids: Int32Array.of(0, 1), coverage: Float64Array.of(1, 1), input: new Float32Array(2 * meta.T * FEATURE_COUNT).fill(id) });

    const first = scorer.run(job(1));
    expect(predictor.started).toEqual([1]); // before run returned
    const second = scorer.run(job(2));
    const third = scorer.run(job(3));
    const fourth = scorer.run(job(4));
    await turn();
    expect(predictor.started).toEqual([1]);

    predictor.end('finish');
    const a = await first;
    expect(Array.from(a.score)).toEqual([1, 1]);
    expect(a.inference.seconds).toBe(0.001); // the engine's own measure
    await turn();
    expect(predictor.started).toEqual([1, 2]);
    expect(predictor.running).toBe(1);

    predictor.end('fail');
    await expect(second).rejects.toThrow('job 2 failed');
    await turn();
    expect(predictor.started).toEqual([1, 2, 3]);
    predictor.end('finish');
    expect(Array.from((await third).score)).toEqual([3, 3]);
    await turn();
    predictor.end('finish');
    expect((await fourth).job.barEnd).toBe(4);

    // Idle again: the next job starts before run returns.
    const fifth = scorer.run(job(5));
    expect(predictor.started).toEqual([1, 2, 3, 4, 5]);
    predictor.end('finish');
    await fifth;
  });
});
