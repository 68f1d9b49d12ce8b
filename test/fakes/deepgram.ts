// A local fake of Deepgram's live transcription websocket (/v1/listen) that rejects what the real service rejects:
// the same auth (Authorization: Token <key>, or a browser's Sec-WebSocket-Protocol "token, <key>"), the same query
// checks, refusals as a real HTTP status with a JSON {err_code, err_msg, request_id} body and dg-error header, and
// the same messages back (SpeechStarted, interim/final Results, UtteranceEnd, Metadata, close 1000 / 1011 NET-0001 /
// 1008). It hears linear16 or mulaw speech by energy and answers on audio time, so tests may send faster than real
// time; the words come from a script, one transcript per utterance.
// Recalled, not confirmed from Deepgram's docs: the exact 400 err_msg texts, the err_codes other than INVALID_AUTH,
// and how a malformed text frame is answered (here: close 1008 with a reason).
import { createHash, randomUUID } from 'node:crypto';
import { createServer, STATUS_CODES, type IncomingHttpHeaders, type IncomingMessage, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { type RawData, type WebSocket, WebSocketServer } from 'ws';
import { dbfs, muLawDecode } from '../../src/voice/audio.js';
import { listenLocal, type LocalServer } from './local-server.js';

export interface FakeDeepgramOptions {
  apiKey?: string;
  /** What callers say, utterance by utterance, across all connections. */
  transcripts?: string[];
  /** Wall-clock time without audio or a control message before the 1011 NET-0001 close (Deepgram: 10 s). */
  idleTimeoutMs?: number;
  /** Audio time between interim results while speech lasts (Deepgram sends about one a second). */
  interimEveryMs?: number;
  handshakeDelayMs?: number;
  dropAfterMs?: number;
  /**
   * Wall-clock time between the moment a final result is due (endpointing silence heard, or Finalize received) and
   * the moment it is sent: Deepgram's processing and network time. Default 0: sent at once.
   */
  finalLatencyMs?: number;
}

/** What one accepted connection sent and got, for assertions. */
export interface FakeDeepgramConnection {
  requestId: string;
  /** Path and query exactly as the client sent them. */
  url: string;
  query: Record<string, string>;
  headers: IncomingHttpHeaders;
  /** Types of the control messages received, in order. */
  controls: string[];
  keepAlives: number;
  audioBytes: number;
  /** Binary (audio) messages received. */
  audioMessages: number;
  /** Every message the fake sent, in order. */
  sent: Record<string, unknown>[];
  /** How the connection ended: by the fake, by the client, or 1006 when the fake dropped it. */
  closed?: { code: number; reason: string };
}

const ENCODINGS = new Set(['linear16', 'linear32', 'flac', 'alaw', 'mulaw', 'amr-nb', 'amr-wb', 'opus', 'ogg-opus', 'speex', 'g729']);
/** Headerless encodings: Deepgram cannot tell their rate from the audio, so sample_rate is required. */
const RAW_ENCODINGS = new Set(['linear16', 'linear32', 'alaw', 'mulaw', 'amr-nb', 'amr-wb', 'speex', 'g729']);
const MODELS = new Set([
  'nova-3',
  'nova-3-general',
  'nova-3-medical',
  'nova-2',
  'nova-2-general',
  'nova-2-phonecall',
  'nova-2-meeting',
  'nova-2-conversationalai',
  'nova-2-medical',
  'nova',
  'enhanced',
  'base',
]);
const BOOLEANS = [
  'interim_results',
  'vad_events',
  'smart_format',
  'punctuate',
  'numerals',
  'profanity_filter',
  'diarize',
  'dictation',
  'multichannel',
  'filler_words',
  'no_delay',
  'mip_opt_out',
];
const REFUSALS: Record<number, { code: string; message: string }> = {
  401: { code: 'INVALID_AUTH', message: 'Invalid credentials.' },
  402: { code: 'ASR_PAYMENT_REQUIRED', message: 'Project does not have enough credits for an ASR request.' },
  403: { code: 'INSUFFICIENT_PERMISSIONS', message: 'Project does not have access to the requested model.' },
  404: { code: 'NOT_FOUND', message: 'Not found.' },
  429: { code: 'TOO_MANY_REQUESTS', message: 'Too many requests. Please try again later.' },
};
// Deepgram documents the payload as the code NET-0001; the sentence after it is recalled from real closes.
const NET_0001 = 'NET-0001 Deepgram did not receive audio data or a text message within the timeout window.';
const SPEECH_DBFS = -45;
const WINDOW_MS = 20;
const MS_PER_WORD = 300;

export class FakeDeepgram {
  url = '';
  readonly apiKey: string;
  transcripts: string[];
  idleTimeoutMs: number;
  interimEveryMs: number;
  /** Accept upgrades only after this long (a slow or overloaded service). */
  handshakeDelayMs: number;
  /** Drop every accepted connection this long after it opens, without a close frame. */
  dropAfterMs: number | undefined;
  /** Delay before each final Results message is sent (see FakeDeepgramOptions). */
  finalLatencyMs: number;
  readonly connections: FakeDeepgramConnection[] = [];
  /** Handshakes refused, with the status and err_msg sent. */
  readonly refusals: { url: string; status: number; message: string }[] = [];
  private rejections: { status: number; retryAfter?: number; message?: string }[] = [];
  private dropOnNextAudio = false;
  private readonly server: Server;
  private listening?: LocalServer;
  private readonly wss: WebSocketServer;
  private readonly requestIds = new WeakMap<IncomingMessage, string>();

  constructor(opts: FakeDeepgramOptions = {}) {
    this.apiKey = opts.apiKey ?? `dg-test-${randomUUID().replaceAll('-', '')}`;
    this.transcripts = [...(opts.transcripts ?? [])];
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 10_000;
    this.interimEveryMs = opts.interimEveryMs ?? 1000;
    this.handshakeDelayMs = opts.handshakeDelayMs ?? 0;
    this.dropAfterMs = opts.dropAfterMs;
    this.finalLatencyMs = opts.finalLatencyMs ?? 0;
    // Browsers authenticate with the subprotocols "token, <key>"; the server must pick one of them to accept.
    this.wss = new WebSocketServer({ noServer: true, handleProtocols: (protocols) => (protocols.has('token') ? 'token' : false) });
    this.wss.on('headers', (headers, req) => headers.push(`dg-request-id: ${this.requestIds.get(req)}`));
    this.server = createServer((_req, res) => {
      res.writeHead(426, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ err_code: 'UPGRADE_REQUIRED', err_msg: 'This endpoint is a websocket.' }));
    });
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => void this.upgrade(req, socket, head));
  }

  async start(): Promise<this> {
    this.listening = await listenLocal(this.server);
    this.url = this.listening.origin.replace(/^http/, 'ws');
    return this;
  }

  /** Refuse the next handshake (after auth) with this status; Retry-After in seconds when given. */
  rejectNext(status: number, opts: { retryAfter?: number; message?: string } = {}): void {
    this.rejections.push({ status, ...opts });
  }

  /** Drop the connection that sends the next audio frame: the TCP socket dies without a close frame. */
  dropNext(): void {
    this.dropOnNextAudio = true;
  }

  async close(): Promise<void> {
    for (const ws of this.wss.clients) ws.terminate();
    this.wss.close();
    await this.listening?.close();
  }

  private async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on('error', () => {});
    if (this.handshakeDelayMs) await sleep(this.handshakeDelayMs);
    if (socket.destroyed) return;
    const requestId = randomUUID();
    const url = new URL(req.url ?? '/', 'http://fake');
    const refuse = (status: number, code?: string, message?: string, retryAfter?: number) => {
      const known = REFUSALS[status] ?? {
        code: status >= 500 ? 'INTERNAL_SERVER_ERROR' : 'Bad Request',
        message: STATUS_CODES[status] ?? 'Error',
      };
      const msg = message ?? known.message;
      const body = JSON.stringify({ err_code: code ?? known.code, err_msg: msg, request_id: requestId });
      this.refusals.push({ url: req.url ?? '', status, message: msg });
      socket.end(
        `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
          `dg-request-id: ${requestId}\r\ndg-error: ${msg}\r\n${retryAfter !== undefined ? `retry-after: ${retryAfter}\r\n` : ''}connection: close\r\n\r\n${body}`,
      );
    };
    if (url.pathname !== '/v1/listen') return refuse(404);
    if (presentedKey(req.headers) !== this.apiKey) return refuse(401);
    const scripted = this.rejections.shift();
    if (scripted) return refuse(scripted.status, undefined, scripted.message, scripted.retryAfter);
    const problem = queryProblem(url.searchParams);
    if (problem) return refuse(400, 'Bad Request', problem);
    this.requestIds.set(req, requestId);
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      const record: FakeDeepgramConnection = {
        requestId,
        url: req.url ?? '',
        query: Object.fromEntries(url.searchParams),
        headers: req.headers,
        controls: [],
        keepAlives: 0,
        audioBytes: 0,
        audioMessages: 0,
        sent: [],
      };
      this.connections.push(record);
      new Listener(this, ws, record, url.searchParams);
    });
  }

  /** The next scripted transcript ('' once the script runs out: speech with no words). */
  nextTranscript(): string {
    return this.transcripts.shift() ?? '';
  }

  /** True once for the frame that should kill its connection. */
  takeDrop(): boolean {
    const drop = this.dropOnNextAudio;
    this.dropOnNextAudio = false;
    return drop;
  }
}

export function startFakeDeepgram(opts: FakeDeepgramOptions = {}): Promise<FakeDeepgram> {
  return new FakeDeepgram(opts).start();
}

function presentedKey(headers: IncomingHttpHeaders): string | undefined {
  const auth = /^token\s+(\S+)$/i.exec(headers.authorization ?? '');
  if (auth) return auth[1];
  const protocols = (headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
  return protocols.length === 2 && protocols[0]!.toLowerCase() === 'token' ? protocols[1] : undefined;
}

/** Deepgram refuses a bad query at the handshake (400) rather than after opening. */
function queryProblem(q: URLSearchParams): string | undefined {
  const isInt = (v: string) => /^\d+$/.test(v);
  const model = q.get('model');
  if (model !== null && !MODELS.has(model)) return 'No such model/language/tier combination found.';
  const encoding = q.get('encoding');
  if (encoding !== null && !ENCODINGS.has(encoding)) return `Invalid query string: unknown encoding \`${encoding}\`.`;
  const rate = q.get('sample_rate');
  if (rate !== null && (!isInt(rate) || Number(rate) === 0))
    return `Invalid query string: sample_rate \`${rate}\` is not a positive integer.`;
  if (encoding !== null && RAW_ENCODINGS.has(encoding) && rate === null)
    return `Invalid query string: sample_rate is required for encoding \`${encoding}\`.`;
  const channels = q.get('channels');
  if (channels !== null && (!isInt(channels) || Number(channels) === 0))
    return 'Invalid query string: channels must be a positive integer.';
  for (const name of BOOLEANS) {
    const v = q.get(name);
    if (v !== null && v !== 'true' && v !== 'false') return `Invalid query string: \`${name}\` must be true or false.`;
  }
  const endpointing = q.get('endpointing');
  if (endpointing !== null && !isInt(endpointing) && endpointing !== 'false' && endpointing !== 'true')
    return 'Invalid query string: endpointing must be an integer or false.';
  const utteranceEnd = q.get('utterance_end_ms');
  if (utteranceEnd !== null && !isInt(utteranceEnd)) return 'Invalid query string: utterance_end_ms must be an integer.';
  if (utteranceEnd !== null && q.get('interim_results') !== 'true')
    return 'Invalid query string: utterance_end_ms requires interim_results=true.';
  return undefined;
}

interface Utterance {
  words: string[];
  startMs: number;
  lastLoudEndMs: number;
  speechMs: number;
  nextInterimMs: number;
}

/** One connection's recognizer. Every time is audio time (samples received), as Deepgram's are. */
class Listener {
  private readonly encoding: string | null;
  private readonly sampleRate: number;
  private readonly endpointingMs: number | undefined;
  private readonly utteranceEndMs: number | undefined;
  private readonly modelUuid = randomUUID();
  private readonly audioHash = createHash('sha256');
  private carry = new Int16Array(0);
  private oddByte: Buffer = Buffer.alloc(0);
  private audioMs = 0;
  /** Where the next Results starts: the end of the last final one. */
  private segmentStartMs = 0;
  private utterance: Utterance | undefined;
  /** End of the last word heard, until UtteranceEnd reports it. */
  private lastWordEndMs: number | undefined;
  private idle: NodeJS.Timeout | undefined;
  /** When audio or a control message last came (performance.now()): the idle timer looks at it when it fires. */
  private lastHeardAt = 0;
  private closing = false;

  constructor(
    private readonly fake: FakeDeepgram,
    private readonly ws: WebSocket,
    private readonly record: FakeDeepgramConnection,
    private readonly q: URLSearchParams,
  ) {
    this.encoding = q.get('encoding');
    this.sampleRate = Number(q.get('sample_rate') ?? 16000);
    const endpointing = q.get('endpointing');
    // Deepgram's default endpointing is 10 ms; `false` turns it off.
    this.endpointingMs = endpointing === 'false' ? undefined : endpointing === null || endpointing === 'true' ? 10 : Number(endpointing);
    this.utteranceEndMs = q.get('utterance_end_ms') === null ? undefined : Number(q.get('utterance_end_ms'));
    this.resetIdle();
    if (fake.dropAfterMs !== undefined) setTimeout(() => this.drop(), fake.dropAfterMs).unref();
    // binaryType is nodebuffer: a message arrives as one Buffer.
    ws.on('message', (data: RawData, isBinary) => (isBinary ? this.onAudio(data as Buffer) : this.onText(String(data))));
    ws.on('close', (code, reason) => {
      clearTimeout(this.idle);
      record.closed ??= { code, reason: reason.toString() };
    });
  }

  private onAudio(data: Buffer): void {
    if (this.closing) return;
    // A zero-byte frame is the deprecated way to say CloseStream.
    if (data.length === 0) return this.closeStream();
    if (this.fake.takeDrop()) return this.drop();
    this.resetIdle();
    this.record.audioBytes += data.length;
    this.record.audioMessages++;
    this.audioHash.update(data);
    const pcm = this.decode(data);
    // Other encodings are accepted but not decoded by this fake: counted, never heard.
    if (!pcm) return;
    const size = (this.sampleRate * WINDOW_MS) / 1000;
    // Whole windows with nothing carried over (a phone's 20 ms frames) are heard as they came.
    if (!this.carry.length && pcm.length % size === 0) {
      for (let offset = 0; offset < pcm.length; offset += size) this.hear(pcm.subarray(offset, offset + size));
      return;
    }
    const joined = new Int16Array(this.carry.length + pcm.length);
    joined.set(this.carry);
    joined.set(pcm, this.carry.length);
    let offset = 0;
    for (; offset + size <= joined.length; offset += size) this.hear(joined.subarray(offset, offset + size));
    this.carry = joined.slice(offset);
  }

  private decode(data: Buffer): Int16Array | undefined {
    if (this.encoding === 'mulaw') return muLawDecode(data);
    if (this.encoding !== 'linear16') return undefined;
    // Frames may split a sample: an odd byte waits for its partner.
    const bytes = this.oddByte.length ? Buffer.concat([this.oddByte, data]) : data;
    const even = bytes.length - (bytes.length % 2);
    this.oddByte = Buffer.from(bytes.subarray(even));
    const pcm = new Int16Array(even / 2);
    for (let i = 0; i < pcm.length; i++) pcm[i] = bytes.readInt16LE(i * 2);
    return pcm;
  }

  /** One 20 ms window of audio. */
  private hear(pcm: Int16Array): void {
    const start = this.audioMs;
    const end = (this.audioMs += WINDOW_MS);
    if (dbfs(pcm) > SPEECH_DBFS) {
      if (!this.utterance) {
        const text = this.fake.nextTranscript();
        this.utterance = {
          words: text ? text.split(/\s+/) : [],
          startMs: start,
          lastLoudEndMs: end,
          speechMs: 0,
          nextInterimMs: start + this.fake.interimEveryMs,
        };
        if (this.flag('vad_events')) this.send({ type: 'SpeechStarted', channel: [0, 1], timestamp: start / 1000 });
      }
      const u = this.utterance;
      u.lastLoudEndMs = end;
      u.speechMs += WINDOW_MS;
      if (u.words.length) this.lastWordEndMs = end;
      if (this.flag('interim_results') && end >= u.nextInterimMs && u.words.length) {
        u.nextInterimMs += this.fake.interimEveryMs;
        const heard = Math.min(u.words.length, Math.max(1, Math.round(u.speechMs / MS_PER_WORD)));
        this.send(this.results({ isFinal: false, words: u.words.slice(0, heard), from: u.startMs, to: end }));
      }
      return;
    }
    if (this.utterance && this.endpointingMs !== undefined && end - this.utterance.lastLoudEndMs >= this.endpointingMs)
      this.finalize({ speechFinal: true });
    if (this.lastWordEndMs !== undefined && this.utteranceEndMs !== undefined && end - this.lastWordEndMs >= this.utteranceEndMs) {
      this.send({ type: 'UtteranceEnd', channel: [0, 1], last_word_end: this.lastWordEndMs / 1000 });
      this.lastWordEndMs = undefined;
    }
  }

  private onText(text: string): void {
    if (this.closing) return;
    let type: unknown;
    try {
      type = (JSON.parse(text) as { type?: unknown } | null)?.type;
    } catch {
      return this.closeWith(1008, 'Invalid control message: not JSON.');
    }
    if (type !== 'KeepAlive' && type !== 'Finalize' && type !== 'CloseStream')
      return this.closeWith(1008, `Invalid control message type \`${String(type)}\`.`);
    this.resetIdle();
    this.record.controls.push(type);
    if (type === 'KeepAlive') this.record.keepAlives++;
    else if (type === 'Finalize') this.finalize({ speechFinal: false, fromFinalize: true, always: true });
    else this.closeStream();
  }

  /** Fixes what was heard since the last final result; Finalize answers even when nothing was pending. */
  private finalize(opts: { speechFinal: boolean; fromFinalize?: boolean; always?: boolean; now?: boolean }): void {
    const u = this.utterance;
    if (!u && !opts.always) return;
    const end = this.audioMs;
    const final = this.results({
      isFinal: true,
      speechFinal: opts.speechFinal,
      fromFinalize: opts.fromFinalize,
      words: u?.words ?? [],
      from: u?.startMs ?? end,
      to: u?.lastLoudEndMs ?? end,
      end,
    });
    // Late only when a latency is set (and not before CloseStream's Metadata); lost if the connection ends first.
    if (this.fake.finalLatencyMs > 0 && !opts.now) {
      setTimeout(() => {
        if (this.ws.readyState === this.ws.OPEN && !this.closing) this.send(final);
      }, this.fake.finalLatencyMs);
    } else this.send(final);
    this.segmentStartMs = end;
    this.utterance = undefined;
  }

  private closeStream(): void {
    this.finalize({ speechFinal: true, now: true });
    this.closing = true;
    this.send({
      type: 'Metadata',
      transaction_key: 'deprecated',
      request_id: this.record.requestId,
      sha256: this.audioHash.digest('hex'),
      created: new Date().toISOString(),
      duration: this.audioMs / 1000,
      channels: 1,
      models: [this.modelUuid],
      model_info: { [this.modelUuid]: this.modelInfo() },
    });
    this.closeWith(1000, '');
  }

  /** A Results message for `words` spread evenly over [from, to], covering the audio from the segment start. */
  private results(r: {
    isFinal: boolean;
    speechFinal?: boolean;
    fromFinalize?: boolean;
    words: string[];
    from: number;
    to: number;
    end?: number;
  }): Record<string, unknown> {
    const punctuated = this.flag('smart_format') || this.flag('punctuate');
    const step = r.words.length ? (r.to - r.from) / r.words.length : 0;
    const words = r.words.map((w, i) => ({
      word: w.toLowerCase().replace(/[^\p{L}\p{N}']/gu, ''),
      start: (r.from + i * step) / 1000,
      end: (r.from + (i + 1) * step) / 1000,
      confidence: r.isFinal ? 0.98 : 0.85,
      ...(punctuated ? { punctuated_word: w } : {}),
    }));
    const end = r.end ?? r.to;
    return {
      type: 'Results',
      channel_index: [0, 1],
      duration: (end - this.segmentStartMs) / 1000,
      start: this.segmentStartMs / 1000,
      is_final: r.isFinal,
      speech_final: r.speechFinal ?? false,
      ...(r.fromFinalize ? { from_finalize: true } : {}),
      channel: {
        alternatives: [
          {
            transcript: words.map((w) => (punctuated ? w.punctuated_word : w.word)).join(' '),
            confidence: words.length ? (r.isFinal ? 0.97 : 0.84) : 0,
            words,
          },
        ],
      },
      metadata: { request_id: this.record.requestId, model_uuid: this.modelUuid, model_info: this.modelInfo() },
    };
  }

  private modelInfo() {
    const model = this.q.get('model') ?? 'base';
    return { name: `general-${model}`, version: '2025-01-01.0', arch: model.split('-').slice(0, 2).join('-') };
  }

  private flag(name: string): boolean {
    return this.q.get(name) === 'true';
  }

  private send(message: Record<string, unknown>): void {
    this.record.sent.push(message);
    this.ws.send(JSON.stringify(message));
  }

  /**
   * Audio or a control message came: the idle close moves back. The timer is not reset for each message (50 a
   * second per connection, enough timer work to count in a benchmark with 150 calls): it checks when it fires.
   */
  private resetIdle(): void {
    this.lastHeardAt = performance.now();
    if (!this.idle) this.armIdle(this.fake.idleTimeoutMs);
  }

  private armIdle(ms: number): void {
    this.idle = setTimeout(() => {
      const left = this.lastHeardAt + this.fake.idleTimeoutMs - performance.now();
      if (left > 0) this.armIdle(left);
      else this.closeWith(1011, NET_0001);
    }, ms);
    this.idle.unref();
  }

  private closeWith(code: number, reason: string): void {
    clearTimeout(this.idle);
    this.closing = true;
    this.record.closed ??= { code, reason };
    this.ws.close(code, reason);
  }

  private drop(): void {
    clearTimeout(this.idle);
    this.closing = true;
    this.record.closed ??= { code: 1006, reason: 'dropped by the fake' };
    this.ws.terminate();
  }
}
