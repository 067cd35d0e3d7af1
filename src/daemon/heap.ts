/**
 * How far V8 lets the old generation grow before its next full garbage collection, for a
 * process whose job is to answer bar closes on time (`daemon.heapGrowthPercent`).
 *
 * After each mark-compact V8 sets the next limit at the live heap times a factor it picks
 * from how fast the program allocates against how fast it marks. The daemon keeps about
 * 80 MB live at 5,000 symbols and promotes slowly, so V8 picks about 1.3: a mark-compact
 * every 0.4–1 s under the bench's 120x feed (146 in a 3-minute run), each with 20–60 ms of marking
 * steps and pause on the main thread and its marking threads on the cores that the close's
 * inference and the broker need (in the closes' windows they ran as long as the main thread).
 * A fixed factor of 1 + percent/100 trades memory for those pauses (bench/RESULTS.md).
 */
import v8 from 'node:v8';

/** Sets V8's old-generation growth factor to 1 + percent/100 for the whole process (0: V8's own choice). */
export function setHeapGrowth(percent: number): void {
  // A V8 flag: read whenever the limit is recomputed, so setting it once started is enough.
  v8.setFlagsFromString(`--heap-growing-percent=${Math.round(percent)}`);
}
