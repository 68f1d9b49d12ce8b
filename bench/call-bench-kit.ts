// What the benchmarks that run phone calls against a service process share: the caller's speech and a free port.
import { createServer } from 'node:net';
import { dbfs, toFrames } from '../src/voice/audio.js';
import { EspeakTts } from '../src/voice/tts/espeak-tts.js';

/** espeak-ng speech at 8 kHz without its leading and trailing silence: the caller's speech ends when the audio does. */
export async function utterance(text: string): Promise<Int16Array> {
  const parts: Int16Array[] = [];
  for await (const f of new EspeakTts({ sampleRate: 8000, voice: 'en-us+klatt', wordsPerMinute: 170 }).synthesize(text)) parts.push(f.pcm);
  const pcm = new Int16Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((at, p) => (pcm.set(p, at), at + p.length), 0);
  const frames = toFrames(pcm, 8000);
  const loud = frames.map((f) => dbfs(f.pcm) > -40);
  return pcm.slice(loud.indexOf(true) * frames[0]!.pcm.length, (loud.lastIndexOf(true) + 1) * frames[0]!.pcm.length);
}

/** A TCP port nobody listens on at the moment (for the service process to take). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  await new Promise((r) => server.close(r));
  if (!address || typeof address === 'string') throw new Error('no free port');
  return address.port;
}

/** The clinic agent's call settings in the in-process media-path benchmarks (the tenant defaults bench:calls uses). */
export const CLINIC_BEHAVIOUR = {
  greeting: 'Hello, Sunrise clinic. How can I help?',
  endpointingMs: 700,
  adaptiveEndpointing: true,
  maxDurationMs: 600_000,
  silencePromptMs: 12_000,
  minInterruptionMs: 400,
};
