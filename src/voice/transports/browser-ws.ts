// Browser websocket transport: a web caller's 16 kHz PCM16LE audio in binary messages (any length, re-cut into
// 20 ms frames), JSON control messages (dtmf, end), and the agent's audio paced back as binary frames with marks.
// What the browser may send is bounded by InboundAdmission: a caller breaking it is closed with 1008.
import type { RawData, WebSocket } from 'ws';
import { type AudioFrame, FRAME_MS } from '../audio.js';
import { EventQueue } from '../../lib/event-queue.js';
import type { LiveMessage } from '../../lib/live-messages.js';
import { type AdmissionLimits, InboundAdmission, POLICY_VIOLATION } from './inbound-admission.js';
import { Playout } from './playout.js';
import type { Transport } from './transport.js';
import { Listeners, OnceEvent } from '../../lib/listeners.js';

const SAMPLE_RATE = 16000;
const FRAME_SAMPLES = (SAMPLE_RATE * FRAME_MS) / 1000;
/** One message may carry at most 1 s of audio: more is refused rather than buffered. */
const MAX_MESSAGE_BYTES = SAMPLE_RATE * 2;
/** Control messages are a few dozen bytes of JSON. */
const MAX_CONTROL_BYTES = 4096;
/**
 * Caller frames waiting for the session (10 s): admission keeps the caller near real time, so this fills only if
 * the session stalls; then the newest frames are dropped rather than held.
 */
const MAX_QUEUED_FRAMES = 500;
/** Agent audio the browser has not read off the socket (about 30 s): a client that stops reading is closed. */
const MAX_UNREAD_BYTES = 1024 * 1024;
const OPEN = 1;
const CLOSED = 3;
const CLOSE_WAIT_MS = 1000;
const DIGIT = /^[0-9*#]$/;

type Json = Record<string, unknown>;

/** What a browser may send before its call's transport exists (32 s of audio): far more than any setup takes. */
const EARLY_MAX_BYTES = 1024 * 1024;

export interface BrowserTransportOptions {
  /** The wall clock, ms (performance.now by default); tests drive it by hand. */
  clock?: () => number;
  limits?: AdmissionLimits;
  /** The messages held while the call was being set up (holdEarlyMessages), replayed first and in order. */
  early?: EarlyMessages;
}

export interface EarlyMessages {
  /** When the socket opened, on the transport's clock: the stream starts then, not when the transport is made. */
  openedAt: number;
  held: { data: RawData; isBinary: boolean }[];
  /** More than EARLY_MAX_BYTES came: the rest was dropped, and the transport refuses the caller. */
  overflowed: boolean;
}

/**
 * Holds what a browser sends while its call token and call are checked: a browser starts its microphone as soon as
 * the socket opens, and a websocket message nobody listens to is lost (under load, or over a slow database, the
 * whole first seconds of the call). Bounded by EARLY_MAX_BYTES; `take()` stops holding and hands them over.
 */
export function holdEarlyMessages(socket: WebSocket, clock: () => number = () => performance.now()): { take(): EarlyMessages } {
  const early: EarlyMessages = { openedAt: clock(), held: [], overflowed: false };
  let bytes = 0;
  const hold = (data: RawData, isBinary: boolean) => {
    const size = Array.isArray(data) ? data.reduce((n, b) => n + b.length, 0) : data.byteLength;
    if (early.overflowed || bytes + size > EARLY_MAX_BYTES) {
      early.overflowed = true;
      return;
    }
    bytes += size;
    early.held.push({ data, isBinary });
  };
  socket.on('message', hold);
  return {
    take: () => {
      socket.off('message', hold);
      return early;
    },
  };
}

export class BrowserTransport implements Transport {
  readonly kind = 'browser';
  readonly sampleRate = SAMPLE_RATE;

  private readonly clock: () => number;
  private readonly startedAt: number;
  private readonly frames = new EventQueue<AudioFrame>(MAX_QUEUED_FRAMES);
  readonly admission: InboundAdmission;
  private readonly playout: Playout;
  private readonly socketClosed: Promise<void>;
  /** A message's odd last byte: the first half of a sample whose second half comes in the next message. */
  private oddByte: number | undefined;
  private partial = new Int16Array(FRAME_SAMPLES);
  private partialLength = 0;
  private samplesReceived = 0;
  private ended = false;
  private closedLocally = false;
  private readonly hangupListeners = new OnceEvent<[violation?: string]>();
  private readonly dtmfListeners = new Listeners<[digit: string]>();
  private readonly playedListeners = new Listeners<[frame: AudioFrame]>();

  constructor(
    private readonly socket: WebSocket,
    opts: BrowserTransportOptions = {},
  ) {
    this.clock = opts.clock ?? (() => performance.now());
    this.startedAt = opts.early?.openedAt ?? this.clock();
    this.admission = new InboundAdmission(SAMPLE_RATE, this.clock, opts.limits, this.startedAt);
    this.playout = new Playout(SAMPLE_RATE, (frame, playedAt) => {
      if (socket.readyState === OPEN) {
        if (socket.bufferedAmount > MAX_UNREAD_BYTES) return this.refuse('the client does not read the agent audio');
        socket.send(pcmBytes(frame.pcm), { binary: true });
      }
      const timestampMs = playedAt - this.startedAt;
      this.playedListeners.emit({ pcm: frame.pcm, sampleRate: SAMPLE_RATE, timestampMs });
    });
    this.socketClosed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    socket.on('close', () => this.hangup());
    socket.on('error', () => this.hangup());
    // What came while the call was set up, through the same admission (its clock started when the socket opened).
    for (const m of opts.early?.held ?? []) this.onMessage(m.data, m.isBinary);
    if (opts.early?.overflowed) this.refuse('audio sent faster than real time');
  }

  audio(): AsyncIterable<AudioFrame> {
    return this.frames;
  }

  send(frame: AudioFrame): void {
    this.playout.enqueue(frame);
  }

  async mark(name: string): Promise<boolean> {
    const played = await this.playout.mark(name);
    // Sent once the server-side playout reached it, so it follows the last frame of its audio.
    if (played) this.sendJson({ type: 'mark', name });
    return played;
  }

  clear(): void {
    if (this.ended) return;
    this.playout.clear();
    this.sendJson({ type: 'clear' });
  }

  /** A live message (lib/live-messages.ts) as a JSON text message, in order with the audio and marks. */
  notify(message: LiveMessage): void {
    if (this.ended) return;
    this.sendJson(message);
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

  /** ms since the transport started: the clock of onPlayed timestamps. */
  now(): number {
    return this.clock() - this.startedAt;
  }

  async close(reason: string): Promise<void> {
    this.closedLocally = true;
    this.finish();
    if (this.socket.readyState === CLOSED) return;
    this.sendJson({ type: 'end', reason });
    if (this.socket.readyState === OPEN) this.socket.close(1000);
    let timer: NodeJS.Timeout | undefined;
    const gaveUp = new Promise<boolean>((r) => (timer = setTimeout(() => r(true), CLOSE_WAIT_MS)));
    if (await Promise.race([this.socketClosed.then(() => false), gaveUp])) this.socket.terminate();
    clearTimeout(timer);
  }

  private onMessage(data: RawData, isBinary: boolean): void {
    if (this.ended) return;
    // Agent audio due by now goes first, though the loop has not reached its timers (Playout.poke).
    this.playout.poke();
    if (!this.admission.message()) return this.refuse(this.admission.violation!);
    const bytes = toBuffer(data);
    if (isBinary) return this.onAudio(bytes);
    // Every control message counts, the bad ones too: each answer is a message back.
    if (!this.admission.control()) return this.refuse(this.admission.violation!);
    if (bytes.length > MAX_CONTROL_BYTES) return this.badMessage(`control messages are at most ${MAX_CONTROL_BYTES} bytes`);
    let msg: Json | null = null;
    try {
      const parsed: unknown = JSON.parse(bytes.toString('utf8'));
      if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) msg = parsed as Json;
    } catch {
      return this.badMessage('control messages are JSON');
    }
    if (msg?.type === 'dtmf') {
      if (typeof msg.digit !== 'string' || !DIGIT.test(msg.digit)) return this.badMessage('dtmf digit must be one of 0-9, * or #');
      this.dtmfListeners.emit(msg.digit);
      return;
    }
    if (msg?.type === 'end') {
      this.flushPartial();
      return this.hangup();
    }
    this.badMessage(`unknown control message${typeof msg?.type === 'string' ? ` type ${msg.type.slice(0, 40)}` : ''}`);
  }

  private onAudio(bytes: Buffer): void {
    if (bytes.length > MAX_MESSAGE_BYTES)
      return this.badMessage(`audio messages carry at most 1 s (${MAX_MESSAGE_BYTES} bytes) of 16 kHz PCM16LE`);
    if (!bytes.length) return;
    // The bytes continue the caller's stream: with an odd byte left from the last message, sample k is stream
    // bytes 2k and 2k + 1, the first of which is that byte.
    const odd = this.oddByte === undefined ? 0 : 1;
    const total = bytes.length + odd;
    const samples = total >> 1;
    // Only what keeps the caller within the lead of the wall clock is decoded; the rest is dropped as whole
    // samples, so the stream's byte alignment is kept.
    const taken = this.admission.audio(samples);
    if (this.admission.violation) return this.refuse(this.admission.violation);
    let k = 0;
    if (odd && taken > 0) {
      this.pushSample((((bytes[0]! << 8) | this.oddByte!) << 16) >> 16);
      k = 1;
    }
    for (; k < taken; k++) this.pushSample(bytes.readInt16LE(2 * k - odd));
    this.oddByte = total % 2 ? bytes[2 * samples - odd]! : undefined;
  }

  private pushSample(sample: number): void {
    this.partial[this.partialLength++] = sample;
    if (this.partialLength < FRAME_SAMPLES) return;
    this.emit(this.partial);
    this.partial = new Int16Array(FRAME_SAMPLES);
    this.partialLength = 0;
  }

  /** The caller's last words end mid-frame: padded with silence rather than lost. */
  private flushPartial(): void {
    if (!this.partialLength) return;
    this.emit(this.partial);
    this.partial = new Int16Array(FRAME_SAMPLES);
    this.partialLength = 0;
  }

  private emit(pcm: Int16Array): void {
    // Timestamps count the audio received, so gaps in delivery do not shift the caller's clock.
    this.frames.push({ pcm, sampleRate: SAMPLE_RATE, timestampMs: (this.samplesReceived * 1000) / SAMPLE_RATE });
    // A dropped frame (the session is behind) still advances the clock: the frames after it stay in place.
    this.samplesReceived += FRAME_SAMPLES;
  }

  private badMessage(message: string): void {
    this.sendJson({ type: 'error', error: { code: 'bad_message', message } });
  }

  private hangup(violation?: string): void {
    if (this.ended) return;
    this.finish();
    if (this.closedLocally) return;
    this.hangupListeners.emit(violation);
  }

  /** The caller broke the media rules: told why, closed with 1008, and the session ends the call. */
  private refuse(violation: string): void {
    if (this.ended) return;
    this.sendJson({ type: 'error', error: { code: 'media_policy', message: violation } });
    if (this.socket.readyState === OPEN) this.socket.close(POLICY_VIOLATION, violation.slice(0, 100));
    this.hangup(violation);
  }

  private finish(): void {
    if (this.ended) return;
    this.ended = true;
    this.playout.close();
    this.frames.end();
  }

  private sendJson(msg: Json): void {
    if (this.socket.readyState === OPEN) this.socket.send(JSON.stringify(msg));
  }
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

function pcmBytes(pcm: Int16Array): Buffer {
  const out = Buffer.alloc(pcm.length * 2);
  for (let i = 0; i < pcm.length; i++) out.writeInt16LE(pcm[i]!, i * 2);
  return out;
}
