// Local TTS: espeak-ng (Debian package `espeak-ng`), no network, no model download. One process per sentence:
// espeak synthesizes a sentence in tens of milliseconds, so the whole sentence is read, resampled once to the
// call's rate (band-limited, no seams between chunks) and handed out in 100 ms pieces. The processes of every call
// share one Semaphore (`slots`): an instance runs a few at a time however many calls speak at once.
import { spawn } from 'node:child_process';
import { ProviderError } from '../../lib/provider-error.js';
import { type AudioFrame, durationMs, parseWav, resample } from '../audio.js';
import type { Semaphore } from '../../lib/semaphore.js';
import type { TTS } from './tts.js';

export interface EspeakOptions {
  /** Output rate: the transport's (8000 for phone calls, 16000 for web). */
  sampleRate: number;
  /** espeak-ng voice, e.g. en-us, en-gb, fr. */
  voice?: string;
  /** Words per minute. */
  wordsPerMinute?: number;
  binary?: string;
  /** The slots every espeak-ng process of this instance takes one of (LOCAL_TTS_CONCURRENCY); unbounded without. */
  slots?: Semaphore;
}

const PIECE_MS = 100;

export class EspeakTts implements TTS {
  readonly provider = 'local';
  readonly sampleRate: number;

  constructor(private readonly opts: EspeakOptions) {
    this.sampleRate = opts.sampleRate;
  }

  async *synthesize(text: string, opts: { signal?: AbortSignal } = {}): AsyncIterable<AudioFrame> {
    if (!text.trim()) return;
    const wav = this.opts.slots
      ? await this.opts.slots
          .run(() => this.run(text, opts.signal), opts.signal)
          .catch((err: unknown) => {
            // Interrupted while waiting for a slot: nothing to say, like an abort during synthesis.
            if (opts.signal?.aborted) return Buffer.alloc(0);
            throw err;
          })
      : await this.run(text, opts.signal);
    if (opts.signal?.aborted) return;
    const { pcm, sampleRate } = parseWav(wav);
    const out = resample(pcm, sampleRate, this.sampleRate);
    const size = (this.sampleRate * PIECE_MS) / 1000;
    for (let offset = 0; offset < out.length; offset += size) {
      if (opts.signal?.aborted) return;
      yield { pcm: out.slice(offset, offset + size), sampleRate: this.sampleRate, timestampMs: durationMs(offset, this.sampleRate) };
    }
  }

  private run(text: string, signal?: AbortSignal): Promise<Buffer> {
    if (signal?.aborted) return Promise.resolve(Buffer.alloc(0));
    return new Promise((resolve, reject) => {
      // Text goes in on stdin, never on the command line: no option injection, no length limit.
      const child = spawn(
        this.opts.binary ?? 'espeak-ng',
        ['--stdout', '-v', this.opts.voice ?? 'en-us', '-s', String(this.opts.wordsPerMinute ?? 165)],
        {
          stdio: ['pipe', 'pipe', 'pipe'],
          signal,
        },
      );
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on('data', (c: Buffer) => out.push(c));
      child.stderr.on('data', (c: Buffer) => err.push(c));
      child.on('error', (e: NodeJS.ErrnoException) => {
        // Aborted (barge-in): settled by 'close' once the process is really gone, so that its slot is not handed
        // to the next sentence while it still runs.
        if (e.name === 'AbortError') return;
        reject(
          new ProviderError(
            'local',
            e.code === 'ENOENT' ? 'espeak-ng is not installed (Debian package espeak-ng)' : `espeak-ng failed: ${e.message}`,
            false,
          ),
        );
      });
      child.on('close', (code) => {
        if (signal?.aborted) return resolve(Buffer.alloc(0));
        if (code !== 0)
          return reject(new ProviderError('local', `espeak-ng exited with ${code}: ${Buffer.concat(err).toString().trim()}`, false));
        resolve(Buffer.concat(out));
      });
      // A process killed (abort) before it read its text: the write fails, and 'close' says what happened.
      child.stdin.on('error', () => {});
      child.stdin.end(text);
    });
  }
}
