// A local fake of ElevenLabs' HTTP streaming text-to-speech: xi-api-key, known voices and models, output_format
// in the query, JSON errors with a `detail` object, and raw audio (pcm_* little-endian 16-bit, or ulaw_8000)
// streamed in chunks after a configurable first-byte delay. It rejects what the real service rejects.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { muLawEncode } from '../../src/voice/audio.js';
import { listenLocal, type LocalServer } from './local-server.js';

const FORMATS: Record<string, { rate: number; ulaw: boolean }> = {
  ulaw_8000: { rate: 8000, ulaw: true },
  pcm_8000: { rate: 8000, ulaw: false },
  pcm_16000: { rate: 16000, ulaw: false },
  pcm_22050: { rate: 22050, ulaw: false },
  pcm_24000: { rate: 24000, ulaw: false },
};
const MODELS = new Set(['eleven_flash_v2_5', 'eleven_turbo_v2_5', 'eleven_multilingual_v2']);

export class FakeElevenLabs {
  readonly apiKey = `el-test-${randomUUID()}`;
  readonly voiceId = 'voice-rachel';
  readonly requests: { url: string; body: Record<string, unknown> }[] = [];
  baseUrl = '';
  firstByteMs = 0;
  /** Drop the connection after this many bytes of audio (a broken stream). */
  dropAfterBytes: number | undefined;
  private failures: { status: number; retryAfterS?: number }[] = [];
  /** Requests still to be answered by closing the connection unanswered (a kept-alive connection timing out). */
  private hangUps = 0;
  private listening?: LocalServer;
  /** The tone for each length and format made so far: a benchmark asks for the same sentences thousands of times. */
  private readonly audioCache = new Map<string, Buffer>();

  failNext(...f: { status: number; retryAfterS?: number }[]): void {
    this.failures.push(...f);
  }

  /** The next `n` requests are read and then the connection is closed without an answer. */
  hangUpNext(n = 1): void {
    this.hangUps += n;
  }

  async start(): Promise<this> {
    this.listening = await listenLocal(createServer((req, res) => void this.handle(req, res)));
    this.baseUrl = this.listening.origin;
    return this;
  }

  async stop(): Promise<void> {
    await this.listening?.close();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const fail = (status: number, detail: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ detail }));
    };
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    if (this.hangUps > 0) {
      this.hangUps--;
      return void req.socket.destroy();
    }
    const url = new URL(req.url ?? '/', 'http://x');
    const match = /^\/v1\/text-to-speech\/([^/]+)\/stream$/.exec(url.pathname);
    if (req.method !== 'POST' || !match) return fail(404, 'Not Found');
    if (req.headers['xi-api-key'] !== this.apiKey) return fail(401, { status: 'invalid_api_key', message: 'Invalid API key' });
    const scripted = this.failures.shift();
    if (scripted) {
      if (scripted.retryAfterS !== undefined) res.setHeader('retry-after', String(scripted.retryAfterS));
      return fail(scripted.status, {
        status: scripted.status === 429 ? 'too_many_concurrent_requests' : 'internal_error',
        message: 'Try again later',
      });
    }
    if (decodeURIComponent(match[1]!) !== this.voiceId)
      return fail(404, { status: 'voice_not_found', message: 'A voice with the voice_id was not found.' });
    const format = url.searchParams.get('output_format') ?? 'mp3_44100_128';
    const spec = FORMATS[format];
    if (!spec)
      return fail(422, [
        { loc: ['query', 'output_format'], msg: `Unsupported output format ${format} for this fake`, type: 'value_error' },
      ]);
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      return fail(400, { status: 'invalid_json', message: 'Invalid JSON body' });
    }
    this.requests.push({ url: req.url ?? '', body });
    if (typeof body.text !== 'string' || !body.text.trim())
      return fail(422, [{ loc: ['body', 'text'], msg: 'Field required', type: 'missing' }]);
    if (body.model_id !== undefined && !MODELS.has(body.model_id as string))
      return fail(400, { status: 'model_not_found', message: 'A model with the model_id was not found.' });

    if (this.firstByteMs) await sleep(this.firstByteMs);
    // About 70 ms of speech per character, as a voiced tone.
    const samples = Math.round(body.text.length * 0.07 * spec.rate);
    const key = `${format}:${samples}`;
    let audio = this.audioCache.get(key);
    if (!audio) {
      const pcm = Int16Array.from({ length: samples }, (_, i) => Math.round(6000 * Math.sin((2 * Math.PI * 200 * i) / spec.rate)));
      audio = spec.ulaw ? Buffer.from(muLawEncode(pcm)) : Buffer.from(pcm.buffer);
      this.audioCache.set(key, audio);
    }
    res.writeHead(200, { 'content-type': spec.ulaw ? 'audio/basic' : 'audio/pcm', 'transfer-encoding': 'chunked' });
    // Odd-sized chunks, as a network delivers them.
    for (let offset = 0; offset < audio.length; offset += 4001) {
      if (this.dropAfterBytes !== undefined && offset >= this.dropAfterBytes) return void res.socket?.destroy();
      res.write(audio.subarray(offset, offset + 4001));
      await new Promise((r) => setImmediate(r));
    }
    res.end();
  }
}
