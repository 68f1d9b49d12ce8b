// ElevenLabs streaming TTS against the local fake of its HTTP protocol.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeElevenLabs } from '../../../test/fakes/elevenlabs.js';
import { concatPcm, type AudioFrame } from '../audio.js';
import { ElevenLabsTts } from './elevenlabs-tts.js';

let fake: FakeElevenLabs;
beforeAll(async () => {
  fake = await new FakeElevenLabs().start();
});
afterAll(() => fake.stop());

const tts = (extra: Partial<ConstructorParameters<typeof ElevenLabsTts>[0]> = {}) =>
  new ElevenLabsTts({ apiKey: fake.apiKey, voiceId: fake.voiceId, sampleRate: 16000, baseUrl: fake.baseUrl, ...extra });
async function collect(t: ElevenLabsTts, text: string, signal?: AbortSignal) {
  const frames: AudioFrame[] = [];
  for await (const f of t.synthesize(text, { signal })) frames.push(f);
  return frames;
}

describe('ElevenLabsTts (HTTP streaming, fake server)', () => {
  it('streams pcm_16000 in pieces, joining odd byte splits, with running timestamps', async () => {
    const frames = await collect(tts(), 'Your table is booked for eight.');
    const pcm = concatPcm(frames.map((f) => f.pcm));
    expect(frames.length).toBeGreaterThan(2);
    expect(pcm.length).toBe(Math.round(31 * 0.07 * 16000));
    // The tone survives byte splits: no sample is garbage (the fake's amplitude is 6000).
    expect(Math.max(...pcm.map(Math.abs))).toBeLessThanOrEqual(6000);
    expect(frames[1]!.timestampMs).toBeGreaterThan(0);
    expect(fake.requests.at(-1)).toMatchObject({ body: { text: 'Your table is booked for eight.', model_id: 'eleven_flash_v2_5' } });
    expect(fake.requests.at(-1)!.url).toContain('output_format=pcm_16000');
  });

  it('asks for ulaw_8000 on phone calls and decodes it', async () => {
    const frames = await collect(tts({ sampleRate: 8000 }), 'Hello.');
    expect(frames.every((f) => f.sampleRate === 8000)).toBe(true);
    expect(concatPcm(frames.map((f) => f.pcm)).length).toBe(Math.round(6 * 0.07 * 8000));
    expect(fake.requests.at(-1)!.url).toContain('output_format=ulaw_8000');
  });

  it('maps failures: bad key and unknown voice are permanent, 429 retryable with Retry-After, a dropped stream retryable', async () => {
    await expect(collect(tts({ apiKey: 'wrong' }), 'Hi.')).rejects.toMatchObject({ status: 401, retryable: false });
    await expect(collect(tts({ voiceId: 'nobody' }), 'Hi.')).rejects.toMatchObject({ status: 404, retryable: false });
    fake.failNext({ status: 429, retryAfterS: 2 });
    await expect(collect(tts(), 'Hi.')).rejects.toMatchObject({ status: 429, retryable: true, retryAfterMs: 2000 });
    fake.dropAfterBytes = 8000;
    const before = fake.requests.length;
    await expect(collect(tts(), 'A long sentence that will be cut off in the middle of its audio stream.')).rejects.toMatchObject({
      retryable: true,
    });
    fake.dropAfterBytes = undefined;
    // A connection lost after the answer began is not sent again here (the audio so far was already played): one request.
    await new Promise((r) => setTimeout(r, 50));
    expect(fake.requests.length).toBe(before + 1);
  });

  it('sends a request again when the kept-alive connection it went out on was closed, once', async () => {
    // A first request leaves a connection open; the server then closes it as the next request arrives.
    await collect(tts({ sampleRate: 8000 }), 'Hello.');
    const before = fake.requests.length;
    fake.hangUpNext();
    const frames = await collect(tts({ sampleRate: 8000 }), 'Hello again.');
    expect(concatPcm(frames.map((f) => f.pcm)).length).toBe(Math.round(12 * 0.07 * 8000));
    expect(fake.requests.length).toBe(before + 1);
    // Closed again on the new connection: that is an answer, and the error says so (retryable by the caller).
    fake.hangUpNext(2);
    await expect(collect(tts({ sampleRate: 8000 }), 'Hello.')).rejects.toMatchObject({
      retryable: true,
      message: expect.stringContaining('socket hang up'),
    });
  });

  it('gives up at its deadline', async () => {
    fake.firstByteMs = 2000;
    await expect(collect(tts({ timeoutMs: 100 }), 'Too slow.')).rejects.toMatchObject({
      retryable: true,
      message: expect.stringContaining('timed out'),
    });
    fake.firstByteMs = 0;
  });

  it('stops quietly when aborted', async () => {
    fake.firstByteMs = 300;
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    expect(await collect(tts(), 'Never heard.', controller.signal)).toEqual([]);
    fake.firstByteMs = 0;
  });
});
