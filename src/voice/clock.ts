// Time for the voice core: the call session, the turn detector, playout and the in-memory transport read the time
// and set their timers through a Clock, so tests run a whole call in virtual time (ManualClock) in milliseconds.
// Production uses realClock: performance.now() and the process's timers, exactly as before.

/** A timer set on a clock; only that clock's clearTimeout understands it. */
export type Timer = unknown;

export interface Clock {
  /** ms, monotonic. */
  now(): number;
  setTimeout(fn: () => void, ms: number): Timer;
  /** Cancels a timer; undefined or an already fired timer is fine. */
  clearTimeout(timer: Timer | undefined): void;
}

export const realClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (timer) => clearTimeout(timer as NodeJS.Timeout | undefined),
};

/** The same timers with another origin: a call's clock runs from the call's start (across restarts too). */
export function withNow(base: Clock, now: () => number): Clock {
  return { now, setTimeout: (fn, ms) => base.setTimeout(fn, ms), clearTimeout: (t) => base.clearTimeout(t) };
}

/** Resolves after `ms` on the clock, or at once when `signal` aborts. */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const onAbort = () => {
      clock.clearTimeout(timer);
      resolve();
    };
    const timer = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

interface ManualTimer {
  at: number;
  seq: number;
  fn: () => void;
}

/** Lets every pending promise callback run: Node drains the microtask queue before it runs an immediate. */
const settle = () => new Promise<void>((r) => setImmediate(r));

/**
 * Virtual time for tests: nothing happens until the test advances the clock. Timers fire in order of their due time
 * (then of their setting), the clock standing at that time, including timers set by timers on the way.
 */
export class ManualClock implements Clock {
  private current: number;
  private seq = 0;
  private timers: ManualTimer[] = [];

  constructor(startMs = 0) {
    this.current = startMs;
  }

  now(): number {
    return this.current;
  }

  setTimeout(fn: () => void, ms: number): Timer {
    const timer: ManualTimer = { at: this.current + Math.max(0, ms), seq: this.seq++, fn };
    this.timers.push(timer);
    return timer;
  }

  clearTimeout(timer: Timer | undefined): void {
    const i = this.timers.indexOf(timer as ManualTimer);
    if (i >= 0) this.timers.splice(i, 1);
  }

  /** Timers not fired yet. */
  get pending(): number {
    return this.timers.length;
  }

  /** Moves the clock `ms` on, firing the timers due on the way synchronously. */
  advance(ms: number): void {
    const until = this.current + ms;
    for (let t = this.next(until); t; t = this.next(until)) this.fire(t);
    this.current = until;
  }

  /**
   * Moves the clock `ms` on, letting promises settle before and after each timer: what a timer starts (an async
   * reply, a queue being read) runs to its next wait before the clock moves again, as it would in real time.
   */
  async advanceAsync(ms: number): Promise<void> {
    const until = this.current + ms;
    await settle();
    for (let t = this.next(until); t; t = this.next(until)) {
      this.fire(t);
      await settle();
    }
    this.current = until;
    await settle();
  }

  /** Advances in steps of `stepMs` until `condition` holds; throws past `timeoutMs` of virtual time. */
  async until(condition: () => boolean, what = 'condition', timeoutMs = 60_000, stepMs = 10): Promise<void> {
    const deadline = this.current + timeoutMs;
    await settle();
    while (!condition()) {
      if (this.current >= deadline) throw new Error(`timed out (virtual ${timeoutMs} ms) waiting for ${what}`);
      await this.advanceAsync(stepMs);
    }
  }

  private next(until: number): ManualTimer | undefined {
    let best: ManualTimer | undefined;
    for (const t of this.timers) if (t.at <= until && (!best || t.at < best.at || (t.at === best.at && t.seq < best.seq))) best = t;
    return best;
  }

  private fire(timer: ManualTimer): void {
    this.timers.splice(this.timers.indexOf(timer), 1);
    this.current = Math.max(this.current, timer.at);
    timer.fn();
  }
}
