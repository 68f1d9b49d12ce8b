import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { EventQueue } from '../../lib/event-queue.js';
import { ProviderError } from '../../lib/provider-error.js';
import type { AudioFrame } from '../audio.js';
import { FallbackStt } from './fallback-stt.js';
import type { STT, SttEvent, SttStream } from './stt.js';

/** An STT that records the frames it got and fails after `failAfterFrames` frames (or never). */
class ScriptedStt implements STT {
  readonly sampleRate: number = 16000;
  readonly received: number[] = [];
  flushes = 0;
  constructor(
    readonly provider: string,
    private readonly failAfterFrames = Infinity,
    private readonly failOnFlush = false,
  ) {}
  stream(): SttStream {
    const events = new EventQueue<SttEvent>();
    return {
      events,
      push: (frame) => {
        if (this.received.length >= this.failAfterFrames) return;
        this.received.push(frame.timestampMs);
        if (this.received.length === this.failAfterFrames) events.fail(new ProviderError(this.provider, 'socket dropped', true));
      },
      flush: () => {
        this.flushes++;
        if (this.failOnFlush) return events.fail(new ProviderError(this.provider, 'socket dropped', true));
        const n = this.received.length;
        events.push({ type: 'final', text: `${this.provider} heard ${n}`, startMs: 0, endMs: n * 20, endOfTurn: true });
      },
      close: async () => events.end(),
    };
  }
}

const frame = (i: number): AudioFrame => ({ pcm: new Int16Array(320), sampleRate: 16000, timestampMs: i * 20 });

describe('FallbackStt', () => {
  it('hands a failing stream to the next engine with the audio since the last final replayed', async () => {
    const primary = new ScriptedStt('deepgram', 8);
    const local = new ScriptedStt('local');
    const failures: string[] = [];
    const stt = new FallbackStt([primary, local], (failed) => failures.push(failed.provider));
    const stream = stt.stream({});
    const seen: SttEvent[] = [];
    const reading = (async () => {
      for await (const e of stream.events) seen.push(e);
    })();
    for (let i = 0; i < 5; i++) stream.push(frame(i));
    stream.flush(); // final from the primary: frames 0-4 are done
    await sleep(5);
    for (let i = 5; i < 12; i++) stream.push(frame(i)); // the primary dies at its 8th frame
    await sleep(5);
    stream.flush();
    await stream.close();
    await reading;
    expect(failures).toEqual(['deepgram']);
    // The local engine got the utterance in progress (frames 5-7 replayed) and everything after, once, in order.
    expect(local.received).toEqual([5, 6, 7, 8, 9, 10, 11].map((i) => i * 20));
    expect(seen.map((e) => e.type === 'final' && e.text)).toEqual(['deepgram heard 5', 'local heard 7']);
  });

  it('replays at most the last 15 s or so without a final, each frame at its own time across a gap in the line', async () => {
    const primary = new ScriptedStt('deepgram', 1000);
    const local = new ScriptedStt('local');
    const stream = new FallbackStt([primary, local]).stream({});
    const reading = (async () => {
      for await (const e of stream.events) void e;
    })();
    for (let i = 0; i < 990; i++) stream.push(frame(i)); // 19.8 s and no final
    stream.push(frame(995)); // 80 ms lost on the line, then the primary dies at its 1000th frame
    for (let i = 996; i < 1005; i++) stream.push(frame(i));
    await sleep(5);
    await stream.close();
    await reading;
    const replayed = local.received.filter((ms) => ms <= 996 * 20);
    expect(replayed.at(-1)).toBe(996 * 20);
    expect(replayed.at(-3)).toBe(989 * 20); // the gap is kept: 989 is followed by 995
    expect(replayed.at(-2)).toBe(995 * 20);
    // Whole seconds go: between 15 and 16 s of audio up to the failure is kept.
    const spanMs = local.received.at(-1)! + 20 - replayed[0]!;
    expect(spanMs).toBeGreaterThanOrEqual(15_000);
    expect(spanMs).toBeLessThan(16_100);
    expect(new Set(replayed).size).toBe(replayed.length);
  });

  it('re-sends a flush that the failed engine never answered', async () => {
    const primary = new ScriptedStt('deepgram', Infinity, true);
    const local = new ScriptedStt('local');
    const stream = new FallbackStt([primary, local]).stream({});
    const seen: string[] = [];
    const reading = (async () => {
      for await (const e of stream.events) if (e.type === 'final') seen.push(e.text);
    })();
    stream.push(frame(0));
    stream.push(frame(1));
    stream.flush(); // the primary dies instead of answering
    await sleep(5);
    await stream.close();
    await reading;
    expect(local.flushes).toBe(1);
    expect(seen).toEqual(['local heard 2']);
  });

  it('fails the stream with a ProviderError when the last engine fails too', async () => {
    const stream = new FallbackStt([new ScriptedStt('a', 1), new ScriptedStt('b', 1)]).stream({});
    stream.push(frame(0));
    stream.push(frame(1));
    const consume = async () => {
      for await (const e of stream.events) void e;
    };
    await expect(consume()).rejects.toThrow(ProviderError);
  });

  it('resamples the audio for an engine at another rate, the replay included', async () => {
    const seenRates: number[] = [];
    const samples: number[] = [];
    class EightKhz extends ScriptedStt {
      override readonly sampleRate = 8000;
      override stream(): SttStream {
        const inner = super.stream();
        return {
          ...inner,
          events: inner.events,
          push: (f) => {
            seenRates.push(f.sampleRate);
            samples.push(f.pcm.length);
            inner.push(f);
          },
        };
      }
    }
    const stt = new FallbackStt([new ScriptedStt('deepgram', 3), new EightKhz('local')]);
    expect(stt.sampleRate).toBe(16000);
    const stream = stt.stream({});
    const reading = (async () => {
      for await (const e of stream.events) void e;
    })();
    for (let i = 0; i < 10; i++) stream.push(frame(i));
    await new Promise((r) => setTimeout(r, 5));
    for (let i = 10; i < 20; i++) stream.push(frame(i));
    await stream.close();
    await reading;
    expect(new Set(seenRates)).toEqual(new Set([8000]));
    // 20 ms at 16 kHz is 320 samples, 160 at 8 kHz: what reached the local engine is half as many samples, less
    // the resampler's 2 ms lag.
    const total = samples.reduce((a, b) => a + b, 0);
    // No final came: the 10 frames before the failure are replayed, then the 10 after follow.
    expect(total).toBeGreaterThan(20 * 160 - 40);
    expect(total).toBeLessThanOrEqual(20 * 160);
  });
});
