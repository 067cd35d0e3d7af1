/**
 * computeStopwatch's wait for a core (factorstream_inference_wait_seconds) is the kernel's:
 * a thread that spins, alone or beside two threads spinning on the same core, waited what
 * its wall time less its CPU time is by the kernel's other count of it (utime + stime in
 * /proc/thread-self/stat, in clock ticks), not by this code's reading of schedstat.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

interface Measured {
  seconds: number;
  waitSeconds: number;
  /** The same span's wall time less the thread's CPU time, from /proc/thread-self/stat. */
  offCpuSeconds: number;
}

/** A spin of 600 ms in a process held to one core, beside `siblings` worker threads spinning there too. */
function spinBeside(siblings: number): Measured {
  const script = `import { Worker } from 'node:worker_threads';
import { readFileSync } from 'node:fs';
import { computeStopwatch } from './src/market/clock.ts';
const cpuSeconds = () => { const f = readFileSync('/proc/thread-self/stat', 'latin1'); const after = f.slice(f.lastIndexOf(')') + 2).split(' '); return (Number(after[11]) + Number(after[12])) / 100; };
const spin = (ms) => { const t = performance.now(); while (performance.now() - t < ms); };
const workers = Array.from({ length: ${siblings} }, () => new Worker('const t = performance.now(); while (performance.now() - t < 3000);', { eval: true }));
await Promise.all(workers.map((w) => new Promise((r) => w.once('online', r))));
const cpu0 = cpuSeconds();
const t0 = performance.now();
const elapsed = computeStopwatch();
spin(600);
const m = elapsed();
const offCpuSeconds = (performance.now() - t0) / 1000 - (cpuSeconds() - cpu0);
console.log(JSON.stringify({ ...m, offCpuSeconds }));
process.exit(0);`;
  const r = spawnSync('taskset', ['-c', '0', process.execPath, '--import', 'tsx', '--input-type=module', '-e', script], { cwd: join(import.meta.dirname, '..'), encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim().split('\n').at(-1) as string) as Measured;
}

describe.runIf(process.platform === 'linux')('the wait for a core of a computation (Linux schedstat)', () => {
  it("is the kernel's wall-less-CPU time of the thread: about none alone, most of it beside two spinning threads on its core", () => {
    const alone = spinBeside(0);
    const crowded = spinBeside(2);
    for (const m of [alone, crowded]) {
      expect(m.seconds).toBeGreaterThanOrEqual(0.6);
      // Clock ticks of 10 ms on either side of the span, and the CFS slices between them.
      expect(Math.abs(m.waitSeconds - m.offCpuSeconds), JSON.stringify(m)).toBeLessThan(0.03 + 0.1 * m.seconds);
    }
    // Three spinning threads on one core: each runs about a third of the time.
    expect(crowded.waitSeconds / crowded.seconds, JSON.stringify(crowded)).toBeGreaterThan(0.4);
  });
});
