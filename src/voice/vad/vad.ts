// VAD: frames in, speech-start / speech-end out. An engine only says how likely a frame is speech
// (`confidence`); the hysteresis around it (how long speech or silence must last) is shared here.
import type { AudioFrame } from '../audio.js';

export type VadEvent = 'speech-start' | 'speech-end';

export interface VAD {
  /** Feed one frame; returns an event when the state changes. */
  push(frame: AudioFrame): VadEvent | null;
  /** The state after hysteresis: speech started and has not ended. */
  readonly speaking: boolean;
  /** Whether the last frame itself was speech (no hysteresis): speech is going on right now. */
  readonly voiced: boolean;
  reset(): void;
}

export interface VadOptions {
  /** Probability above which a frame counts as speech. */
  threshold: number;
  /** Speech must last this long before speech-start (short clicks and noises are ignored). */
  minSpeechMs: number;
  /** Silence must last this long before speech-end. */
  minSilenceMs: number;
}

export abstract class ThresholdVad implements VAD {
  speaking = false;
  voiced = false;
  private runMs = 0;

  constructor(protected readonly options: VadOptions) {}

  /** Probability (0..1) that the frame is speech. */
  protected abstract confidence(frame: AudioFrame): number;

  push(frame: AudioFrame): VadEvent | null {
    const ms = (frame.pcm.length * 1000) / frame.sampleRate;
    const isSpeech = this.confidence(frame) >= this.options.threshold;
    this.voiced = isSpeech;
    if (isSpeech === this.speaking) {
      this.runMs = 0;
      return null;
    }
    this.runMs += ms;
    if (!this.speaking && this.runMs >= this.options.minSpeechMs) {
      this.speaking = true;
      this.runMs = 0;
      return 'speech-start';
    }
    if (this.speaking && this.runMs >= this.options.minSilenceMs) {
      this.speaking = false;
      this.runMs = 0;
      return 'speech-end';
    }
    return null;
  }

  reset(): void {
    this.speaking = false;
    this.voiced = false;
    this.runMs = 0;
  }
}
