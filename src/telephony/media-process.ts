// The service's side of its media process (media-child.ts): Twilio media websockets are handed over at the upgrade
// (the socket itself, Node's documented subprocess.send(message, socket)), and each stream comes back as a
// RemoteTransport, a Transport like any other to the call's session. Why: pacing 150 calls' audio on the event loop
// that also runs their turns (model streams, TTS, database round trips, a large heap's garbage collection) sent
// frames late once the core was busy, while a loop that only paces keeps time on the same core (README, capacity).
// Authorization stays here: the media process forwards each stream's `start` and waits for the answer.
import { type ChildProcess, fork } from 'node:child_process';
import type { Socket } from 'node:net';
import type { FastifyBaseLogger } from 'fastify';
import type { AudioFrame } from '../voice/audio.js';
import { type Recording, type RecordsItsAudio, recoverSpooledRecording } from '../voice/recording.js';
import type { Transport } from '../voice/transports/transport.js';
import type { TwilioStart } from '../voice/transports/twilio-media-stream.js';
import { EventQueue } from '../lib/event-queue.js';
import { Listeners, OnceEvent } from '../lib/listeners.js';
import { type Batch, Batcher, type FromMedia, type ToMedia, type Upgrade } from './media-link.js';

const SAMPLE_RATE = 8000;
/** Caller frames waiting for the session (10 s), as TwilioMediaStreamTransport keeps them. */
const MAX_QUEUED_FRAMES = 500;
/** How long close() waits for the media process to say the socket is closed (its own wait is 1 s). */
const CLOSE_WAIT_MS = 3000;
/**
 * After the media process failed to start (it exited before it was ready: a broken install, no memory), streams stay
 * in the service's own process this long before it is tried again, so that calls go on being answered meanwhile.
 */
const RETRY_START_AFTER_MS = 60_000;
/** How long stop() waits for the media process to exit on its own. */
const STOP_WAIT_MS = 2000;

export interface MediaProcessOptions {
  log: FastifyBaseLogger;
  /** The child's entry (media-child.mjs next to this file; tests give another). */
  entry?: URL;
  /** Each frame gap the media process measured (OperatorMetrics.frameGap). */
  onFrameGap?: (ms: number) => void;
}

/** The request line and headers of an upgrade, as the media process's websocket server needs them. */
export interface UpgradeRequest {
  method?: string;
  url?: string;
  headers: Record<string, string | string[] | undefined>;
}

interface Pending {
  authorize(start: TwilioStart): Promise<boolean>;
  resolve(transport: RemoteTransport | null): void;
}

export class MediaProcess {
  private child: ChildProcess | undefined;
  private ready = false;
  /** Hand-overs waiting for the process to be ready (a message sent before its listener exists is lost). */
  private queued: (() => void)[] = [];
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly transports = new Map<number, RemoteTransport>();
  /** Recordings asked for (`record-end` sent) until the media process answers; undefined: it died first. */
  private readonly recordings = new Map<number, (recording: Recording | Error | undefined) => void>();
  private readonly out = new Batcher<ToMedia>((batch) => {
    if (this.child?.connected) this.child.send(batch);
  });
  private stopped = false;
  /** Streams the media process has carried (accepted) since the service started. */
  accepted = 0;
  /** When the media process last failed to start (performance.now()). */
  private failedAt = -Infinity;

  constructor(private readonly opts: MediaProcessOptions) {}

  /**
   * Hands an upgrade's socket to the media process. Resolves the stream's transport once its `start` was authorized
   * and the stream runs; null when it never did (refused, timed out, gone). The socket is this process's no more.
   */
  accept(
    req: UpgradeRequest,
    socket: Socket,
    head: Buffer,
    authorize: (start: TwilioStart) => Promise<boolean>,
  ): Promise<RemoteTransport | null> {
    if (this.stopped) {
      socket.destroy();
      return Promise.resolve(null);
    }
    const id = this.nextId++;
    // Node goes on reading a socket it is sending until the child has acknowledged it, and drops what it reads then
    // (the handle's read callback is emptied at once): a peer that speaks as soon as the child's handshake answers
    // lost its first messages (`connected`, `start`) whenever this loop was slow to take the acknowledgement. The
    // server reads no more from it here; whatever it read already goes along with the upgrade's first bytes.
    // (Read first: a read can start the handle reading again.)
    const early = socket.readableLength ? (socket.read() as Buffer | null) : null;
    (socket as unknown as { _handle?: { readStop?(): number } })._handle?.readStop?.();
    const first = early ? Buffer.concat([head, early]) : head;
    const message: Upgrade = { k: 'upgrade', id, method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, head: first };
    return new Promise((resolve) => {
      this.pending.set(id, { authorize, resolve });
      const send = () => {
        const child = this.child;
        if (this.stopped || !child?.connected) return this.gone(id, socket);
        // Not counted as one of the server's connections kept in the child: Node would then have server.close() ask
        // the child about them, and wait forever once it has died. This process's part of the socket is closed once
        // sent, which the server counts as the connection gone.
        (socket as { server?: unknown }).server = null;
        child.send(message, socket, (err) => (err ? this.gone(id, socket) : socket.destroy()));
      };
      this.start();
      if (this.ready) send();
      else this.queued.push(send);
    });
  }

  /**
   * Whether streams should be handed over: false once stopped, and for a while after the process failed to start
   * (the service then carries them itself, as with MEDIA_PROCESS=false).
   */
  get available(): boolean {
    return !this.stopped && performance.now() - this.failedAt >= RETRY_START_AFTER_MS;
  }

  /** The media process's pid, while it runs. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Stops the media process (its streams end; the service is stopping). */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const send of this.queued.splice(0)) send();
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    // It exits once the channel closes (media-child.mjs); killed if that takes long.
    child.disconnect();
    const timer = setTimeout(() => child.kill(), STOP_WAIT_MS);
    await exited;
    clearTimeout(timer);
  }

  /** @internal RemoteTransport's way out. */
  post(item: ToMedia, pcm?: Int16Array): void {
    if (pcm) this.out.audio(item as ToMedia & { at: number; n: number }, pcm);
    else this.out.add(item);
  }

  /**
   * @internal The recording of stream `id` (RemoteTransport.recordAudio), finished by the media process; if the
   * process that carried it is gone (`gone`, or none runs now), what it had written of `file`, recovered as a stopped
   * service's spool file is. (A media process started since does not know the stream.)
   */
  async finishRecording(id: number, file: string, gone: boolean): Promise<Recording> {
    const answer = await new Promise<Recording | Error | undefined>((resolve) => {
      if (gone || !this.child?.connected) return resolve(undefined);
      this.recordings.set(id, resolve);
      this.post({ k: 'record-end', id });
    });
    if (answer instanceof Error) throw answer;
    if (answer) return answer;
    const recovered = await recoverSpooledRecording(file).catch(() => null);
    if (!recovered) throw new Error('the media process stopped before it had written any of the recording');
    return recovered;
  }

  /** @internal */
  forget(id: number): void {
    this.transports.delete(id);
  }

  private gone(id: number, socket: Socket): void {
    socket.destroy();
    const p = this.pending.get(id);
    this.pending.delete(id);
    p?.resolve(null);
  }

  private start(): void {
    if (this.child || this.stopped) return;
    const child = fork(this.opts.entry ?? new URL('./media-child.mjs', import.meta.url), [], {
      serialization: 'advanced',
      // Not the service's flags (a test runner's, an inspector's): the entry loads what it needs itself.
      execArgv: [],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.child = child;
    this.ready = false;
    child.on('message', (message: unknown) => this.onMessage(message as Batch<FromMedia> | { k: 'ready' }));
    child.on('error', (err) => this.opts.log.error({ err }, 'media process error'));
    child.on('exit', (code, signal) => {
      if (!this.ready && !this.stopped) {
        this.failedAt = performance.now();
        this.opts.log.error(
          { code, signal },
          `media process failed to start: Twilio streams run in the service's process for the next ${RETRY_START_AFTER_MS / 1000} s`,
        );
      } else if (!this.stopped) {
        this.opts.log.error({ code, signal }, 'media process exited: its calls are over; the next call starts it again');
      }
      this.child = undefined;
      this.ready = false;
      for (const send of this.queued.splice(0)) send();
      for (const [, p] of this.pending) p.resolve(null);
      this.pending.clear();
      for (const t of [...this.transports.values()]) t.gone();
      this.transports.clear();
      for (const [, answer] of this.recordings) answer(undefined);
      this.recordings.clear();
    });
  }

  private onMessage(message: Batch<FromMedia> | { k: 'ready' }): void {
    if ('k' in message) {
      this.ready = true;
      for (const send of this.queued.splice(0)) send();
      return;
    }
    const { pcm } = message;
    for (const item of message.items) {
      switch (item.k) {
        case 'gap':
          this.opts.onFrameGap?.(item.ms);
          break;
        case 'start': {
          const p = this.pending.get(item.id);
          if (!p) break;
          const id = item.id;
          p.authorize(item.start).then(
            (ok) => this.out.add({ k: 'auth', id, ok }),
            (err: unknown) => {
              this.opts.log.error({ err }, 'media stream could not be authorized');
              this.out.add({ k: 'auth', id, ok: false, error: true });
            },
          );
          break;
        }
        case 'accepted': {
          const p = this.pending.get(item.id);
          this.pending.delete(item.id);
          if (!p) break;
          this.accepted++;
          const transport = new RemoteTransport(item.id, item.startedAt, this);
          this.transports.set(item.id, transport);
          p.resolve(transport);
          break;
        }
        case 'gone': {
          const p = this.pending.get(item.id);
          this.pending.delete(item.id);
          p?.resolve(null);
          break;
        }
        case 'recorded': {
          const answer = this.recordings.get(item.id);
          this.recordings.delete(item.id);
          answer?.(item.recording ?? new Error(item.error ?? 'the recording could not be written'));
          break;
        }
        default:
          this.transports.get(item.id)?.receive(item, pcm);
      }
    }
  }
}

/**
 * A Twilio media stream the media process carries, as this process's sessions see it. Its recording is made there
 * (RecordsItsAudio): the caller's audio and the agent's, as heard, are both in that process already.
 */
export class RemoteTransport implements Transport, RecordsItsAudio {
  readonly kind = 'twilio';
  readonly sampleRate = SAMPLE_RATE;
  private readonly frames = new EventQueue<AudioFrame>(MAX_QUEUED_FRAMES);
  private readonly marks = new Map<number, (played: boolean) => void>();
  private nextMark = 1;
  private ended = false;
  private playedOn = false;
  private closing: Promise<void> | undefined;
  /** Answers close() once the media process has closed the socket. */
  private closed: (() => void) | undefined;
  private processGone = false;
  private readonly hangupListeners = new OnceEvent<[violation?: string]>();
  private readonly dtmfListeners = new Listeners<[digit: string]>();
  private readonly playedListeners = new Listeners<[frame: AudioFrame]>();

  constructor(
    private readonly id: number,
    /** ms since the epoch when the stream started (the media process's clock of its frames). */
    private readonly startedAt: number,
    private readonly media: MediaProcess,
  ) {}

  audio(): AsyncIterable<AudioFrame> {
    return this.frames;
  }

  send(frame: AudioFrame): void {
    if (!this.ended) this.media.post({ k: 'send', id: this.id, at: 0, n: 0, ts: frame.timestampMs }, frame.pcm);
  }

  mark(name: string): Promise<boolean> {
    if (this.ended) return Promise.resolve(false);
    const mark = this.nextMark++;
    return new Promise((resolve) => {
      this.marks.set(mark, resolve);
      this.media.post({ k: 'mark', id: this.id, mark, name });
    });
  }

  clear(): void {
    if (this.ended) return;
    // Pending marks answer false now, as the transport's own clear() does; the media process's answers for them
    // come later and find nothing.
    this.answerMarks(false);
    this.media.post({ k: 'clear', id: this.id });
  }

  onDtmf(listener: (digit: string) => void): void {
    this.dtmfListeners.add(listener);
  }

  onHangup(listener: (violation?: string) => void): void {
    this.hangupListeners.add(listener);
  }

  onPlayed(listener: (frame: AudioFrame) => void): void {
    this.playedListeners.add(listener);
    if (this.playedOn) return;
    this.playedOn = true;
    this.media.post({ k: 'played-on', id: this.id });
  }

  recordAudio(opts: { file: string; offsetMs: number }): { finish(): Promise<Recording> } {
    this.media.post({ k: 'record', id: this.id, file: opts.file, offsetMs: opts.offsetMs });
    let finished: Promise<Recording> | undefined;
    return { finish: () => (finished ??= this.media.finishRecording(this.id, opts.file, this.processGone)) };
  }

  close(reason: string): Promise<void> {
    this.closing ??= (async () => {
      this.finish();
      if (this.processGone) return;
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.closed = resolve;
        timer = setTimeout(resolve, CLOSE_WAIT_MS);
        this.media.post({ k: 'close', id: this.id, reason });
      });
      clearTimeout(timer);
      this.media.forget(this.id);
    })();
    return this.closing;
  }

  now(): number {
    return performance.timeOrigin + performance.now() - this.startedAt;
  }

  /** @internal What the media process said about this stream. */
  receive(item: FromMedia, pcm: Int16Array): void {
    switch (item.k) {
      case 'audio':
        if (!this.ended) this.frames.push({ pcm: pcm.subarray(item.at, item.at + item.n), sampleRate: SAMPLE_RATE, timestampMs: item.ts });
        return;
      case 'played':
        return this.playedListeners.emit({ pcm: pcm.subarray(item.at, item.at + item.n), sampleRate: SAMPLE_RATE, timestampMs: item.ts });
      case 'mark': {
        const resolve = this.marks.get(item.mark);
        this.marks.delete(item.mark);
        return resolve?.(item.played);
      }
      case 'dtmf':
        return this.dtmfListeners.emit(item.digit);
      case 'hangup':
        return this.hangUp(item.violation);
      case 'closed':
        return this.closed?.();
    }
  }

  /** @internal The media process stopped: the call's audio is gone with it. */
  gone(): void {
    this.processGone = true;
    this.hangUp();
    this.closed?.();
  }

  private hangUp(violation?: string): void {
    if (this.ended) return;
    this.finish();
    this.hangupListeners.emit(violation);
  }

  private finish(): void {
    if (this.ended) return;
    this.ended = true;
    this.answerMarks(false);
    this.frames.end();
  }

  private answerMarks(played: boolean): void {
    for (const resolve of this.marks.values()) resolve(played);
    this.marks.clear();
  }
}
