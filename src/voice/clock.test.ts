import { describe, expect, it } from 'vitest';
import { ManualClock, realClock, sleep, withNow } from './clock.js';

describe('ManualClock', () => {
  it('fires due timers in order of due time, then of setting, the clock standing at each one’s time', () => {
    const clock = new ManualClock(100);
    const fired: [string, number][] = [];
    clock.setTimeout(() => fired.push(['b', clock.now()]), 20);
    clock.setTimeout(() => fired.push(['a', clock.now()]), 10);
    clock.setTimeout(() => fired.push(['c', clock.now()]), 20);
    clock.advance(15);
    expect(fired).toEqual([['a', 110]]);
    expect(clock.now()).toBe(115);
    clock.advance(100);
    expect(fired).toEqual([
      ['a', 110],
      ['b', 120],
      ['c', 120],
    ]);
    expect(clock.now()).toBe(215);
  });

  it('fires timers set by timers within the same advance; a cleared timer never fires', () => {
    const clock = new ManualClock();
    const fired: number[] = [];
    const tick = () => {
      fired.push(clock.now());
      if (fired.length < 5) clock.setTimeout(tick, 20);
    };
    clock.setTimeout(tick, 20);
    const never = clock.setTimeout(() => fired.push(-1), 50);
    clock.clearTimeout(never);
    clock.clearTimeout(undefined);
    clock.advance(1000);
    expect(fired).toEqual([20, 40, 60, 80, 100]);
    expect(clock.pending).toBe(0);
  });

  it('advanceAsync lets what a timer started run before the next timer', async () => {
    const clock = new ManualClock();
    const log: string[] = [];
    clock.setTimeout(() => void Promise.resolve().then(() => log.push(`settled at ${clock.now()}`)), 10);
    clock.setTimeout(() => log.push(`timer at ${clock.now()}`), 20);
    await clock.advanceAsync(30);
    expect(log).toEqual(['settled at 10', 'timer at 20']);
  });

  it('sleep() resolves on the clock, or at once when aborted', async () => {
    const clock = new ManualClock();
    let slept = false;
    void sleep(clock, 100).then(() => (slept = true));
    await clock.advanceAsync(99);
    expect(slept).toBe(false);
    await clock.advanceAsync(1);
    expect(slept).toBe(true);
    const abort = new AbortController();
    const cut = sleep(clock, 1000, abort.signal);
    abort.abort();
    await cut;
    expect(clock.pending).toBe(0);
  });

  it('until() advances until a condition holds, and says what it waited for past its timeout', async () => {
    const clock = new ManualClock();
    let done = false;
    clock.setTimeout(() => (done = true), 250);
    await clock.until(() => done);
    expect(clock.now()).toBe(250);
    await expect(clock.until(() => false, 'nothing', 100)).rejects.toThrow(/nothing/);
  });
});

describe('withNow', () => {
  it('reads another origin and keeps the base clock’s timers', () => {
    const base = new ManualClock(1000);
    const call = withNow(base, () => base.now() - 400);
    expect(call.now()).toBe(600);
    let fired = false;
    call.setTimeout(() => (fired = true), 10);
    base.advance(10);
    expect(fired).toBe(true);
    expect(withNow(realClock, () => 5).now()).toBe(5);
  });
});
