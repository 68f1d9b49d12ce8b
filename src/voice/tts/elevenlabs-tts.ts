// ElevenLabs text-to-speech over its documented HTTP streaming protocol: POST /v1/text-to-speech/{voice}/stream
// with `output_format` in the query and `xi-api-key`; the body streams raw audio as it is generated. Phone calls
// ask for ulaw_8000 (decoded here to PCM), web calls for pcm_16000.
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { closedWhileReused } from '../../lib/outbound.js';
import { httpProviderError, ProviderError } from '../../lib/provider-error.js';
import { type AudioFrame, durationMs, muLawDecode } from '../audio.js';
import type { TTS } from './tts.js';

export interface ElevenLabsOptions {
  apiKey: string;
  voiceId: string;
  /** 8000 (ulaw_8000) or 16000/22050/24000 (pcm_*). */
  sampleRate: 8000 | 16000 | 22050 | 24000;
  model?: string;
  baseUrl?: string;
  timeoutMs?: number;
}

export class ElevenLabsTts implements TTS {
  readonly provider = 'elevenlabs';
  readonly sampleRate: number;
  private readonly format: string;

  constructor(private readonly opts: ElevenLabsOptions) {
    this.sampleRate = opts.sampleRate;
    this.format = opts.sampleRate === 8000 ? 'ulaw_8000' : `pcm_${opts.sampleRate}`;
  }

  async *synthesize(text: string, opts: { signal?: AbortSignal } = {}): AsyncIterable<AudioFrame> {
    if (!text.trim()) return;
    if (opts.signal?.aborted) return;
    const url = new URL(
      `${(this.opts.baseUrl ?? 'https://api.elevenlabs.io').replace(/\/$/, '')}/v1/text-to-speech/${encodeURIComponent(this.opts.voiceId)}/stream?output_format=${this.format}`,
    );
    const body = JSON.stringify({ text, model_id: this.opts.model ?? 'eleven_flash_v2_5' });
    const call = new Call(opts.signal, this.opts.timeoutMs ?? 15_000);
    let res: IncomingMessage | undefined;
    try {
      try {
        res = await this.post(url, body, call);
      } catch (err) {
        if (opts.signal?.aborted) return;
        throw new ProviderError('elevenlabs', `request failed: ${call.why(err)}`, true);
      }
      const status = res.statusCode ?? 502;
      if (status < 200 || status > 299) {
        // The first 300 characters: a longer body is not read to its end (end() then closes the connection).
        let detail = '';
        try {
          for await (const c of res) if ((detail += String(c)).length >= 300) break;
        } catch {
          // What the error said is a courtesy: the status is the answer.
        }
        throw httpProviderError('elevenlabs', status, detail.slice(0, 300), res.headers['retry-after']);
      }
      // PCM arrives in arbitrary byte chunks: an odd byte waits for its partner.
      let carry: Uint8Array = new Uint8Array(0);
      let samples = 0;
      try {
        for await (const chunk of res as AsyncIterable<Buffer>) {
          if (opts.signal?.aborted) return;
          let pcm: Int16Array;
          if (this.format === 'ulaw_8000') pcm = muLawDecode(chunk);
          else {
            const bytes = carry.length ? Buffer.concat([carry, chunk]) : chunk;
            const even = bytes.length - (bytes.length % 2);
            carry = bytes.slice(even);
            pcm = new Int16Array(Uint8Array.from(bytes.subarray(0, even)).buffer);
          }
          if (pcm.length === 0) continue;
          yield { pcm, sampleRate: this.sampleRate, timestampMs: durationMs(samples, this.sampleRate) };
          samples += pcm.length;
        }
      } catch (err) {
        if (opts.signal?.aborted) return;
        throw new ProviderError('elevenlabs', `stream broke: ${call.why(err)}`, true);
      }
    } finally {
      call.end(res?.complete === true);
    }
  }

  /**
   * The request, on a kept-alive connection when one is free. A kept-alive connection the server closed just as
   * this request went out fails before any answer (closedWhileReused); that request never reached the synthesis, so
   * it is sent once more on a new connection.
   */
  private post(url: URL, body: string, call: Call, retried = false): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      let answered = false;
      const req = (url.protocol === 'https:' ? https : http).request(
        url,
        {
          method: 'POST',
          agent: url.protocol === 'https:' ? AGENTS.https : AGENTS.http,
          headers: {
            'xi-api-key': this.opts.apiKey,
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
            accept: this.format.startsWith('ulaw') ? 'audio/basic' : 'audio/pcm',
          },
        },
        (res) => {
          answered = true;
          resolve(res);
        },
      );
      call.attach(req);
      req.on('error', (err: NodeJS.ErrnoException) => {
        // Once the answer has begun, a lost connection is the stream's failure (synthesize reports it), never a resend.
        if (!answered && !retried && closedWhileReused(req, err) && !call.done) resolve(this.post(url, body, call, true));
        else reject(err);
      });
      req.end(body);
    });
  }
}

/**
 * Connections to ElevenLabs kept open between sentences (a reply is a few requests a second). node:http rather than
 * fetch: a sentence's request cost the event loop 0.8 ms of CPU through fetch and 0.3 ms this way, and a burst of
 * turns at a hundred calls sends hundreds of them within a second or two.
 */
const AGENTS = { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) };

/** One synthesis: its deadline, the caller's abort, and the request they end (the one being sent, after a retry). */
class Call {
  done = false;
  private req: http.ClientRequest | undefined;
  private timedOut = false;
  private readonly timer: NodeJS.Timeout;
  private readonly onAbort = () => this.stop();

  constructor(
    private readonly signal: AbortSignal | undefined,
    timeoutMs: number,
  ) {
    this.timer = setTimeout(() => {
      this.timedOut = true;
      this.stop();
    }, timeoutMs);
    signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  attach(req: http.ClientRequest): void {
    this.req = req;
    if (this.done) req.destroy();
  }

  /** What went wrong, in words: the deadline, or the error. */
  why(err: unknown): string {
    return this.timedOut ? 'timed out' : (err as Error).message;
  }

  private stop(): void {
    this.done = true;
    this.req?.destroy();
  }

  /**
   * `complete`: the answer was read to its end, so its connection goes back to the agent for the next sentence. An
   * answer left early (the caller stopped reading, an error's long body) would hold it: it is closed, not reused.
   */
  end(complete: boolean): void {
    clearTimeout(this.timer);
    this.signal?.removeEventListener('abort', this.onAbort);
    if (!complete && !this.done) this.req?.destroy();
    this.done = true;
  }
}
