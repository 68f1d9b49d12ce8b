// In-memory transport: a simulated caller for tests, benchmarks and the simulator. Like a phone line it
// delivers a frame every 20 ms, in real time, whether the caller speaks or not (quiet line noise otherwise);
// what the agent sends is played through Playout, and what the caller "heard" is kept with its play time.
// Both run on a Clock: the real one by default, a ManualClock in virtual-time tests.
import { type AudioFrame, durationMs, FRAME_MS } from '../audio.js';
import { type Clock, realClock, type Timer } from '../clock.js';
import { Playout } from './playout.js';
import type { Transport } from './transport.js';
import { Listeners, OnceEvent } from '../../lib/listeners.js';
import type { LiveMessage } from '../../lib/live-messages.js';

export interface HeardFrame {
  pcm: Int16Array;
  /** ms since the transport started. */
  atMs: number;
}

export class MemoryTransport implements Transport {
  readonly kind = 'memory';
  /** Agent audio in the order it was played. */
  readonly heard: HeardFrame[] = [];
  /** When (ms since start) clear() was called: barge-in reactions. */
  readonly clears: number[] = [];
  closedReason: string | undefined;
  /** The live messages the caller's screen got (notify), with when (ms since start). */
  readonly notified: { atMs: number; message: LiveMessage }[] = [];

  private readonly started: number;
  private readonly playout: Playout;
  private readonly frameSamples: number;
  private pending: Int16Array[] = [];
  private queue: AudioFrame[] = [];
  private waiting: ((r: IteratorResult<AudioFrame>) => void) | undefined;
  private ticker: Timer | undefined;
  private sent = 0;
  private ended = false;
  /** Like the real transports: a session that subscribes after the caller hung up still hears it. */
  private readonly hangupListeners = new OnceEvent<[violation?: string]>();
  private readonly dtmfListeners = new Listeners<[digit: string]>();
  private readonly playedListeners = new Listeners<[frame: AudioFrame]>();

  constructor(
    readonly sampleRate: number,
    private readonly noiseAmplitude = 20,
    private readonly clock: Clock = realClock,
  ) {
    this.started = clock.now();
    this.frameSamples = (sampleRate * FRAME_MS) / 1000;
    this.playout = new Playout(
      sampleRate,
      (frame, at) => {
        const atMs = at - this.started;
        this.heard.push({ pcm: frame.pcm, atMs });
        this.playedListeners.emit({ pcm: frame.pcm, sampleRate, timestampMs: atMs });
      },
      0,
      clock,
    );
    this.tick();
  }

  /** ms since the transport started: the clock of every frame timestamp. */
  now(): number {
    return this.clock.now() - this.started;
  }

  /** One frame per 20 ms of the clock, catching up if the event loop was late (a real line does not pause). */
  private tick(): void {
    const due = Math.floor(this.now() / FRAME_MS);
    while (this.sent < due) this.emit();
    // Checked twice a frame on the real clock (timers run late); exactly when the next frame is due on a manual one.
    this.ticker = this.clock.setTimeout(
      () => this.tick(),
      this.clock === realClock ? FRAME_MS / 2 : (this.sent + 1) * FRAME_MS - this.now(),
    );
  }

  // ---- the caller's side ----

  /** Queues caller speech; it goes out over the following frames. Resolves when it has all been sent. */
  say(pcm: Int16Array): Promise<void> {
    this.pending.push(pcm);
    const endsAt = this.started + (this.sent + Math.ceil(this.pendingSamples() / this.frameSamples)) * FRAME_MS;
    return new Promise((r) => this.clock.setTimeout(() => r(), Math.max(0, endsAt - this.clock.now()) + FRAME_MS));
  }

  pressDigit(digit: string): void {
    this.dtmfListeners.emit(digit);
  }

  /** The caller hangs up; with a violation, the line refused the caller as a real transport does (a flood). */
  hangup(violation?: string): void {
    if (this.ended) return;
    this.hangupListeners.emit(violation);
    this.finish(violation ?? 'caller hung up');
  }

  /** Agent audio heard between two times (ms since start), in ms. */
  heardMs(fromMs = 0, toMs = Infinity): number {
    return this.heard.filter((f) => f.atMs >= fromMs && f.atMs < toMs).reduce((ms, f) => ms + durationMs(f.pcm.length, this.sampleRate), 0);
  }

  // ---- Transport ----

  audio(): AsyncIterable<AudioFrame> {
    return {
      [Symbol.asyncIterator]: () => ({
        next: () => {
          const frame = this.queue.shift();
          if (frame) return Promise.resolve({ value: frame, done: false });
          if (this.ended) return Promise.resolve({ value: undefined, done: true });
          return new Promise((resolve) => (this.waiting = resolve));
        },
      }),
    };
  }

  send(frame: AudioFrame): void {
    this.playout.enqueue(frame);
  }

  mark(name: string): Promise<boolean> {
    return this.playout.mark(name);
  }

  clear(): void {
    this.clears.push(this.now());
    this.playout.clear();
  }

  notify(message: LiveMessage): void {
    if (!this.ended) this.notified.push({ atMs: this.now(), message });
  }

  onDtmf(listener: (digit: string) => void): void {
    this.dtmfListeners.add(listener);
  }

  onHangup(listener: (violation?: string) => void): void {
    this.hangupListeners.add(listener);
  }

  onPlayed(listener: (frame: AudioFrame) => void): void {
    this.playedListeners.add(listener);
  }

  async close(reason: string): Promise<void> {
    this.finish(reason);
  }

  private finish(reason: string): void {
    if (this.ended) return;
    this.ended = true;
    this.closedReason = reason;
    this.clock.clearTimeout(this.ticker);
    this.playout.close();
    this.waiting?.({ value: undefined, done: true });
    this.waiting = undefined;
  }

  private pendingSamples(): number {
    return this.pending.reduce((n, p) => n + p.length, 0);
  }

  private emit(): void {
    const pcm = new Int16Array(this.frameSamples);
    let filled = 0;
    while (filled < pcm.length && this.pending.length) {
      const head = this.pending[0]!;
      const take = Math.min(head.length, pcm.length - filled);
      pcm.set(head.subarray(0, take), filled);
      filled += take;
      if (take === head.length) this.pending.shift();
      else this.pending[0] = head.subarray(take);
    }
    for (let i = filled; i < pcm.length; i++) pcm[i] = Math.round((Math.random() * 2 - 1) * this.noiseAmplitude);
    const frame = { pcm, sampleRate: this.sampleRate, timestampMs: this.sent * FRAME_MS };
    this.sent++;
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = undefined;
      w({ value: frame, done: false });
    } else {
      this.queue.push(frame);
    }
  }
}
