// Browser websocket transport: a web caller's 16 kHz PCM16LE audio in binary messages (any length, re-cut into
// 20 ms frames), JSON control messages (dtmf, end), and the agent's audio paced back as binary frames with marks.
import type { RawData, WebSocket } from 'ws';
import { type AudioFrame, FRAME_MS } from '../audio.js';
import { EventQueue } from '../../lib/event-queue.js';
import { Playout } from './playout.js';
import type { Transport } from './transport.js';
import { Listeners } from '../../lib/listeners.js';

const SAMPLE_RATE = 16000;
const FRAME_SAMPLES = (SAMPLE_RATE * FRAME_MS) / 1000;
/** One message may carry at most 1 s of audio: more is refused rather than buffered. */
const MAX_MESSAGE_BYTES = SAMPLE_RATE * 2;
const OPEN = 1;
const CLOSED = 3;
const CLOSE_WAIT_MS = 1000;
const DIGIT = /^[0-9*#]$/;

type Json = Record<string, unknown>;

export class BrowserTransport implements Transport {
  readonly kind = 'browser';
  readonly sampleRate = SAMPLE_RATE;

  private readonly startedAt = performance.now();
  private readonly frames = new EventQueue<AudioFrame>();
  private readonly playout: Playout;
  private readonly socketClosed: Promise<void>;
  /** A message's odd last byte: the first half of a sample whose second half comes in the next message. */
  private oddByte: number | undefined;
  private partial = new Int16Array(FRAME_SAMPLES);
  private partialLength = 0;
  private samplesReceived = 0;
  private ended = false;
  private closedLocally = false;
  private readonly hangupListeners = new Listeners<[]>();
  private readonly dtmfListeners = new Listeners<[digit: string]>();
  private readonly playedListeners = new Listeners<[frame: AudioFrame]>();

  constructor(private readonly socket: WebSocket) {
    this.playout = new Playout(SAMPLE_RATE, (frame, playedAt) => {
      if (socket.readyState === OPEN) socket.send(pcmBytes(frame.pcm), { binary: true });
      const timestampMs = playedAt - this.startedAt;
      this.playedListeners.emit({ pcm: frame.pcm, sampleRate: SAMPLE_RATE, timestampMs });
    });
    this.socketClosed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    socket.on('close', () => this.hangup());
    socket.on('error', () => this.hangup());
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

  onDtmf(listener: (digit: string) => void): void {
    this.dtmfListeners.add(listener);
  }

  onHangup(listener: () => void): void {
    this.hangupListeners.add(listener);
  }

  onPlayed(listener: (frame: AudioFrame) => void): void {
    this.playedListeners.add(listener);
  }

  /** ms since the transport started: the clock of onPlayed timestamps. */
  now(): number {
    return performance.now() - this.startedAt;
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
    const bytes = toBuffer(data);
    if (isBinary) return this.onAudio(bytes);
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
    if (bytes.length > MAX_MESSAGE_BYTES) return this.badMessage(`audio messages carry at most 1 s (${MAX_MESSAGE_BYTES} bytes) of 16 kHz PCM16LE`);
    let at = 0;
    if (this.oddByte !== undefined && bytes.length) {
      this.pushSample(((bytes[0]! << 8) | this.oddByte) << 16 >> 16);
      this.oddByte = undefined;
      at = 1;
    }
    for (; at + 1 < bytes.length; at += 2) this.pushSample(bytes.readInt16LE(at));
    if (at < bytes.length) this.oddByte = bytes[at]!;
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
    this.samplesReceived += FRAME_SAMPLES;
  }

  private badMessage(message: string): void {
    this.sendJson({ type: 'error', error: { code: 'bad_message', message } });
  }

  private hangup(): void {
    if (this.ended) return;
    this.finish();
    if (this.closedLocally) return;
    this.hangupListeners.emit();
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
