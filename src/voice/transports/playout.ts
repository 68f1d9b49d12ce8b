// Real-time playout: agent audio is queued in 20 ms frames and released to the sink at the pace it is heard,
// so clear() (barge-in) drops what the caller has not heard yet and marks resolve when audio was really played.
// Transports without their own playout feedback (in-memory, browser, LiveKit) play through this.
import { type AudioFrame, concatPcm, durationMs, FRAME_MS } from '../audio.js';
import { type Clock, realClock, type Timer } from '../clock.js';

/**
 * Queued audio is kept as the chunks it came in (whole frames each), and a 20 ms frame is cut from the head chunk
 * only when it is released: a sentence of speech is a handful of long-lived objects rather than one per frame
 * (which at hundreds of calls kept the garbage collector busy copying them).
 */
type Item = { pcm: Int16Array; next: number; timestampMs: number } | { mark: string; resolve: (played: boolean) => void };

/**
 * One pacer for every playout on a clock (the process's real clock: every playout in the process): it ticks every
 * TICK_MS, on multiples of it, and releases what each playout has due. A timer per call per frame was 10,000 timers
 * a second at 200 calls; one tick serves them all.
 * Frames stay exactly 20 ms apart: a playout's schedule has a fixed phase against the ticks, so each of its frames
 * waits the same part of a tick.
 */
const TICK_MS = 5;

class Pacer {
  private readonly playing = new Set<Playout>();
  private timer: Timer | undefined;
  /** When the scheduled tick is due, on the clock. */
  private dueAt = Infinity;

  constructor(private readonly clock: Clock) {}

  add(playout: Playout): void {
    this.playing.add(playout);
    this.timer ??= this.schedule();
  }

  /**
   * Ticks now if the tick is due. A busy event loop runs every I/O callback that is ready before it gets back to its
   * timers (at 150 calls, hundreds of caller frames, model streams and database answers): the transports call this
   * as each caller message arrives, so the agent audio goes out between them instead of after all of them.
   */
  poke(): void {
    if (this.timer === undefined || this.clock.now() < this.dueAt) return;
    this.clock.clearTimeout(this.timer);
    this.tick();
  }

  private schedule(): Timer {
    const now = this.clock.now();
    this.dueAt = Math.ceil((now + 0.5) / TICK_MS) * TICK_MS;
    return this.clock.setTimeout(() => this.tick(), this.dueAt - now);
  }

  private tick(): void {
    for (const playout of this.playing) if (!playout.release()) this.playing.delete(playout);
    this.timer = this.playing.size ? this.schedule() : undefined;
  }
}

const pacers = new WeakMap<Clock, Pacer>();
function pacerFor(clock: Clock): Pacer {
  let pacer = pacers.get(clock);
  if (!pacer) pacers.set(clock, (pacer = new Pacer(clock)));
  return pacer;
}

export class Playout {
  private queue: Item[] = [];
  /** When the frame being played ends, on the clock. */
  private playingUntil = 0;
  private carry: Int16Array = new Int16Array(0);
  private closed = false;
  private readonly frameSamples: number;

  /**
   * `leadMs`: how far ahead of its play time a frame may go to the sink. 0 (the default) releases each frame when
   * it starts playing. A sink whose peer buffers and plays the audio itself (Twilio) is given a lead, so that a
   * stall here (a garbage collection, a busy CPU) is covered by what the peer already holds instead of being heard
   * as a gap; the peer then says when audio was played (Twilio's mark echo), and this playout's own marks only say
   * that the audio before them was handed over.
   */
  constructor(
    private readonly sampleRate: number,
    private readonly sink: (frame: AudioFrame, playedAtMs: number) => void,
    private readonly leadMs = 0,
    private readonly clock: Clock = realClock,
  ) {
    this.frameSamples = (sampleRate * FRAME_MS) / 1000;
  }

  /**
   * Audio of any length; it is re-cut into 20 ms frames (a partial tail waits for more, or for a mark). The frames
   * are views of the audio given, not copies: the caller hands its buffer over and must not write to it afterwards.
   */
  enqueue(frame: AudioFrame): void {
    if (this.closed) return;
    if (frame.sampleRate !== this.sampleRate) throw new Error(`playout at ${this.sampleRate} Hz got ${frame.sampleRate} Hz audio`);
    const pcm = this.carry.length ? concatPcm([this.carry, frame.pcm]) : frame.pcm;
    const whole = pcm.length - (pcm.length % this.frameSamples);
    this.carry = pcm.slice(whole);
    if (whole) this.queue.push({ pcm: pcm.subarray(0, whole), next: 0, timestampMs: frame.timestampMs });
    this.pump();
  }

  mark(name: string): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    this.flushCarry();
    return new Promise((resolve) => {
      this.queue.push({ mark: name, resolve });
      this.pump();
    });
  }

  clear(): void {
    this.carry = new Int16Array(0);
    const dropped = this.queue;
    this.queue = [];
    for (const item of dropped) if ('mark' in item) item.resolve(false);
  }

  close(): void {
    this.clear();
    this.closed = true;
  }

  /** Runs the pacer's tick if it is due (see Pacer.poke): for a transport's hot path, such as each caller frame. */
  poke(): void {
    pacers.get(this.clock)?.poke();
  }

  /** Audio queued and not yet played, in ms. */
  get queuedMs(): number {
    return this.queue.reduce((ms, item) => ms + ('pcm' in item ? durationMs(item.pcm.length - item.next, this.sampleRate) : 0), 0);
  }

  private flushCarry(): void {
    if (!this.carry.length) return;
    // The tail of an utterance is padded to a whole frame so it is played before the mark.
    const padded = new Int16Array(this.frameSamples);
    padded.set(this.carry);
    this.queue.push({ pcm: padded, next: 0, timestampMs: 0 });
    this.carry = new Int16Array(0);
  }

  /** Sends what is due now; the clock calls it on each tick while it returns true (something is still queued). */
  release(): boolean {
    if (this.closed) return false;
    const now = this.clock.now();
    // Frames are released back to back on a fixed schedule (timer lateness is absorbed); after an underrun of
    // more than a frame (nothing was queued) the schedule restarts from now.
    if (this.playingUntil < now - FRAME_MS) this.playingUntil = now;
    // What may go now: frames starting up to the lead ahead (the clock read once; the sink takes no time of its own).
    const due = now + this.leadMs + 1;
    while (this.queue.length) {
      const next = this.queue[0]!;
      if ('mark' in next) {
        // A mark is reached when the audio before it has finished playing (or, with a lead, has been handed over).
        if (this.playingUntil > due) break;
        this.queue.shift();
        next.resolve(true);
        continue;
      }
      if (this.playingUntil > due) break;
      const at = next.next;
      next.next += this.frameSamples;
      if (next.next >= next.pcm.length) this.queue.shift();
      const frame = {
        pcm: next.pcm.subarray(at, at + this.frameSamples),
        sampleRate: this.sampleRate,
        timestampMs: next.timestampMs + durationMs(at, this.sampleRate),
      };
      this.sink(frame, this.playingUntil);
      this.playingUntil += FRAME_MS;
    }
    return this.queue.length > 0;
  }

  /** What is due goes at once (the first frame of an utterance without waiting for a tick); the rest on the clock. */
  private pump(): void {
    if (this.release()) pacerFor(this.clock).add(this);
  }
}
