/**
 * Event time over partitioned input, kept the way stream processors keep it (Flink's
 * per-split watermarks with idleness, Kafka Streams' stream time):
 *
 * - Each input partition's watermark is the newest event time it has delivered, minus the
 *   allowed lateness. A partition is read in order, so nothing it delivers later is older
 *   than that (by more than the lateness).
 * - The daemon's watermark is the minimum over the partitions that are not idle, and never
 *   moves back. A bar closes when the watermark reaches its close instant.
 * - A partition is idle when it has nothing more to deliver (caught up with its end and
 *   nothing waiting) and no message arrived for `idleTimeoutMs` of wall time. Being caught
 *   up for an instant between two fetches is not idleness: a backlog of any length is read
 *   exactly as a live feed, whatever the fetch sizes.
 * - An idle partition stops holding the watermark back only up to what the feed had
 *   delivered when the source last confirmed its end (`confirmEnd`): whatever is written
 *   there later is at most the lateness older than that, so it is never judged late because the
 *   others were read first. What the source knows of an end is a fetch or a refresh old
 *   (serve: the batch's high watermark, and its housekeeping once a second), and at a
 *   replay speed a partition coming back after lunch can be many minutes of event time
 *   behind the others in that time (Kafka Streams waits for known lag the same way). When
 *   that confirmation is all that keeps the next close back (`awaitsEnds`), the source
 *   looks at the ends at once instead of at its next periodic look.
 * - When every partition is idle the feed is quiet, and the wall clock takes over: event
 *   time is taken to advance at wall-clock pace from the newest event since the last
 *   message arrived, and the watermark follows it `graceMs` behind — but never past the
 *   last close of the newest event's trading day, since nothing after that is due before
 *   the next day's data. A replay at any speed is never overtaken (it is never slower than
 *   the wall clock), a live feed's last bars of a session close `graceMs` after their end.
 *
 * `nextDeadline` is the wall time at which the watermark would move with no input at all
 * (a partition turning idle, or the quiet feed reaching the next close): the daemon sets a
 * Clock alarm there instead of polling. Everything here is a pure function of the calls
 * made and the `now` passed in.
 */
import type { State } from '../features/state.js';

export interface EventTimeOptions {
  /** Event time a partition may deliver out of order (features.allowedLatenessMs). */
  latenessMs: number;
  /** Wall time without a message after which a caught-up partition stops holding the watermark back. */
  idleTimeoutMs: number;
  /** A quiet feed's bars close this long (wall time) after their close instant. */
  graceMs: number;
  /** The last close instant of the trading day that holds `ts` (a quiet feed closes no further). */
  lastCloseOfDay(ts: number): number;
}

interface PartitionClock {
  /** Newest event time delivered (-Infinity before the first). */
  maxTs: number;
  /** Wall time since which it has been silent: its last message, or its turning caught up, whichever came later. */
  quietSince: number;
  /** Nothing more to deliver: caught up with the partition's end and nothing waiting. */
  caughtUp: boolean;
  /** Newest event time over every partition when the source last confirmed this one's end: as far as it lets the watermark go while idle. */
  confirmedAt: number;
}

export class EventTime {
  private readonly opts: EventTimeOptions;
  private readonly partitions = new Map<string, PartitionClock>();
  private current = -Infinity;
  /** Newest event time over every partition. */
  private newest = -Infinity;
  /** Wall time the last message arrived (any partition): the quiet clock extrapolates from it. */
  private lastArrival = -Infinity;
  /** What measure() found (fields, not a returned object: it runs with every batch). */
  private activeMin = Infinity;
  private confirmedMin = Infinity;

  constructor(opts: EventTimeOptions) {
    if (!(opts.idleTimeoutMs >= 0 && opts.graceMs >= 0 && opts.latenessMs >= 0)) throw new RangeError('lateness, idle timeout and grace must be >= 0');
    this.opts = opts;
  }

  /** The watermark (epoch ms; -Infinity before the first). */
  get watermark(): number {
    return this.current;
  }

  /** A partition the source will deliver: it holds the watermark back until it delivers or turns idle. */
  track(key: string, now: number): void {
    if (!this.partitions.has(key)) this.partitions.set(key, { maxTs: -Infinity, quietSince: now, caughtUp: false, confirmedAt: -Infinity });
  }

  /** A message of `key` arrived; `maxTs` is the newest event time among its valid events (-Infinity for none). */
  observe(key: string, maxTs: number, now: number): void {
    const p = this.partition(key, now);
    if (maxTs > p.maxTs) p.maxTs = maxTs;
    if (maxTs > this.newest) this.newest = maxTs;
    p.quietSince = now;
    this.lastArrival = now;
  }

  /** Whether `key` has nothing more to deliver (its source's end reached and nothing of it waiting). */
  setCaughtUp(key: string, caughtUp: boolean, now: number): void {
    const p = this.partition(key, now);
    // The idle timeout runs from the later of its last message and its catching up.
    if (caughtUp && !p.caughtUp) p.quietSince = now;
    p.caughtUp = caughtUp;
  }

  /** The source has just seen `key`'s end and nothing beyond it: anything written there later is newer than what the feed has delivered so far, less the lateness. */
  confirmEnd(key: string, now: number): void {
    this.partition(key, now).confirmedAt = this.newest;
  }

  isIdle(key: string, now: number): boolean {
    const p = this.partitions.get(key);
    return p !== undefined && this.idle(p, now);
  }

  /** Newest event time delivered by `key` (-Infinity before the first). */
  newestOf(key: string): number {
    return this.partitions.get(key)?.maxTs ?? -Infinity;
  }

  private idle(p: PartitionClock, now: number): boolean {
    return p.caughtUp && now - p.quietSince >= this.opts.idleTimeoutMs;
  }

  private partition(key: string, now: number): PartitionClock {
    this.track(key, now);
    return this.partitions.get(key) as PartitionClock;
  }

  /** Recomputes the watermark at wall time `now` and returns it. */
  advance(now: number): number {
    const candidate = this.measure(now) > 0 ? Math.min(this.activeMin, this.confirmedMin) - this.opts.latenessMs : this.quietWatermark(now);
    if (candidate > this.current) this.current = candidate;
    return this.current;
  }

  /**
   * Whether only the idle partitions' last confirmed ends keep the watermark from `close`:
   * the source should look at the ends now rather than at its next periodic look, or a
   * backlog closes one bar per look.
   */
  awaitsEnds(now: number, close: number): boolean {
    if (this.measure(now) === 0 || close <= this.current) return false;
    return this.activeMin - this.opts.latenessMs >= close && this.confirmedMin - this.opts.latenessMs < close;
  }

  /**
   * Counts the partitions that are not idle (0: a quiet feed) and sets `activeMin` (the
   * newest event time of the least advanced of them) and `confirmedMin` (the oldest
   * confirmation among the idle ones).
   */
  private measure(now: number): number {
    let active = 0;
    this.activeMin = Infinity;
    this.confirmedMin = Infinity;
    for (const p of this.partitions.values()) {
      if (this.idle(p, now)) {
        if (p.confirmedAt < this.confirmedMin) this.confirmedMin = p.confirmedAt;
      } else {
        active++;
        if (p.maxTs < this.activeMin) this.activeMin = p.maxTs;
      }
    }
    return active;
  }

  /** Every partition idle: the wall clock extrapolates event time from the newest event. */
  private quietWatermark(now: number): number {
    if (this.newest === -Infinity) return -Infinity;
    const eventNow = this.newest + Math.max(0, now - this.lastArrival);
    return Math.min(eventNow - this.opts.graceMs, this.opts.lastCloseOfDay(this.newest));
  }

  /**
   * The wall time at which the watermark would next move with no input: when a caught-up
   * partition turns idle, or, with every partition idle, when the quiet watermark reaches
   * `nextClose`. Infinity when nothing is due.
   */
  nextDeadline(now: number, nextClose: number): number {
    let at = Infinity;
    let allIdle = this.partitions.size > 0;
    for (const p of this.partitions.values()) {
      if (this.idle(p, now)) continue;
      allIdle = false;
      if (p.caughtUp) at = Math.min(at, p.quietSince + this.opts.idleTimeoutMs);
    }
    if (allIdle && this.newest > -Infinity && Number.isFinite(nextClose) && nextClose > this.current && nextClose <= this.opts.lastCloseOfDay(this.newest)) {
      let due = this.lastArrival + (nextClose + this.opts.graceMs - this.newest);
      // Whole milliseconds, and never a hair early: at `due` the quiet watermark has reached the close.
      due = Math.ceil(due);
      while (this.quietWatermark(due) < nextClose) due++;
      at = Math.min(at, due);
    }
    return at;
  }

  /** What a restart needs: each partition's newest event time and the watermark. */
  snapshot(): State {
    return { watermark: this.current, partitions: [...this.partitions].map(([key, p]) => ({ key, maxTs: p.maxTs })) };
  }

  /** Restores a snapshot at wall time `now`: the idle timers and the quiet clock start from the restart. */
  restore(state: State, now: number): void {
    this.current = state.watermark as number;
    for (const { key, maxTs } of state.partitions as { key: string; maxTs: number }[]) {
      this.partitions.set(key, { maxTs, quietSince: now, caughtUp: false, confirmedAt: -Infinity });
      if (maxTs > this.newest) this.newest = maxTs;
    }
    if (this.newest > -Infinity) this.lastArrival = now;
  }
}
