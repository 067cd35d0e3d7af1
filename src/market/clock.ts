/**
 * The Clock: the only place that reads the time (a lint rule keeps Date.now(),
 * performance.now() and argument-less `new Date()` inside src/market). Components take a
 * Clock and never read system time themselves. The live clock is backed by real timers;
 * the simulated clock is advanced explicitly (the embedded default, tests) and fires its
 * alarms in time order. Durations of work (inference, a checkpoint, a command) come from a
 * `stopwatch`, which is monotonic and never jumps with the wall clock.
 */
import { readFileSync } from 'node:fs';

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

/** Now in milliseconds, comparable between threads (each thread's performance clock from its own origin, in wall time). */
export function threadTime(): number {
  return performance.timeOrigin + performance.now();
}

/** Starts a monotonic stopwatch: the returned function gives the milliseconds elapsed since. */
export function stopwatch(): () => number {
  const t0 = performance.now();
  return () => performance.now() - t0;
}

/** A computation's duration, measured on the thread that ran it. */
export interface ComputeTime {
  seconds: number;
  /**
   * Of `seconds`, the time that thread was ready to run but waited for a core (Linux's
   * per-thread schedstat, the kernel's own count): what a host whose cores are all busy
   * adds to the computation. NaN where the kernel does not say.
   */
  waitSeconds: number;
}

/** Whether this thread's schedstat could be read (undefined: not tried yet). */
let schedstat: boolean | undefined;

/**
 * The seconds this thread has been ready to run but waited for a core since it started:
 * the second of the three fields of Linux's /proc/thread-self/schedstat (on a core,
 * waiting, timeslices; in ns). NaN where the kernel does not say. The difference of two
 * readings on one thread is its wait between them.
 */
export function runQueueSeconds(): number {
  if (schedstat === false) return Number.NaN;
  try {
    const fields = readFileSync('/proc/thread-self/schedstat', 'latin1').split(' ');
    schedstat = fields.length === 3;
    return schedstat ? Number(fields[1]) / 1e9 : Number.NaN;
  } catch {
    schedstat = false;
    return Number.NaN;
  }
}

/** Starts a stopwatch of a computation on this thread: its duration and how long of it the thread waited for a core. */
export function computeStopwatch(): () => ComputeTime {
  const elapsed = stopwatch();
  const wait0 = runQueueSeconds();
  // The wait read inside the duration at both ends: a preemption between the two readings
  // counts in the duration only, so the wait is never more than the duration it is part of.
  return () => {
    const waitSeconds = runQueueSeconds() - wait0;
    return { seconds: elapsed() / 1000, waitSeconds };
  };
}

/** The sum of computations' times (an ensemble's members, a step and the whole windows beside it). */
export function addComputeTime(a: ComputeTime, b: ComputeTime): ComputeTime {
  return { seconds: a.seconds + b.seconds, waitSeconds: a.waitSeconds + b.waitSeconds };
}

export const NO_COMPUTE: ComputeTime = { seconds: 0, waitSeconds: 0 };
