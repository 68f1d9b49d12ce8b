// Deepgram live speech-to-text over its documented websocket protocol (wss://api.deepgram.com/v1/listen): caller
// audio goes up as binary linear16 frames, control messages (KeepAlive, Finalize, CloseStream) as JSON text, and
// Results, SpeechStarted, UtteranceEnd and Metadata come back as JSON. A refused handshake, a connect timeout or a
// socket that breaks mid-stream make the event iterator throw a ProviderError, so a fallback chain can switch engines.
import WebSocket from 'ws';
import { EventQueue } from '../../lib/event-queue.js';
import { httpProviderError, ProviderError } from '../../lib/provider-error.js';
import { type AudioFrame, durationMs } from '../audio.js';
import type { STT, SttEvent, SttStream } from './stt.js';

export interface DeepgramSttOptions {
  apiKey: string;
  /** Default 'nova-3'; 'nova-2-phonecall' is tuned for 8 kHz telephone audio. */
  model?: string;
  /** Default 'en'; a stream's own language wins. */
  language?: string;
  /** 8000 for phone calls, 16000 for web. */
  sampleRate: number;
  /** Silence after speech that makes Deepgram finalize with speech_final (default 300). */
  endpointingMs?: number;
  /** Gap after the last word that yields UtteranceEnd (default 1000). */
  utteranceEndMs?: number;
  baseUrl?: string;
  connectTimeoutMs?: number;
  /** KeepAlive cadence while no audio goes out (default 4000; Deepgram closes after 10 s of nothing). 0 = never. */
  keepAliveMs?: number;
  /** How long close() waits for the last results and the server's close (default 2000). */
  closeTimeoutMs?: number;
}

/**
 * Caller audio goes up in chunks of this much (Deepgram's staff advise 20 to 250 ms per message,
 * github.com/orgs/deepgram/discussions/224): each message is a masked websocket frame and a socket write, which at
 * a message per 20 ms frame were the largest single cost of a call in bench:calls, and still a tenth of the event
 * loop at 100 ms. The end of a turn does not wait for a chunk to fill: our VAD's end of speech sends Finalize,
 * and Finalize and CloseStream send what is held first. Only interim results (and Deepgram's own endpointing,
 * which we do not wait for) see the audio up to a chunk later.
 */
const CHUNK_MS = 200;

/** Audio held while the socket opens; beyond this the oldest goes, as it would be too stale to matter. */
const MAX_PENDING_MS = 5000;

export class DeepgramStt implements STT {
  readonly provider = 'deepgram';
  readonly sampleRate: number;

  constructor(private readonly opts: DeepgramSttOptions) {
    this.sampleRate = opts.sampleRate;
  }

  stream(opts: { language?: string; signal?: AbortSignal } = {}): DeepgramSttStream {
    const o = this.opts;
    const query = new URLSearchParams({
      model: o.model ?? 'nova-3',
      language: opts.language ?? o.language ?? 'en',
      encoding: 'linear16',
      sample_rate: String(o.sampleRate),
      channels: '1',
      interim_results: 'true',
      endpointing: String(o.endpointingMs ?? 300),
      utterance_end_ms: String(o.utteranceEndMs ?? 1000),
      vad_events: 'true',
      smart_format: 'true',
    });
    return new DeepgramSttStream(`${(o.baseUrl ?? 'wss://api.deepgram.com').replace(/\/$/, '')}/v1/listen?${query}`, o, opts.signal);
  }
}

interface Outgoing {
  data: Buffer | string;
  /** Audio duration (0 for control messages) and where that audio starts in the caller's timeline. */
  ms: number;
  atMs?: number;
}

interface DeepgramMessage {
  type?: string;
  timestamp?: number;
  last_word_end?: number;
  start?: number;
  duration?: number;
  is_final?: boolean;
  speech_final?: boolean;
  channel?: { alternatives?: { transcript?: string; confidence?: number }[] };
}

export class DeepgramSttStream implements SttStream {
  /** ms of audio dropped because more than 5 s of it waited for the socket to open. */
  droppedMs = 0;
  readonly events: AsyncIterable<SttEvent> = { [Symbol.asyncIterator]: () => this.iterate() };
  private readonly ws: WebSocket;
  private readonly queue = new EventQueue<SttEvent>();
  private failure: ProviderError | undefined;
  /** Set when we ended the socket ourselves (abort, close timeout): its close code is then no failure. */
  private ended = false;
  private pending: Outgoing[] = [];
  private pendingMs = 0;
  /**
   * Audio not sent yet (less than CHUNK_MS), copied into one chunk as it comes (one array a chunk, not one per frame
   * joined at the end), and where it starts in the caller's timeline.
   */
  private held = new Int16Array(0);
  private heldSamples = 0;
  private heldAtMs = 0;
  /** Deepgram's times count from the first audio it got; this is that audio's place in the caller's timeline. */
  private baseMs: number | undefined;
  private keepAlive: NodeJS.Timeout | undefined;
  /** When audio last went out (performance.now()): KeepAlive waits for that long without any. */
  private audioSentAt = 0;
  private closing: Promise<void> | undefined;
  /** CHUNK_MS of audio at the stream's rate. */
  private readonly chunkSamples: number;

  constructor(
    url: string,
    private readonly opts: DeepgramSttOptions,
    signal?: AbortSignal,
  ) {
    this.chunkSamples = Math.ceil((opts.sampleRate * CHUNK_MS) / 1000);
    this.ws = new WebSocket(url, { headers: { Authorization: `Token ${opts.apiKey}` }, handshakeTimeout: opts.connectTimeoutMs ?? 5000 });
    // A refused upgrade carries Deepgram's reason in the body ({err_code, err_msg}) and the dg-error header.
    this.ws.on('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        let message = String(res.headers['dg-error'] ?? body).slice(0, 300);
        try {
          message = (JSON.parse(body) as { err_msg?: string }).err_msg ?? message;
        } catch {
          // not JSON: keep the header or the raw text
        }
        this.fail(httpProviderError('deepgram', res.statusCode ?? 0, message, res.headers['retry-after']));
        this.ws.terminate();
      });
    });
    this.ws.on('open', () => {
      const waiting = this.pending;
      this.pending = [];
      this.pendingMs = 0;
      for (const item of waiting) this.send(item);
      this.armKeepAlive();
    });
    this.ws.on('message', (data, isBinary) => {
      if (!isBinary) this.onMessage(String(data));
    });
    this.ws.on('error', (err) => this.fail(new ProviderError('deepgram', `connection failed: ${err.message}`, true)));
    this.ws.on('close', (code, reason) => {
      clearTimeout(this.keepAlive);
      // 1000 follows CloseStream; anything else (1011 NET-0001 idle, 1006 dropped, ...) lost the stream. 1008 means
      // Deepgram refused what we sent, which a retry would not fix.
      if (code !== 1000 && !this.ended)
        this.fail(new ProviderError('deepgram', `socket closed ${code}${reason.length ? ` ${reason}` : ''}`, code !== 1008));
      this.queue.end();
    });
    if (signal?.aborted) this.end(true);
    else signal?.addEventListener('abort', () => this.end(true), { once: true });
  }

  push(frame: AudioFrame): void {
    if (frame.sampleRate !== this.opts.sampleRate)
      throw new Error(`deepgram stream expects ${this.opts.sampleRate} Hz frames, got ${frame.sampleRate}`);
    // An empty binary frame is Deepgram's old "close stream" signal: never send one.
    if (this.closing || this.ended || this.failure || frame.pcm.length === 0) return;
    const pcm = frame.pcm;
    if (!this.heldSamples) this.heldAtMs = frame.timestampMs;
    if (this.heldSamples + pcm.length > this.held.length) {
      // A new chunk (the last one went to the socket), or a frame longer than what is left of this one.
      const grown = new Int16Array(Math.max(this.chunkSamples, this.heldSamples + pcm.length));
      grown.set(this.held.subarray(0, this.heldSamples));
      this.held = grown;
    }
    this.held.set(pcm, this.heldSamples);
    this.heldSamples += pcm.length;
    if (this.heldSamples >= this.chunkSamples) this.sendHeld();
  }

  flush(): void {
    if (this.closing) return;
    this.sendHeld();
    this.send({ data: JSON.stringify({ type: 'Finalize' }), ms: 0 });
  }

  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      if (this.ws.readyState === WebSocket.CLOSED) return resolve();
      // Deepgram answers CloseStream with the remaining Results, a Metadata message and a 1000 close.
      this.sendHeld();
      this.send({ data: JSON.stringify({ type: 'CloseStream' }), ms: 0 });
      const timer = setTimeout(() => this.end(false), this.opts.closeTimeoutMs ?? 2000);
      this.ws.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    return this.closing;
  }

  private async *iterate(): AsyncGenerator<SttEvent> {
    for await (const event of this.queue) yield event;
    if (this.failure) throw this.failure;
  }

  private sendHeld(): void {
    if (!this.heldSamples) return;
    // linear16 is little-endian, as Int16Array already is on every platform Node runs us on. The chunk is handed
    // over (the socket, or the queue while it opens, keeps it): the next audio goes into a new one.
    const data = Buffer.from(this.held.buffer, this.held.byteOffset, this.heldSamples * 2);
    this.send({ data, ms: durationMs(this.heldSamples, this.opts.sampleRate), atMs: this.heldAtMs });
    this.held = new Int16Array(0);
    this.heldSamples = 0;
  }

  private send(item: Outgoing): void {
    if (this.ws.readyState === WebSocket.CONNECTING) {
      this.pending.push(item);
      this.pendingMs += item.ms;
      while (this.pendingMs > MAX_PENDING_MS) {
        const [oldest] = this.pending.splice(
          this.pending.findIndex((p) => p.ms > 0),
          1,
        );
        this.pendingMs -= oldest!.ms;
        this.droppedMs += oldest!.ms;
      }
      return;
    }
    if (this.ws.readyState !== WebSocket.OPEN) return;
    if (item.ms > 0) {
      this.baseMs ??= item.atMs;
      this.audioSentAt = performance.now();
      if (!this.keepAlive) this.armKeepAlive();
    }
    this.ws.send(item.data);
  }

  /**
   * KeepAlive goes out only while the caller's audio has stopped: once `every` ms have passed with none. One timer
   * per stream, pushed back when it finds audio went out meanwhile (rather than a timer replaced with each chunk of
   * audio, five a second per call).
   */
  private armKeepAlive(delayMs?: number): void {
    clearTimeout(this.keepAlive);
    this.keepAlive = undefined;
    const every = this.opts.keepAliveMs ?? 4000;
    if (every <= 0 || this.ws.readyState !== WebSocket.OPEN) return;
    this.keepAlive = setTimeout(() => {
      this.keepAlive = undefined;
      const quietMs = performance.now() - this.audioSentAt;
      if (quietMs < every) return void this.armKeepAlive(every - quietMs);
      this.send({ data: JSON.stringify({ type: 'KeepAlive' }), ms: 0 });
      this.armKeepAlive();
    }, delayMs ?? every);
  }

  private onMessage(text: string): void {
    let msg: DeepgramMessage;
    try {
      msg = JSON.parse(text) as DeepgramMessage;
    } catch {
      return;
    }
    const at = (seconds = 0) => (this.baseMs ?? 0) + Math.round(seconds * 1000);
    if (msg.type === 'SpeechStarted') this.queue.push({ type: 'speech-start', atMs: at(msg.timestamp) });
    else if (msg.type === 'UtteranceEnd') this.queue.push({ type: 'speech-end', atMs: at(msg.last_word_end) });
    else if (msg.type === 'Results') {
      const best = msg.channel?.alternatives?.[0];
      const words = best?.transcript?.trim();
      const end = at((msg.start ?? 0) + (msg.duration ?? 0));
      // Empty results do come (silence, noise, a Finalize with nothing pending). An empty interim says nothing; an
      // empty final still says Deepgram is done with that audio (a fallback engine must not hear it again).
      if (!msg.is_final) {
        if (words) this.queue.push({ type: 'interim', text: words, atMs: end });
      } else
        this.queue.push({
          type: 'final',
          text: words ?? '',
          startMs: at(msg.start),
          endMs: end,
          confidence: best?.confidence,
          endOfTurn: msg.speech_final === true,
        });
    }
    // Metadata (after CloseStream) needs nothing: the server's close follows it.
  }

  private fail(err: ProviderError): void {
    if (this.failure || this.ended) return;
    this.failure = err;
    clearTimeout(this.keepAlive);
    this.queue.end();
  }

  /** Ends the stream from our side: gracefully on abort, at once when the server did not close in time. */
  private end(graceful: boolean): void {
    this.ended = true;
    clearTimeout(this.keepAlive);
    if (graceful && this.ws.readyState === WebSocket.OPEN) this.ws.close(1000);
    else this.ws.terminate();
    this.queue.end();
  }
}
