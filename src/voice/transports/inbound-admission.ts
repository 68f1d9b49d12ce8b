// What a caller may push into a call, shared by every transport: audio no faster than real time (a small lead
// allowed, the excess dropped, a flood refused) and messages at a bounded rate. Without it one caller sending
// audio as fast as the socket allows made the process hold gigabytes and record hours from seconds of wall time.
import { durationMs } from '../audio.js';

export interface AdmissionLimits {
  /**
   * How far the caller's audio may run ahead of the wall clock since the stream started. Audio comes in bursts
   * (network jitter, a browser sending what it buffered), and a sound card's clock runs a little fast against
   * ours; beyond this the audio is dropped.
   */
  leadMs: number;
  /**
   * Dropped audio fills a bucket that empties at the wall clock's rate; past this the caller is flooding us
   * (more than twice real time, sustained) and the call is closed. A drifting sound card (0.1% fast) never gets
   * near it; 60,000 media messages a second reach it within milliseconds.
   */
  floodMs: number;
  /** Messages of any kind, per second on average, with a burst for a backlog after a network stall. */
  messagesPerSecond: number;
  messageBurst: number;
  /** Control messages (keypad digits, unknown or malformed ones), which each cost a database write or more. */
  controlPerSecond: number;
  controlBurst: number;
}

/**
 * Twilio sends 50 media messages a second; a browser may send one per audio-worklet block (up to ~375 a second);
 * a person presses a few keys a second at most.
 */
export const DEFAULT_ADMISSION: AdmissionLimits = {
  leadMs: 1500,
  floodMs: 5000,
  messagesPerSecond: 500,
  messageBurst: 2500,
  controlPerSecond: 10,
  controlBurst: 40,
};

/** The close code a caller breaking these rules gets (RFC 6455: policy violation). */
export const POLICY_VIOLATION = 1008;

/** A token bucket: `burst` at most, refilled at `perSecond`, on the injected clock. */
class Bucket {
  private tokens: number;
  private at: number;

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.at = now;
  }

  take(now: number): boolean {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) * this.perSecond) / 1000);
    this.at = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/**
 * One call's admission. `now` is the transport's clock (ms, any origin: it is read once at construction as the
 * stream's start). Once `violation` is set the transport closes the call with POLICY_VIOLATION.
 */
export class InboundAdmission {
  /** Why the caller is refused, once it is. */
  violation: string | undefined;
  /** Caller audio dropped for running ahead, ms. */
  droppedMs = 0;
  private readonly startedAt: number;
  private admittedSamples = 0;
  /** Dropped ms not yet drained by the wall clock (see AdmissionLimits.floodMs). */
  private excessMs = 0;
  private excessAt: number;
  private readonly messages: Bucket;
  private readonly controls: Bucket;

  constructor(
    private readonly sampleRate: number,
    private readonly now: () => number,
    private readonly limits: AdmissionLimits = DEFAULT_ADMISSION,
    /** When the stream started, on `now`'s clock (by default: now). */
    startedAt = now(),
  ) {
    this.startedAt = startedAt;
    this.excessAt = this.startedAt;
    this.messages = new Bucket(limits.messagesPerSecond, limits.messageBurst, this.startedAt);
    this.controls = new Bucket(limits.controlPerSecond, limits.controlBurst, this.startedAt);
  }

  /** ms since the stream started, on the admission's clock. */
  elapsedMs(): number {
    return this.now() - this.startedAt;
  }

  /** The latest a caller frame may be stamped (ms since start): what the wall clock allows, lead included. */
  latestMs(): number {
    return this.elapsedMs() + this.limits.leadMs;
  }

  /** Counts one message of any kind; false (and a violation) past the rate. */
  message(): boolean {
    if (this.violation) return false;
    if (this.messages.take(this.now())) return true;
    this.violation = `more than ${this.limits.messagesPerSecond} messages a second`;
    return false;
  }

  /** Counts one control message; false (and a violation) past the rate. */
  control(): boolean {
    if (this.violation) return false;
    if (this.controls.take(this.now())) return true;
    this.violation = `more than ${this.limits.controlPerSecond} control messages a second`;
    return false;
  }

  /**
   * How many of `samples` new samples of caller audio are taken (the first ones; the rest are dropped): as many
   * as keep the audio within `leadMs` of the wall clock. 0 once refused.
   */
  audio(samples: number): number {
    if (this.violation) return 0;
    const elapsed = this.elapsedMs();
    const allowed = Math.floor(((elapsed + this.limits.leadMs) * this.sampleRate) / 1000);
    const taken = Math.max(0, Math.min(samples, allowed - this.admittedSamples));
    this.admittedSamples += taken;
    if (taken === samples) return taken;
    const dropped = durationMs(samples - taken, this.sampleRate);
    this.droppedMs += dropped;
    this.excessMs = Math.max(0, this.excessMs - (elapsed - (this.excessAt - this.startedAt))) + dropped;
    this.excessAt = this.startedAt + elapsed;
    if (this.excessMs > this.limits.floodMs) this.violation = 'audio sent faster than real time';
    return taken;
  }
}
