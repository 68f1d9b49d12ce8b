// Twilio Media Streams transport: one bidirectional <Connect><Stream> websocket as a Transport (the handshake and
// token check, caller mu-law frames in, agent audio paced out as media messages, marks echoed by Twilio, clear).
// What the peer may send is bounded by InboundAdmission (whoever holds a token can speak this protocol, not only
// Twilio): a peer breaking it is closed with 1008.
import type { RawData, WebSocket } from 'ws';
import {
  type AudioFrame,
  FRAME_MS,
  muLawBase64Into,
  muLawBase64Length,
  muLawDecode,
  muLawDecodeBase64,
  PcmArena,
  strictBase64Length,
} from '../audio.js';
import { EventQueue } from '../../lib/event-queue.js';
import { type AdmissionLimits, InboundAdmission, POLICY_VIOLATION } from './inbound-admission.js';
import { Playout } from './playout.js';
import type { Clock } from '../clock.js';
import type { Transport } from './transport.js';
import { Listeners, OnceEvent } from '../../lib/listeners.js';

const SAMPLE_RATE = 8000;
const OPEN = 1;
const CLOSED = 3;
const DEFAULT_START_TIMEOUT_MS = 10_000;
/** Twilio sends `connected`, then `start`: a peer sending much more before it is not Twilio. */
const MAX_MESSAGES_BEFORE_START = 20;
/** How long close() waits for the closing handshake before dropping the connection. */
const CLOSE_WAIT_MS = 1000;
/**
 * Agent audio goes to Twilio up to this far ahead of its play time. Twilio queues media and plays it in order,
 * so the caller hears an unbroken voice through a stall of the service or the network shorter than this, where
 * audio sent exactly on time would have a hole in it. It costs nothing at barge-in (clear empties Twilio's queue)
 * and adds no delay (the first frame of an answer goes at once either way).
 */
const DEFAULT_LEAD_MS = 200;
/** Caller frames waiting for the session (10 s); past it the newest are dropped (see EventQueue). */
const MAX_QUEUED_FRAMES = 500;
/** Media messages carry 20 ms; a payload bigger than a second of mu-law is not Twilio's. */
const MAX_PAYLOAD_BYTES = SAMPLE_RATE;
/** Marks sent and not echoed: one per sentence; a peer that never echoes them must not make us hold thousands. */
const MAX_MARKS_IN_FLIGHT = 1000;
/** Agent audio the peer has not read off the socket (about a minute of media messages). */
const MAX_UNREAD_BYTES = 2 * 1024 * 1024;
/** The longest base64 payload a media message may carry (MAX_PAYLOAD_BYTES of mu-law). */
const MAX_PAYLOAD_CHARS = (MAX_PAYLOAD_BYTES * 4) / 3 + 4;
/** Media messages go out as text frames built as bytes (see sendFrame). */
const TEXT = { binary: false } as const;
const MEDIA_SUFFIX = Buffer.from('"}}');

/** What the `start` message says about the stream. */
export interface TwilioStart {
  streamSid: string;
  callSid: string;
  accountSid: string;
  customParameters: Record<string, string>;
  mediaFormat: { encoding: string; sampleRate: number; channels: number };
  tracks: string[];
}

export interface TwilioAcceptOptions {
  /** Checks the stream, normally `start.customParameters.token`; false closes the socket with 1008. */
  authorize(start: TwilioStart): Promise<boolean>;
  /** How long to wait for `start` after the socket opened. */
  startTimeoutMs?: number;
  /** How far ahead of its play time agent audio is sent (default DEFAULT_LEAD_MS; 0 sends each frame as it plays). */
  leadMs?: number;
  /** The wall clock, ms (performance.now by default); tests drive it by hand. */
  clock?: () => number;
  /**
   * The clock the agent audio is paced on (realClock by default). Tests pass a ManualClock (and its now() as
   * `clock`) so pacing, lead and stalls are checked in virtual time, which a busy machine cannot disturb.
   */
  pacing?: Clock;
  limits?: AdmissionLimits;
  /**
   * Told the time between two media messages of one utterance as they are sent (ms, on `clock`): 20 when the
   * pacing keeps time, more when the event loop ran late (the operator's metric of how busy an instance is).
   */
  onFrameGap?: (ms: number) => void;
}

type Json = Record<string, unknown>;

/** A mark handed to Twilio and not echoed yet; `resolve` is null once clear() or close() answered it. */
interface InFlightMark {
  name: string;
  resolve: ((played: boolean) => void) | null;
}

export class TwilioMediaStreamTransport implements Transport {
  readonly kind = 'twilio';
  readonly sampleRate = SAMPLE_RATE;
  readonly streamSid: string;
  /** Messages that were not JSON, binary, or of an unknown shape: ignored, counted for diagnostics. */
  ignoredMessages = 0;

  /** performance.now() when `start` arrived: the clock of caller timestamps and of onPlayed. */
  private readonly startedAt: number;
  private readonly clock: () => number;
  readonly admission: InboundAdmission;
  private readonly frames = new EventQueue<AudioFrame>(MAX_QUEUED_FRAMES);
  private readonly arena = new PcmArena(SAMPLE_RATE);
  private readonly playout: Playout;
  private readonly socketClosed: Promise<void>;
  /** An outgoing media message up to its payload: `{"event":"media","streamSid":...,"media":{"payload":"`. */
  private readonly mediaPrefix: Buffer;
  private readonly scan = new MediaScan();
  private lastTimestampMs = -FRAME_MS;
  private framesSent = 0;
  /** When the last media message went (clock ms); undefined after a mark or a clear, which end an utterance. */
  private lastSentAt: number | undefined;
  private readonly onFrameGap: ((ms: number) => void) | undefined;
  /**
   * Frames sent ahead whose play time has not come (timestamped on the stream clock): they reach onPlayed once it
   * has, and clear() drops the rest, since Twilio never plays them.
   */
  private unheard: AudioFrame[] = [];
  /** Marks waiting for the audio queued before them to be sent (`afterFrame` = framesSent when they may go). */
  private outgoing: { name: string; afterFrame: number; resolve: (played: boolean) => void }[] = [];
  /** Marks sent, in order; Twilio echoes them in this order (cleared ones too, which are then ignored). */
  private inFlight: InFlightMark[] = [];
  private ended = false;
  private closedLocally = false;
  private hungUp = false;
  private readonly hangupListeners = new OnceEvent<[violation?: string]>();
  private readonly dtmfListeners = new Listeners<[digit: string]>();
  private readonly playedListeners = new Listeners<[frame: AudioFrame]>();

  /**
   * Waits for `connected` and `start`, then asks `authorize`. Media that arrives while authorize runs is kept.
   * Resolves null (socket closed with 1008) when refused or when no start came in time, and null when the
   * socket went away first.
   */
  static accept(
    socket: WebSocket,
    opts: TwilioAcceptOptions,
  ): Promise<{ transport: TwilioMediaStreamTransport; start: TwilioStart } | null> {
    return new Promise((resolve) => {
      const cleanup = () => {
        clearTimeout(timer);
        socket.off('message', onMessage);
        socket.off('close', onClose);
        socket.off('error', onError);
      };
      const refuse = (code: number, reason: string) => {
        cleanup();
        closeSocket(socket, code, reason);
        resolve(null);
      };
      const timer = setTimeout(() => refuse(1008, 'no start message'), opts.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS);
      let seen = 0;
      const onMessage = (data: RawData, isBinary: boolean) => {
        if (++seen > MAX_MESSAGES_BEFORE_START) return refuse(POLICY_VIOLATION, 'too many messages before start');
        const msg = isBinary ? null : parseJson(data);
        // `connected` and anything else before `start` carries nothing we need.
        if (msg?.event !== 'start') return;
        const start = readStart(msg);
        if (!start) return refuse(1008, 'malformed start message');
        cleanup();
        // Built before authorize resolves so its listeners keep the media Twilio sends meanwhile.
        const transport = new TwilioMediaStreamTransport(socket, start, opts.leadMs ?? DEFAULT_LEAD_MS, opts);
        opts.authorize(start).then(
          (ok) => {
            if (!ok) {
              transport.abandon();
              closeSocket(socket, 1008, 'unauthorized');
              resolve(null);
            } else if (socket.readyState !== OPEN) {
              // The call went away while we were checking it: nobody would hear the hangup.
              transport.abandon();
              resolve(null);
            } else {
              resolve({ transport, start });
            }
          },
          () => {
            transport.abandon();
            closeSocket(socket, 1011, 'authorization failed');
            resolve(null);
          },
        );
      };
      const onClose = () => {
        cleanup();
        resolve(null);
      };
      // A socket error is followed by 'close'; the listener only keeps it from being thrown.
      const onError = () => {};
      socket.on('message', onMessage);
      socket.on('close', onClose);
      socket.on('error', onError);
    });
  }

  /** Use accept(): it does the handshake. `start` must already have been received on this socket. */
  constructor(
    private readonly socket: WebSocket,
    readonly start: TwilioStart,
    leadMs = 0,
    opts: Pick<TwilioAcceptOptions, 'clock' | 'pacing' | 'limits' | 'onFrameGap'> = {},
  ) {
    this.streamSid = start.streamSid;
    // The bytes JSON.stringify({ event: 'media', streamSid, media: { payload } }) gives, up to the payload.
    this.mediaPrefix = Buffer.from(`{"event":"media","streamSid":${JSON.stringify(this.streamSid)},"media":{"payload":"`);
    this.clock = opts.clock ?? (() => performance.now());
    this.startedAt = this.clock();
    this.onFrameGap = opts.onFrameGap;
    this.admission = new InboundAdmission(SAMPLE_RATE, this.clock, opts.limits);
    this.playout = new Playout(SAMPLE_RATE, (frame, playedAt) => this.sendFrame(frame, playedAt), leadMs, opts.pacing);
    this.socketClosed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    socket.on('close', () => this.onSocketGone());
    socket.on('error', () => this.onSocketGone());
  }

  audio(): AsyncIterable<AudioFrame> {
    return this.frames;
  }

  send(frame: AudioFrame): void {
    this.playout.enqueue(frame);
  }

  mark(name: string): Promise<boolean> {
    if (this.ended) return Promise.resolve(false);
    // Playout's own mark only pads the utterance's tail to a whole frame; Twilio's echo is what says it played.
    void this.playout.mark(name);
    const afterFrame = this.framesSent + this.playout.queuedMs / FRAME_MS;
    return new Promise((resolve) => {
      this.outgoing.push({ name, afterFrame, resolve });
      this.releaseMarks();
    });
  }

  clear(): void {
    if (this.ended) return;
    this.reportHeard();
    this.unheard = [];
    this.playout.clear();
    for (const m of this.outgoing) m.resolve(false);
    this.outgoing = [];
    // Twilio echoes the marks it drops; they stay in flight (answered) so those echoes are recognised.
    for (const m of this.inFlight) {
      m.resolve?.(false);
      m.resolve = null;
    }
    this.sendJson({ event: 'clear', streamSid: this.streamSid });
    this.lastSentAt = undefined;
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
    this.closedLocally = true;
    this.finish();
    if (this.socket.readyState === CLOSED) return;
    closeSocket(this.socket, 1000, reason);
    let timer: NodeJS.Timeout | undefined;
    const gaveUp = new Promise<boolean>((r) => (timer = setTimeout(() => r(true), CLOSE_WAIT_MS)));
    if (await Promise.race([this.socketClosed.then(() => false), gaveUp])) this.socket.terminate();
    clearTimeout(timer);
  }

  /** ms since the stream's start message: the clock of caller frames and of onPlayed. */
  now(): number {
    return this.clock() - this.startedAt;
  }

  /** Refused at accept: stops without telling anyone (nobody is listening yet). */
  private abandon(): void {
    this.closedLocally = true;
    this.finish();
  }

  private onMessage(data: RawData, isBinary: boolean): void {
    if (this.ended) return;
    // Agent audio due by now goes first, though the loop has not reached its timers (Playout.poke).
    this.playout.poke();
    // Counted before parsing: a flood of anything costs the same to refuse.
    if (!this.admission.message()) return this.refuse(this.admission.violation!);
    // A caller's media message (50 a second) is read from its bytes; anything else, or anything unusual in one,
    // goes through JSON.parse below.
    if (!isBinary && Buffer.isBuffer(data) && this.scan.read(data) && this.onMediaBytes(data)) return;
    const msg = isBinary ? null : parseJson(data);
    if (!msg) {
      this.ignoredMessages++;
      return;
    }
    switch (msg.event) {
      case 'media':
        return this.onMedia(msg);
      case 'dtmf': {
        // Each digit is a database write and may start a reply: held to a person's pace.
        if (!this.admission.control()) return this.refuse(this.admission.violation!);
        const digit = obj(msg.dtmf)?.digit;
        if (typeof digit !== 'string' || !digit) break;
        this.dtmfListeners.emit(digit);
        return;
      }
      case 'mark': {
        const name = obj(msg.mark)?.name;
        if (typeof name !== 'string') break;
        return this.onMarkEcho(name);
      }
      case 'stop':
        return this.onSocketGone();
      case 'connected':
      case 'start':
        break;
    }
    this.ignoredMessages++;
  }

  private onMedia(msg: Json): void {
    const media = obj(msg.media);
    const payload = media?.payload;
    // Only the caller's track is audio for us (a `both_tracks` stream also carries our own voice back).
    if (!media || typeof payload !== 'string' || (media.track !== undefined && media.track !== 'inbound')) {
      this.ignoredMessages++;
      return;
    }
    if (payload.length > MAX_PAYLOAD_CHARS) return this.refuse('media messages carry at most 1 s of audio');
    const bytes = Buffer.from(payload, 'base64');
    if (!bytes.length || !this.admitAudio(bytes.length)) return;
    // Twilio sends the timestamp as a string; a missing one continues from the previous frame.
    const timestampMs = typeof media.timestamp === 'string' || typeof media.timestamp === 'number' ? Number(media.timestamp) : NaN;
    this.pushFrame(muLawDecode(bytes, this.arena.take(bytes.length)), timestampMs);
  }

  /**
   * A media message MediaScan has read: the same as onMedia would do with it parsed. False leaves it to onMedia
   * (a payload that is not strict base64, or too long, or empty).
   */
  private onMediaBytes(data: Buffer): boolean {
    const { payloadStart, payloadEnd, timestampMs } = this.scan;
    if (payloadEnd - payloadStart > MAX_PAYLOAD_CHARS) return false;
    const n = strictBase64Length(data, payloadStart, payloadEnd);
    if (n <= 0) return false;
    if (this.admitAudio(n)) this.pushFrame(muLawDecodeBase64(data, payloadStart, payloadEnd, this.arena.take(n)), timestampMs);
    return true;
  }

  /** Audio running ahead of the wall clock is dropped before it is decoded; a flood of it closes the stream. */
  private admitAudio(bytes: number): boolean {
    if (this.admission.audio(bytes) >= bytes) return true;
    if (this.admission.violation) this.refuse(this.admission.violation);
    return false;
  }

  /**
   * A caller frame to the session. A timestamp that is not a number continues from the previous frame; the peer's
   * clock is kept within the wall clock's (the lead included), so a made-up timestamp cannot place audio hours ahead.
   */
  private pushFrame(pcm: Int16Array, timestampMs: number): void {
    const stamped = Number.isFinite(timestampMs) ? timestampMs : this.lastTimestampMs + FRAME_MS;
    this.lastTimestampMs = Math.max(0, Math.min(stamped, this.admission.latestMs()));
    this.frames.push({ pcm, sampleRate: SAMPLE_RATE, timestampMs: this.lastTimestampMs });
    // Caller frames come every 20 ms: the clock that reports audio sent ahead once it has played.
    if (this.unheard.length) this.reportHeard();
  }

  private onMarkEcho(name: string): void {
    // Echoes come in the order the marks were sent, so the first one of that name is the one echoed; answered
    // (cleared) entries are consumed silently, which keeps a reused name from resolving a later mark early.
    const i = this.inFlight.findIndex((m) => m.name === name);
    if (i < 0) {
      this.ignoredMessages++;
      return;
    }
    const [m] = this.inFlight.splice(i, 1);
    this.reportHeard();
    m?.resolve?.(true);
  }

  private sendFrame(frame: AudioFrame, playedAt: number): void {
    if (this.socket.bufferedAmount > MAX_UNREAD_BYTES) return this.refuse('the peer does not read the agent audio');
    // The message's bytes are written here, payload included: what sendJson would send for
    // { event: 'media', streamSid, media: { payload: muLawBase64(pcm) } }, without the strings in between.
    const prefix = this.mediaPrefix;
    const msg = Buffer.allocUnsafe(prefix.length + muLawBase64Length(frame.pcm.length) + MEDIA_SUFFIX.length);
    prefix.copy(msg, 0);
    MEDIA_SUFFIX.copy(msg, muLawBase64Into(frame.pcm, msg, prefix.length));
    if (this.socket.readyState === OPEN) this.socket.send(msg, TEXT);
    this.framesSent++;
    if (this.onFrameGap) {
      const sentAt = this.clock();
      if (this.lastSentAt !== undefined) this.onFrameGap(sentAt - this.lastSentAt);
      this.lastSentAt = sentAt;
    }
    // The playout made this frame object for this call alone: restamped on the stream clock rather than copied.
    frame.timestampMs = playedAt - this.startedAt;
    this.unheard.push(frame);
    this.reportHeard();
    this.releaseMarks();
  }

  /** onPlayed for the frames sent whose play time has come. */
  private reportHeard(): void {
    const now = this.now();
    // shift(), not splice(): nearly always one frame, and splice makes an array of what it removes.
    while (this.unheard.length && this.unheard[0]!.timestampMs <= now + 1) this.playedListeners.emit(this.unheard.shift()!);
  }

  /** Sends the marks whose audio has all been sent, right behind it. */
  private releaseMarks(): void {
    while (this.outgoing.length && this.outgoing[0]!.afterFrame <= this.framesSent) {
      const m = this.outgoing.shift()!;
      // The oldest unechoed mark is given up (it resolves false, as if cleared) rather than kept forever.
      if (this.inFlight.length >= MAX_MARKS_IN_FLIGHT) this.inFlight.shift()?.resolve?.(false);
      this.inFlight.push({ name: m.name, resolve: m.resolve });
      this.sendJson({ event: 'mark', streamSid: this.streamSid, mark: { name: m.name } });
      // The gaps timed are those within an utterance, as the caller's side times them (a mark ends one).
      this.lastSentAt = undefined;
    }
  }

  private onSocketGone(violation?: string): void {
    if (this.ended) return;
    this.finish();
    if (this.closedLocally || this.hungUp) return;
    this.hungUp = true;
    this.hangupListeners.emit(violation);
  }

  /** The peer broke the media rules: closed with 1008, and the session ends the call with why. */
  private refuse(violation: string): void {
    if (this.ended) return;
    closeSocket(this.socket, POLICY_VIOLATION, violation);
    this.onSocketGone(violation);
  }

  private finish(): void {
    if (this.ended) return;
    this.ended = true;
    // What has played by now was heard; the rest Twilio drops with the call.
    this.reportHeard();
    this.unheard = [];
    this.playout.close();
    for (const m of this.outgoing) m.resolve(false);
    for (const m of this.inFlight) m.resolve?.(false);
    this.outgoing = [];
    this.inFlight = [];
    this.frames.end();
  }

  private sendJson(msg: Json): void {
    if (this.socket.readyState === OPEN) this.socket.send(JSON.stringify(msg));
  }
}

function parseJson(data: RawData): Json | null {
  try {
    const text = Buffer.isBuffer(data)
      ? data.toString('utf8')
      : Array.isArray(data)
        ? Buffer.concat(data).toString('utf8')
        : Buffer.from(data).toString('utf8');
    return obj(JSON.parse(text));
  } catch {
    return null;
  }
}

function obj(v: unknown): Json | null {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : null;
}

function readStart(msg: Json): TwilioStart | null {
  const start = obj(msg.start);
  if (!start) return null;
  const streamSid = typeof start.streamSid === 'string' ? start.streamSid : msg.streamSid;
  if (typeof streamSid !== 'string' || typeof start.callSid !== 'string' || typeof start.accountSid !== 'string') return null;
  const customParameters: Record<string, string> = {};
  for (const [k, v] of Object.entries(obj(start.customParameters) ?? {})) if (typeof v === 'string') customParameters[k] = v;
  const format = obj(start.mediaFormat);
  return {
    streamSid,
    callSid: start.callSid,
    accountSid: start.accountSid,
    customParameters,
    mediaFormat: {
      encoding: typeof format?.encoding === 'string' ? format.encoding : 'audio/x-mulaw',
      sampleRate: typeof format?.sampleRate === 'number' ? format.sampleRate : SAMPLE_RATE,
      channels: typeof format?.channels === 'number' ? format.channels : 1,
    },
    tracks: Array.isArray(start.tracks) ? start.tracks.filter((t): t is string => typeof t === 'string') : ['inbound'],
  };
}

/** Close reasons are limited to 123 bytes of UTF-8; cut on a character boundary. */
function closeSocket(socket: WebSocket, code: number, reason: string): void {
  let r = reason;
  while (Buffer.byteLength(r) > 123) r = r.slice(0, -1);
  if (socket.readyState === OPEN || socket.readyState === 0) socket.close(code, r);
}

// ---- media messages read from their bytes ----------------------------------------------------------------------
//
// JSON.parse of a media message made a string of the whole message, then one per field and an object per level,
// and the payload was then decoded from its string into a Buffer: at 150 calls, 7,500 messages a second of garbage.
// MediaScan reads the one shape Twilio sends (an object of string fields and the `media` object of string fields,
// in any order, with any whitespace), finds the payload and the timestamp in the bytes, and says false for anything
// else (escapes, other value types, repeated fields, another event, a track other than inbound), which then goes
// through JSON.parse as before (an escape in the payload is found by the payload's strict base64 check instead, in
// onMediaBytes). What it accepts, JSON.parse reads the same way. ws has already checked that a text
// message is valid UTF-8, and the bytes it looks for are all ASCII (never part of a multi-byte character).

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const COMMA = 0x2c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const ZERO = 0x30;
const EMPTY = new Uint8Array(0);
const ascii = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
const EVENT_KEY = ascii('event');
const MEDIA = ascii('media');
const TRACK_KEY = ascii('track');
const TIMESTAMP_KEY = ascii('timestamp');
const PAYLOAD_KEY = ascii('payload');
const INBOUND = ascii('inbound');
/** Digits in a timestamp read here (exact as a number); a longer one goes through JSON.parse. */
const MAX_TIMESTAMP_DIGITS = 15;

function skipSpace(b: Uint8Array, i: number): number {
  // JSON whitespace: space, tab, line feed, carriage return.
  while (i < b.length) {
    const c = b[i]!;
    if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) break;
    i++;
  }
  return i;
}

/** The end (after the closing quote) of the string starting at `i`, or -1: not a string, or one with escapes. */
function stringEnd(b: Uint8Array, i: number): number {
  if (b[i] !== QUOTE) return -1;
  for (let j = i + 1; j < b.length; j++) {
    const c = b[j]!;
    if (c === QUOTE) return j + 1;
    // An escape would make the text differ from the bytes; a raw control character is not JSON.
    if (c === BACKSLASH || c < 0x20) return -1;
  }
  return -1;
}

/** Whether the string starting at `i` and ending at `end` (as stringEnd gives) holds exactly `text`. */
function stringIs(b: Uint8Array, i: number, end: number, text: Uint8Array): boolean {
  if (end - i - 2 !== text.length) return false;
  for (let k = 0; k < text.length; k++) if (b[i + 1 + k] !== text[k]) return false;
  return true;
}

/**
 * Reads a caller media message from its bytes: where its payload is (bytes [payloadStart, payloadEnd)) and its
 * timestamp (NaN when absent). One per transport, reused for every message (no closures or results per message).
 */
class MediaScan {
  payloadStart = 0;
  payloadEnd = 0;
  timestampMs = NaN;
  private b: Uint8Array = new Uint8Array(0);
  private event = false;
  private media = false;
  private track = false;
  private timestamp = false;
  private payload = false;

  /** False for anything it does not read exactly as JSON.parse would: then it must be parsed. */
  read(b: Uint8Array): boolean {
    this.b = b;
    this.event = this.media = this.track = this.timestamp = this.payload = false;
    this.timestampMs = NaN;
    const end = this.objectEnd(skipSpace(b, 0), false);
    this.b = EMPTY;
    return end >= 0 && skipSpace(b, end) === b.length && this.event && this.media && this.payload;
  }

  /** Reads the object at `i` (the message, or its `media`) field by field; returns where it ends, or -1. */
  private objectEnd(i: number, inMedia: boolean): number {
    const b = this.b;
    if (b[i] !== OPEN_BRACE) return -1;
    i = skipSpace(b, i + 1);
    if (b[i] === CLOSE_BRACE) return i + 1;
    for (;;) {
      const key = i;
      const keyEnd = stringEnd(b, key);
      if (keyEnd < 0) return -1;
      i = skipSpace(b, keyEnd);
      if (b[i] !== COLON) return -1;
      const value = skipSpace(b, i + 1);
      i = inMedia ? this.mediaField(key, keyEnd, value) : this.topField(key, keyEnd, value);
      if (i < 0) return -1;
      i = skipSpace(b, i);
      if (b[i] === CLOSE_BRACE) return i + 1;
      if (b[i] !== COMMA) return -1;
      i = skipSpace(b, i + 1);
    }
  }

  /** A field of the message: `event` must be "media", `media` an object; any other must be a string. */
  private topField(key: number, keyEnd: number, value: number): number {
    const b = this.b;
    if (stringIs(b, key, keyEnd, MEDIA)) {
      if (this.media) return -1;
      this.media = true;
      return this.objectEnd(value, true);
    }
    const end = stringEnd(b, value);
    if (end < 0) return -1;
    if (stringIs(b, key, keyEnd, EVENT_KEY)) {
      if (this.event || !stringIs(b, value, end, MEDIA)) return -1;
      this.event = true;
    }
    return end;
  }

  /** A field of `media`: every one a string; `track` must be "inbound" and `timestamp` digits. */
  private mediaField(key: number, keyEnd: number, value: number): number {
    const b = this.b;
    if (stringIs(b, key, keyEnd, PAYLOAD_KEY)) {
      // The payload (most of the message) up to the first quote, found natively rather than byte by byte here: what
      // stringEnd would refuse in it (an escape, a control character) is not base64 either, and onMediaBytes leaves
      // a payload that is not strict base64 to JSON.parse.
      if (this.payload || b[value] !== QUOTE) return -1;
      const close = b.indexOf(QUOTE, value + 1);
      if (close < 0) return -1;
      this.payload = true;
      this.payloadStart = value + 1;
      this.payloadEnd = close;
      return close + 1;
    }
    const end = stringEnd(b, value);
    if (end < 0) return -1;
    if (stringIs(b, key, keyEnd, TIMESTAMP_KEY)) {
      const digits = end - value - 2;
      if (this.timestamp || digits < 1 || digits > MAX_TIMESTAMP_DIGITS) return -1;
      this.timestamp = true;
      let ms = 0;
      for (let k = value + 1; k < end - 1; k++) {
        const d = b[k]! - ZERO;
        if (d < 0 || d > 9) return -1;
        ms = ms * 10 + d;
      }
      this.timestampMs = ms;
    } else if (stringIs(b, key, keyEnd, TRACK_KEY)) {
      // Another track (our own voice, in a both_tracks stream) is onMedia's to ignore.
      if (this.track || !stringIs(b, value, end, INBOUND)) return -1;
      this.track = true;
    }
    return end;
  }
}
