// Transport: the call's two audio directions. Caller audio comes in as frames; agent audio goes out queued and
// played in real time; marks tell when what was queued has actually been heard, and clear() drops the queue
// (barge-in). Twilio Media Streams, LiveKit rooms, browser websockets and the in-memory test transport all
// implement it.
import type { LiveMessage } from '../../lib/live-messages.js';
import type { AudioFrame } from '../audio.js';

export interface Transport {
  readonly kind: string;
  /** Rate of the caller's audio and of the audio it expects back. */
  readonly sampleRate: number;
  /** Caller audio until the caller hangs up or the transport closes. */
  audio(): AsyncIterable<AudioFrame>;
  /** Queues agent audio for playout; the transport may keep the buffer until it is played (do not reuse it). */
  send(frame: AudioFrame): void;
  /** Resolves true once everything queued before it has been played, false if clear() or close() came first. */
  mark(name: string): Promise<boolean>;
  /** Drops queued audio at once; pending marks resolve false. */
  clear(): void;
  onDtmf(listener: (digit: string) => void): void;
  /**
   * The call ended from the transport's side: the caller hung up (no reason), or the transport refused the caller
   * for breaking the media rules (audio faster than real time, a message flood: see admission.ts), with why.
   */
  onHangup(listener: (violation?: string) => void): void;
  /**
   * Agent audio as the caller hears it, in playout order (audio dropped by clear() never arrives), its
   * timestampMs on the same clock as the caller's frames (ms since the transport started). For recordings.
   */
  onPlayed(listener: (frame: AudioFrame) => void): void;
  /**
   * Tells the caller's screen what is happening (the caller's words, the agent's sentences and state, latencies:
   * lib/live-messages.ts). Only transports with a screen implement it (browser calls); a phone line has none.
   */
  notify?(message: LiveMessage): void;
  close(reason: string): Promise<void>;
  /** ms since the transport started: the clock of caller frames and of onPlayed (a recording never outgrows it). */
  now(): number;
}
