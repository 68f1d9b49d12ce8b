// ElevenLabs text-to-speech over its documented HTTP streaming protocol: POST /v1/text-to-speech/{voice}/stream
// with `output_format` in the query and `xi-api-key`; the body streams raw audio as it is generated. Phone calls
// ask for ulaw_8000 (decoded here to PCM), web calls for pcm_16000.
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
    const url = `${(this.opts.baseUrl ?? 'https://api.elevenlabs.io').replace(/\/$/, '')}/v1/text-to-speech/${encodeURIComponent(this.opts.voiceId)}/stream?output_format=${this.format}`;
    const signal = AbortSignal.any([opts.signal ?? new AbortController().signal, AbortSignal.timeout(this.opts.timeoutMs ?? 15_000)]);
    let res: Response;
    try {
      res = await fetch(url, {
        method: 'POST',
        headers: {
          'xi-api-key': this.opts.apiKey,
          'content-type': 'application/json',
          accept: this.format.startsWith('ulaw') ? 'audio/basic' : 'audio/pcm',
        },
        body: JSON.stringify({ text, model_id: this.opts.model ?? 'eleven_flash_v2_5' }),
        signal,
      });
    } catch (err) {
      if (opts.signal?.aborted) return;
      throw new ProviderError('elevenlabs', `request failed: ${(err as Error).message}`, true);
    }
    if (!res.ok || !res.body) {
      const detail = await res.text().catch(() => '');
      throw httpProviderError('elevenlabs', res.status, detail.slice(0, 300), res.headers.get('retry-after'));
    }
    // PCM arrives in arbitrary byte chunks: an odd byte waits for its partner.
    let carry: Uint8Array = new Uint8Array(0);
    let samples = 0;
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
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
      throw new ProviderError('elevenlabs', `stream broke: ${(err as Error).message}`, true);
    }
  }
}
