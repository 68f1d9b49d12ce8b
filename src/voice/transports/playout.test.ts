import { describe, expect, it, vi } from 'vitest';
import { ManualClock } from '../clock.js';
import { Playout } from './playout.js';

const audio = (ms: number, rate = 8000) => ({ pcm: new Int16Array((rate * ms) / 1000).fill(1000), sampleRate: rate, timestampMs: 0 });

describe('Playout', () => {
  it('releases 20 ms frames in real time and resolves a mark when the audio before it has played', async () => {
    const clock = new ManualClock(1000);
    const played: number[] = [];
    const p = new Playout(8000, (f, at) => played.push(at), 0, clock);
    p.enqueue(audio(150)); // 7 frames and a 10 ms tail, padded when the mark comes
    let done: boolean | undefined;
    void p.mark('sentence-1').then((d) => (done = d));
    await clock.until(() => done !== undefined, 'the mark');
    expect(done).toBe(true);
    expect(played).toHaveLength(8);
    // 160 ms of audio, the mark reached on the pacer's next 5 ms tick.
    expect(clock.now() - 1000).toBeGreaterThanOrEqual(160);
    expect(clock.now() - 1000).toBeLessThanOrEqual(165);
    // Paced: each frame starts 20 ms after the one before.
    const gaps = played.slice(1).map((t, i) => t - played[i]!);
    expect(gaps.every((g) => Math.abs(g - 20) < 0.01)).toBe(true);
  });

  it('clear() drops what has not been played and fails pending marks', async () => {
    const clock = new ManualClock(1000);
    let frames = 0;
    const p = new Playout(16000, () => frames++, 0, clock);
    p.enqueue(audio(1000, 16000));
    const mark = p.mark('long');
    await clock.advanceAsync(100);
    expect(p.queuedMs).toBe(880); // 6 frames played: at 0 ms and on each 20 ms up to 100
    p.clear();
    expect(await mark).toBe(false);
    expect(p.queuedMs).toBe(0);
    const playedBefore = frames;
    await clock.advanceAsync(60);
    expect(frames).toBe(playedBefore);
    expect(playedBefore).toBe(6);
    // Audio queued after a clear plays again.
    p.enqueue(audio(40, 16000));
    let after: boolean | undefined;
    void p.mark('after').then((d) => (after = d));
    await clock.until(() => after !== undefined, 'the mark after the clear');
    expect(after).toBe(true);
    p.close();
    expect(await p.mark('closed')).toBe(false);
  });

  it('paces many playouts from one clock: one timer for all of them, every frame sent 20 ms after the one before', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    try {
      // The fake clock starts at 0, where a new playout's empty schedule is.
      vi.advanceTimersByTime(1000);
      const sent: number[][] = [];
      const marks: Promise<boolean>[] = [];
      for (let i = 0; i < 50; i++) {
        const times: number[] = [];
        sent.push(times);
        // When the frame really goes out, not its place in the schedule.
        const p = new Playout(8000, () => times.push(performance.now()));
        // Started at different moments, so their schedules have different phases against the clock's ticks.
        vi.advanceTimersByTime(i % 7);
        p.enqueue(audio(200));
        marks.push(p.mark(`m${i}`));
      }
      // A timer per playout would be 50 here.
      expect(vi.getTimerCount()).toBe(1);
      await vi.advanceTimersByTimeAsync(400);
      expect(await Promise.all(marks)).toEqual(marks.map(() => true));
      expect(sent.reduce((n, t) => n + t.length, 0)).toBe(500);
      for (const times of sent) {
        const gaps = times.slice(1).map((t, i) => t - times[i]!);
        // The first frame goes at once; the second on the first tick at most 1 ms before it is due, the rest
        // exactly 20 ms apart (the schedule keeps its phase against the ticks).
        expect(gaps[0]).toBeGreaterThanOrEqual(19);
        expect(gaps[0]).toBeLessThanOrEqual(20 + 5);
        expect(gaps.slice(1)).toEqual(gaps.slice(1).map(() => expect.closeTo(20, 0)));
      }
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it('refuses audio at another rate', () => {
    const p = new Playout(8000, () => {});
    expect(() => p.enqueue(audio(20, 16000))).toThrow(/8000 Hz got 16000 Hz/);
  });
});
