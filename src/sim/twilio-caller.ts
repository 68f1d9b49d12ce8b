// The Twilio side of a bidirectional Media Stream, for the simulator, the benchmark and tests: reads the TwiML
// <Connect><Stream>, opens the websocket, streams the caller's mu-law audio in real time, and plays what the
// service sends the way Twilio does (real-time buffer, marks echoed once played, clear), recording what was heard.
import { randomBytes } from 'node:crypto';
import { type RawData, WebSocket } from 'ws';
import {
  durationMs,
  encodeWav,
  FRAME_MS,
  muLawBase64Into,
  muLawBase64Length,
  muLawDecode,
  muLawDecodeBase64,
  PcmArena,
  strictBase64Length,
} from '../voice/audio.js';

const SAMPLE_RATE = 8000;
const FRAME_SAMPLES = (SAMPLE_RATE * FRAME_MS) / 1000;
/** How often the sender looks at the clock; frames still go out on the 20 ms grid. */
const TICK_MS = 5;
const PAYLOAD_CHARS = muLawBase64Length(FRAME_SAMPLES);
/** Line noise is drawn from this many frames made in advance (2 s of it), one picked at random for each frame sent. */
const NOISE_FRAMES = 100;
const MEDIA_SUFFIX = Buffer.from('"}}');

/**
 * The line noise of one amplitude: NOISE_FRAMES frames of uniform noise within +-amplitude, as PCM (to fill the end
 * of a frame the caller's speech does not fill) and as each frame's base64 mu-law payload. Random numbers and
 * mu-law encoding per sample were most of the simulator's sending work, 50 frames a second for every caller.
 */
const noiseByAmplitude = new Map<number, { pcm: Int16Array; payloads: Buffer }>();
function lineNoise(amplitude: number): { pcm: Int16Array; payloads: Buffer } {
  let noise = noiseByAmplitude.get(amplitude);
  if (!noise) {
    const pcm = Int16Array.from({ length: NOISE_FRAMES * FRAME_SAMPLES }, () => Math.round((Math.random() * 2 - 1) * amplitude));
    const payloads = Buffer.alloc(NOISE_FRAMES * PAYLOAD_CHARS);
    for (let f = 0; f < NOISE_FRAMES; f++)
      muLawBase64Into(pcm.subarray(f * FRAME_SAMPLES, (f + 1) * FRAME_SAMPLES), payloads, f * PAYLOAD_CHARS);
    noise = { pcm, payloads };
    noiseByAmplitude.set(amplitude, noise);
  }
  return noise;
}

export interface HeardAudio {
  pcm: Int16Array;
  /** ms since the start message. */
  atMs: number;
}

export interface EchoedMark {
  name: string;
  /** ms since the start message. */
  atMs: number;
  /** False when it was echoed because a clear dropped the audio before it. */
  played: boolean;
}

export interface TwilioCallerOptions {
  /** The <Stream url> (ws:// or wss://). */
  url: string;
  /** <Parameter>s: they arrive as start.customParameters. */
  parameters?: Record<string, string>;
  callSid?: string;
  accountSid?: string;
  /** Peak amplitude of the line noise sent while the caller is quiet. */
  noiseAmplitude?: number;
  /** Network and jitter-buffer delay before audio reaching an idle line starts playing. */
  playoutDelayMs?: number;
}

type Json = Record<string, unknown>;
type Buffered = { pcm: Int16Array } | { mark: string };

/** The <Stream> of a <Connect> in a TwiML document, with its <Parameter>s; null when there is none. */
export function parseConnectStream(twiml: string): { url: string; parameters: Record<string, string> } | null {
  const stack: string[] = [];
  let found: { url: string; parameters: Record<string, string> } | null = null;
  /** Depth of the open <Stream> being read, or -1. */
  let streamDepth = -1;
  let i = 0;
  while (i < twiml.length) {
    const lt = twiml.indexOf('<', i);
    if (lt < 0) break;
    // Comments, CDATA, the declaration and doctypes may contain '<' and '>' that are not tags.
    const skipTo = twiml.startsWith('<!--', lt)
      ? '-->'
      : twiml.startsWith('<![CDATA[', lt)
        ? ']]>'
        : twiml.startsWith('<?', lt)
          ? '?>'
          : twiml.startsWith('<!', lt)
            ? '>'
            : null;
    if (skipTo) {
      const end = twiml.indexOf(skipTo, lt);
      if (end < 0) return null;
      i = end + skipTo.length;
      continue;
    }
    TAG.lastIndex = lt;
    const m = TAG.exec(twiml);
    if (!m) return null;
    i = TAG.lastIndex;
    const [, closing, name = '', rawAttrs = '', selfClosing] = m;
    if (closing) {
      // Tolerates stray closers instead of failing: only the Connect > Stream > Parameter path matters.
      const at = stack.lastIndexOf(name);
      if (at >= 0) stack.length = at;
      if (streamDepth >= 0 && stack.length <= streamDepth) {
        if (found) return found;
        streamDepth = -1;
      }
      continue;
    }
    const attrs = parseAttributes(rawAttrs);
    if (name === 'Stream' && stack[stack.length - 1] === 'Connect' && streamDepth < 0) {
      const url = attrs.url;
      if (url) {
        found = { url, parameters: {} };
        if (selfClosing) return found;
        streamDepth = stack.length;
      }
    } else if (name === 'Parameter' && found && streamDepth >= 0 && stack.length === streamDepth + 1 && attrs.name !== undefined) {
      found.parameters[attrs.name] = attrs.value ?? '';
    }
    if (!selfClosing) stack.push(name);
  }
  return found;
}

const TAG = /<(\/?)([A-Za-z_][\w:.-]*)((?:\s+[^\s=/>]+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(\/?)>/y;
const ATTR = /([^\s=/>]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/g;

function parseAttributes(raw: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of raw.matchAll(ATTR)) out[m[1]!] = unescapeXml(m[2] ?? m[3] ?? '');
  return out;
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function unescapeXml(s: string): string {
  return s.replace(/&(?:#(\d+)|#x([0-9a-fA-F]+)|(amp|lt|gt|quot|apos));/g, (whole, dec?: string, hex?: string, named?: string) => {
    if (named) return ENTITIES[named] ?? whole;
    const code = dec ? Number.parseInt(dec, 10) : Number.parseInt(hex!, 16);
    return code <= 0x10ffff ? String.fromCodePoint(code) : whole;
  });
}

const hex32 = () => randomBytes(16).toString('hex');

/**
 * One clock for every leg in the process: each tick, every leg sends the caller frames it owes and plays what is
 * due. A timer per leg (and one per received frame) was some 50,000 timer callbacks a second at 200 calls, enough to
 * make the simulator itself late and show its lateness as the service's.
 */
class LegClock {
  private readonly legs = new Set<TwilioCallerLeg>();
  private timer: NodeJS.Timeout | undefined;

  add(leg: TwilioCallerLeg): void {
    this.legs.add(leg);
    this.timer ??= setInterval(() => {
      for (const l of this.legs) l.tick();
    }, TICK_MS);
  }

  remove(leg: TwilioCallerLeg): void {
    this.legs.delete(leg);
    if (this.legs.size || !this.timer) return;
    clearInterval(this.timer);
    this.timer = undefined;
  }
}

const clock = new LegClock();

export class TwilioCallerLeg {
  /** Agent audio in the order it was played. */
  readonly heard: HeardAudio[] = [];
  /** When (ms since start) a clear arrived. */
  readonly clears: number[] = [];
  /** Marks echoed back to the service. */
  readonly marks: EchoedMark[] = [];
  /**
   * Gaps between consecutive media messages from the service, in ms: its pacing. A mark or clear between two
   * messages starts a new run, since the pause between utterances is not a pacing fault.
   */
  readonly outboundGapsMs: number[] = [];
  /** When each of those gaps ended (performance.now()): where in a run the late ones fall. */
  readonly outboundGapsAtMs: number[] = [];
  /**
   * What the caller hears of the same: for each of those messages, the time from the start of the previous frame
   * at the phone to the start of this one. 20 ms while the audio is unbroken (the frame came before the audio
   * queued ahead of it ran out), more when it came after Twilio's buffer had run dry and the caller heard a hole.
   */
  readonly heardGapsMs: number[] = [];
  /** What the service sent that Twilio would reject or ignore (bad JSON, wrong streamSid, unknown events). */
  readonly protocolErrors: string[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;

  private startedAt = 0;
  private sequence = 0;
  private chunk = 0;
  private pending: { pcm: Int16Array; done: () => void }[] = [];
  private buffer: Buffered[] = [];
  private playingUntil = 0;
  private lastMediaAt: number | undefined;
  /** What the service sends is decoded into one-second buffers (every frame is kept in `heard`). */
  private readonly arena = new PcmArena(SAMPLE_RATE);
  private ended = false;
  private readonly noise: { pcm: Int16Array; payloads: Buffer };
  /** The frame being filled with the caller's speech. */
  private readonly frame = new Int16Array(FRAME_SAMPLES);
  /** A media message of the service up to its payload: `{"event":"media","streamSid":...,"media":{"payload":"`. */
  private readonly mediaPrefix: Buffer;
  private readonly streamSidJson: string;

  private constructor(
    private readonly socket: WebSocket,
    readonly streamSid: string,
    readonly callSid: string,
    readonly accountSid: string,
    private readonly parameters: Record<string, string>,
    noiseAmplitude: number,
    private readonly playoutDelayMs: number,
  ) {
    this.noise = lineNoise(noiseAmplitude);
    this.streamSidJson = JSON.stringify(streamSid);
    this.mediaPrefix = Buffer.from(`{"event":"media","streamSid":${this.streamSidJson},"media":{"payload":"`);
    this.closed = new Promise((resolve) => {
      socket.once('close', (code, reason) => {
        this.stop();
        resolve({ code, reason: reason.toString('utf8') });
      });
    });
    socket.on('message', (data, isBinary) => this.onMessage(data, isBinary));
  }

  /** Opens the stream like Twilio: `connected`, `start`, then a media message every 20 ms. */
  static async connect(opts: TwilioCallerOptions): Promise<TwilioCallerLeg> {
    const socket = new WebSocket(opts.url);
    // An error is followed by 'close', which is where the leg reports the end.
    socket.on('error', () => {});
    await new Promise<void>((resolve, reject) => {
      const fail = (err: Error) => {
        socket.off('open', onOpen);
        reject(err);
      };
      const onOpen = () => {
        socket.off('error', fail);
        resolve();
      };
      socket.once('open', onOpen);
      socket.once('error', fail);
    });
    const leg = new TwilioCallerLeg(
      socket,
      `MZ${hex32()}`,
      opts.callSid ?? `CA${hex32()}`,
      opts.accountSid ?? `AC${hex32()}`,
      opts.parameters ?? {},
      opts.noiseAmplitude ?? 20,
      opts.playoutDelayMs ?? 0,
    );
    leg.begin();
    return leg;
  }

  /** ms since the start message. */
  now(): number {
    return performance.now() - this.startedAt;
  }

  /** Media messages sent so far; the next one carries chunk `sentChunks + 1`, timestamp `(sentChunks + 1) * 20`. */
  get sentChunks(): number {
    return this.chunk;
  }

  /** Caller speech (8 kHz), sent over the following media messages; resolves once all of it has been sent. */
  say(pcm: Int16Array): Promise<void> {
    if (this.ended || !pcm.length) return Promise.resolve();
    return new Promise((done) => this.pending.push({ pcm, done }));
  }

  pressDigit(digit: string): void {
    this.sendJson({
      event: 'dtmf',
      sequenceNumber: this.nextSequence(),
      streamSid: this.streamSid,
      dtmf: { track: 'inbound_track', digit },
    });
  }

  /** The caller hangs up: `stop`, then the socket closes. */
  async hangup(): Promise<{ code: number; reason: string }> {
    this.sendJson({
      event: 'stop',
      sequenceNumber: this.nextSequence(),
      streamSid: this.streamSid,
      stop: { accountSid: this.accountSid, callSid: this.callSid },
    });
    this.stop();
    if (this.socket.readyState === WebSocket.OPEN) this.socket.close(1000, 'call ended');
    return this.closed;
  }

  /** The connection drops without a stop message or closing handshake. */
  terminate(): Promise<{ code: number; reason: string }> {
    this.stop();
    this.socket.terminate();
    return this.closed;
  }

  /** Agent audio heard between two times (ms since start), in ms. */
  heardMs(fromMs = 0, toMs = Infinity): number {
    return this.heard.filter((h) => h.atMs >= fromMs && h.atMs < toMs).reduce((ms, h) => ms + durationMs(h.pcm.length, SAMPLE_RATE), 0);
  }

  /** What the caller heard as an 8 kHz WAV from the start of the stream, silent where nothing played. */
  heardWav(): Buffer {
    const at = (ms: number) => Math.max(0, Math.round((ms * SAMPLE_RATE) / 1000));
    const end = this.heard.reduce((n, h) => Math.max(n, at(h.atMs) + h.pcm.length), 0);
    const pcm = new Int16Array(end);
    for (const h of this.heard) pcm.set(h.pcm, at(h.atMs));
    return encodeWav(pcm, SAMPLE_RATE);
  }

  /** Pacing of the service's audio: percentiles of outboundGapsMs, and p99/max of heardGapsMs. */
  pacing(): { count: number; p50Ms: number; p99Ms: number; maxMs: number; heardP99Ms: number; heardMaxMs: number } {
    const sort = (xs: number[]) => [...xs].sort((a, b) => a - b);
    const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;
    const sent = sort(this.outboundGapsMs);
    const heard = sort(this.heardGapsMs);
    return {
      count: sent.length,
      p50Ms: pct(sent, 50),
      p99Ms: pct(sent, 99),
      maxMs: pct(sent, 100),
      heardP99Ms: pct(heard, 99),
      heardMaxMs: pct(heard, 100),
    };
  }

  private begin(): void {
    this.sendJson({ event: 'connected', protocol: 'Call', version: '1.0.0' });
    this.startedAt = performance.now();
    this.sendJson({
      event: 'start',
      sequenceNumber: this.nextSequence(),
      streamSid: this.streamSid,
      start: {
        accountSid: this.accountSid,
        streamSid: this.streamSid,
        callSid: this.callSid,
        tracks: ['inbound'],
        mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: SAMPLE_RATE, channels: 1 },
        customParameters: this.parameters,
      },
    });
    clock.add(this);
  }

  /** Called by the clock: sends the caller frames that are due, and plays the service's audio that is due. */
  tick(): void {
    // Chunk n goes out once its 20 ms have passed; a late tick sends the frames it owes at once (a phone line
    // does not pause), and never one before its time.
    const due = Math.floor(this.now() / FRAME_MS);
    while (this.chunk < due && !this.ended) this.sendMedia();
    this.drain();
  }

  private sendMedia(): void {
    const pcm = this.frame;
    let filled = 0;
    const finished: (() => void)[] = [];
    while (filled < pcm.length && this.pending.length) {
      const head = this.pending[0]!;
      const take = Math.min(head.pcm.length, pcm.length - filled);
      pcm.set(head.pcm.subarray(0, take), filled);
      filled += take;
      if (take === head.pcm.length) finished.push(this.pending.shift()!.done);
      else head.pcm = head.pcm.subarray(take);
    }
    const n = Math.floor(Math.random() * NOISE_FRAMES);
    this.chunk++;
    // Stamped like Twilio's first chunk ("chunk":"1","timestamp":"20"): ms since start when the chunk is complete.
    // The bytes JSON.stringify gives for { event: 'media', sequenceNumber, streamSid, media: { track, chunk,
    // timestamp, payload } }, with the payload written in place.
    const head =
      `{"event":"media","sequenceNumber":"${this.nextSequence()}","streamSid":${this.streamSidJson},` +
      `"media":{"track":"inbound","chunk":"${this.chunk}","timestamp":"${this.chunk * FRAME_MS}","payload":"`;
    const msg = Buffer.allocUnsafe(head.length + PAYLOAD_CHARS + MEDIA_SUFFIX.length);
    msg.write(head, 0, 'latin1');
    if (filled) {
      pcm.set(this.noise.pcm.subarray(n * FRAME_SAMPLES + filled, (n + 1) * FRAME_SAMPLES), filled);
      muLawBase64Into(pcm, msg, head.length);
    } else this.noise.payloads.copy(msg, head.length, n * PAYLOAD_CHARS, (n + 1) * PAYLOAD_CHARS);
    MEDIA_SUFFIX.copy(msg, head.length + PAYLOAD_CHARS);
    if (this.socket.readyState === WebSocket.OPEN) this.socket.send(msg, { binary: false });
    for (const done of finished) done();
  }

  private onMessage(data: RawData, isBinary: boolean): void {
    // Timed before anything else this process does with the message: its own work is not the service's pacing.
    const now = performance.now();
    if (isBinary) return void this.protocolErrors.push('binary message');
    // The service's media messages are read from their bytes; anything else goes through JSON.parse below.
    if (Buffer.isBuffer(data) && this.onMediaBytes(data, now)) return;
    let msg: Json;
    try {
      const parsed: unknown = JSON.parse(rawText(data));
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
      msg = parsed as Json;
    } catch {
      return void this.protocolErrors.push('malformed JSON');
    }
    if (msg.streamSid !== this.streamSid)
      return void this.protocolErrors.push(`${String(msg.event)}: wrong streamSid ${String(msg.streamSid)}`);
    switch (msg.event) {
      case 'media': {
        const payload = (msg.media as Json | undefined)?.payload;
        if (typeof payload !== 'string') return void this.protocolErrors.push('media without payload');
        const bytes = Buffer.from(payload, 'base64');
        this.onMedia(muLawDecode(bytes, this.arena.take(bytes.length)), now);
        return;
      }
      case 'mark': {
        const name = (msg.mark as Json | undefined)?.name;
        if (typeof name !== 'string') return void this.protocolErrors.push('mark without name');
        this.lastMediaAt = undefined;
        this.enqueue({ mark: name });
        return;
      }
      case 'clear': {
        this.clears.push(this.now());
        this.lastMediaAt = undefined;
        const dropped = this.buffer;
        this.buffer = [];
        // Twilio answers the marks it drops at once.
        for (const item of dropped) if ('mark' in item) this.echo(item.mark, false);
        return;
      }
      default:
        this.protocolErrors.push(`unknown event ${String(msg.event)}`);
    }
  }

  /**
   * A media message exactly as the service writes it (`{"event":"media","streamSid":<ours>,"media":{"payload":"<strict
   * base64>"}}`), decoded from its bytes: what the JSON path does with it, without the parse. False for anything else.
   */
  private onMediaBytes(data: Buffer, now: number): boolean {
    const prefix = this.mediaPrefix;
    const end = data.length - MEDIA_SUFFIX.length;
    if (end <= prefix.length || prefix.compare(data, 0, prefix.length) !== 0 || MEDIA_SUFFIX.compare(data, end) !== 0) return false;
    const n = strictBase64Length(data, prefix.length, end);
    if (n <= 0) return false;
    this.onMedia(muLawDecodeBase64(data, prefix.length, end, this.arena.take(n)), now);
    return true;
  }

  private onMedia(pcm: Int16Array, now: number): void {
    if (this.lastMediaAt !== undefined) {
      this.outboundGapsMs.push(now - this.lastMediaAt);
      this.outboundGapsAtMs.push(now);
      this.heardGapsMs.push(FRAME_MS + Math.max(0, now - this.queuedUntil()));
    }
    this.lastMediaAt = now;
    if (pcm.length) this.enqueue({ pcm });
  }

  private enqueue(item: Buffered): void {
    if (this.ended) return;
    // Audio reaching an empty buffer (a new utterance, or the first after a clear) plays after the delay, and
    // not back at the end of the last utterance; a mark with no audio before it is reached when the current
    // frame ends.
    if (!this.buffer.length) this.playingUntil = Math.max(this.playingUntil, performance.now() + ('pcm' in item ? this.playoutDelayMs : 0));
    this.buffer.push(item);
    this.drain();
  }

  /** When the audio in the buffer has all played (performance.now() time). */
  private queuedUntil(): number {
    let until = this.playingUntil;
    for (const item of this.buffer) if ('pcm' in item) until += durationMs(item.pcm.length, SAMPLE_RATE);
    return until;
  }

  private drain(): void {
    // Items start on the schedule, back to back (tick lateness does not shift it); a mark is reached once the
    // audio before it has finished.
    while (this.buffer.length && this.playingUntil <= performance.now() + 1) {
      const item = this.buffer.shift()!;
      if ('mark' in item) {
        this.echo(item.mark, true);
        continue;
      }
      this.heard.push({ pcm: item.pcm, atMs: this.playingUntil - this.startedAt });
      this.playingUntil += durationMs(item.pcm.length, SAMPLE_RATE);
    }
  }

  private echo(name: string, played: boolean): void {
    this.marks.push({ name, atMs: this.now(), played });
    this.sendJson({ event: 'mark', sequenceNumber: this.nextSequence(), streamSid: this.streamSid, mark: { name } });
  }

  private nextSequence(): string {
    return String(++this.sequence);
  }

  private sendJson(msg: Json): void {
    if (this.socket.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(msg));
  }

  private stop(): void {
    if (this.ended) return;
    this.ended = true;
    clock.remove(this);
    this.buffer = [];
    for (const p of this.pending) p.done();
    this.pending = [];
  }
}

function rawText(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data).toString('utf8');
}
