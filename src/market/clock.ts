/**
 * The Clock: the only place that reads the time (a lint rule keeps Date.now(),
 * performance.now() and argument-less `new Date()` inside src/market). Components take a
 * Clock and never read system time themselves. The live clock is backed by real timers;
 * the simulated clock is advanced explicitly (the embedded default, tests) and fires its
 * alarms in time order. Durations of work (inference, a checkpoint, a command) come from a
 * `stopwatch`, which is monotonic and never jumps with the wall clock.
 */
export interface Clock {
  now(): number;
  /** Calls `callback` once when the clock reaches `at` (epoch ms). Returns a handle for cancel. */
  setAlarm(at: number, callback: () => void): number;
  cancelAlarm(handle: number): void;
}

export class LiveClock implements Clock {
  private readonly timers = new Map<number, NodeJS.Timeout>();
  private nextHandle = 1;

  now(): number {
    return Date.now();
  }

  setAlarm(at: number, callback: () => void): number {
    const handle = this.nextHandle++;
    const timer = setTimeout(
      () => {
        this.timers.delete(handle);
        callback();
      },
      Math.max(0, at - Date.now()),
    );
    this.timers.set(handle, timer);
    return handle;
  }

  cancelAlarm(handle: number): void {
    const timer = this.timers.get(handle);
    if (timer !== undefined) clearTimeout(timer);
    this.timers.delete(handle);
  }
}

interface Alarm {
  at: number;
  handle: number;
  callback: () => void;
}

export class SimulatedClock implements Clock {
  private current: number;
  private alarms: Alarm[] = [];
  private nextHandle = 1;

  constructor(start: number) {
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  setAlarm(at: number, callback: () => void): number {
    const handle = this.nextHandle++;
    this.alarms.push({ at, handle, callback });
    this.alarms.sort((a, b) => a.at - b.at || a.handle - b.handle);
    return handle;
  }

  cancelAlarm(handle: number): void {
    this.alarms = this.alarms.filter((a) => a.handle !== handle);
  }

  /** Moves time forward to `to`, firing every alarm due at or before it, in time order. */
  advanceTo(to: number): void {
    while (this.alarms.length > 0 && this.alarms[0].at <= to) {
      const alarm = this.alarms.shift() as Alarm;
      if (alarm.at > this.current) this.current = alarm.at;
      alarm.callback();
    }
    if (to > this.current) this.current = to;
  }
}

/** The system wall clock, for commands that only need "now" (file stamps, log lines). */
export const systemClock: Clock = new LiveClock();

/** Starts a monotonic stopwatch: the returned function gives the milliseconds elapsed since. */
/** Now in milliseconds, comparable between threads (each thread's performance clock from its own origin, in wall time). */
export function threadTime(): number {
  return performance.timeOrigin + performance.now();
}

export function stopwatch(): () => number {
  const t0 = performance.now();
  return () => performance.now() - t0;
}
