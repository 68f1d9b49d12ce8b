// Deepgram live STT against the local fake of its websocket protocol, fed with real speech from espeak-ng.
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { type FakeDeepgram, startFakeDeepgram } from '../../../test/fakes/deepgram.js';
import { ProviderError } from '../../lib/provider-error.js';
import { concatPcm, muLawEncode, resample, toFrames } from '../audio.js';
import { EspeakTts } from '../tts/espeak-tts.js';
import { DeepgramStt, type DeepgramSttOptions } from './deepgram-stt.js';
import type { SttEvent, SttStream } from './stt.js';

const RATE = 16000;
const START_MS = 5000; // the stream starts mid-call: event times must be on the caller's timeline
let fake: FakeDeepgram;
let one: Int16Array; // "I need to book a table."
let two: Int16Array; // "For two people at eight."

async function speak(text: string): Promise<Int16Array> {
  const parts: Int16Array[] = [];
  for await (const f of new EspeakTts({ sampleRate: RATE }).synthesize(text)) parts.push(f.pcm);
  const pcm = concatPcm(parts);
  // Trim espeak's own leading and trailing quiet so the test knows exactly where speech is.
  const loud = (s: number) => Math.abs(s) > 500;
  return pcm.slice(pcm.findIndex(loud), pcm.findLastIndex(loud) + 1);
}
const silence = (ms: number) => new Int16Array((RATE * ms) / 1000);
const ms = (pcm: Int16Array) => (pcm.length * 1000) / RATE;

beforeAll(async () => {
  [fake, one, two] = await Promise.all([
    startFakeDeepgram({ interimEveryMs: 500 }),
    speak('I need to book a table.'),
    speak('For two people at eight.'),
  ]);
});
afterAll(() => fake.close());
afterEach(() => {
  fake.idleTimeoutMs = 10_000;
  fake.handshakeDelayMs = 0;
});

const stt = (extra: Partial<DeepgramSttOptions> = {}) =>
  new DeepgramStt({ apiKey: fake.apiKey, sampleRate: RATE, baseUrl: fake.url, ...extra });

/** 20 ms frames at ten times real pace. */
async function pushPaced(stream: SttStream, pcm: Int16Array, startMs = START_MS): Promise<void> {
  const frames = toFrames(pcm, RATE, startMs);
  for (let i = 0; i < frames.length; i++) {
    stream.push(frames[i]!);
    if (i % 10 === 9) await sleep(20);
  }
}
async function collect(events: AsyncIterable<SttEvent>): Promise<SttEvent[]> {
  const out: SttEvent[] = [];
  for await (const e of events) out.push(e);
  return out;
}
/** Reads events until one of `type` arrives. */
async function until<T extends SttEvent['type']>(it: AsyncIterator<SttEvent>, type: T): Promise<Extract<SttEvent, { type: T }>> {
  for (;;) {
    const r = await it.next();
    if (r.done) throw new Error(`stream ended before a ${type} event`);
    if (r.value.type === type) return r.value as Extract<SttEvent, { type: T }>;
  }
}
const latest = () => fake.connections.at(-1)!;
async function opened(count: number): Promise<void> {
  while (fake.connections.length < count) await sleep(5);
}

describe('DeepgramStt (live websocket, fake server)', () => {
  it('turns two spoken utterances into speech-start, interims, finals with end of turn, and speech-end on the call timeline', async () => {
    fake.transcripts = ['I need to book a table.', 'For two people at eight.'];
    const stream = stt().stream({});
    const events = collect(stream.events);
    await pushPaced(stream, concatPcm([silence(300), one, silence(1500), two, silence(1500)]));
    await stream.close();
    const got = await events;

    const kinds = got.map((e) => e.type).filter((t, i, all) => t !== 'interim' || all[i - 1] !== 'interim');
    expect(kinds).toEqual(['speech-start', 'interim', 'final', 'speech-end', 'speech-start', 'interim', 'final', 'speech-end']);
    const oneStart = START_MS + 300;
    const oneEnd = oneStart + ms(one);
    const twoStart = oneEnd + 1500;
    const twoEnd = twoStart + ms(two);
    const [start1, start2] = got.filter((e) => e.type === 'speech-start');
    const [end1, end2] = got.filter((e) => e.type === 'speech-end');
    const [final1, final2] = got.filter((e) => e.type === 'final');
    expect(start1!.atMs).toBeCloseTo(oneStart, -2);
    expect(start2!.atMs).toBeCloseTo(twoStart, -2);
    expect(end1!.atMs).toBeCloseTo(oneEnd, -2);
    expect(end2!.atMs).toBeCloseTo(twoEnd, -2);
    expect(final1).toMatchObject({ text: 'I need to book a table.', startMs: START_MS, endOfTurn: true });
    expect(final1!.confidence).toBeGreaterThan(0.9);
    // Endpointing: the final closes 300 ms of silence after the words; the next one starts where it ended.
    expect(final1!.endMs).toBeCloseTo(oneEnd + 300, -2);
    expect(final2).toMatchObject({ text: 'For two people at eight.', startMs: final1!.endMs, endOfTurn: true });
    expect(final2!.endMs).toBeCloseTo(twoEnd + 300, -2);
    const interims = got.filter((e) => e.type === 'interim');
    expect(interims.every((e) => e.atMs > oneStart && e.atMs < twoEnd)).toBe(true);
    expect('I need to book a table.').toContain(interims[0]!.text);
  });

  it('passes on a final without words (a noise, a cough) as an empty final: that audio is done with', async () => {
    fake.transcripts = []; // the fake hears speech but has no words for it, as Deepgram with a cough
    const stream = stt().stream({});
    const events = collect(stream.events);
    await pushPaced(stream, concatPcm([silence(300), one, silence(1500)]));
    await stream.close();
    const finals = (await events).filter((e) => e.type === 'final');
    expect(finals).toHaveLength(1);
    expect(finals[0]).toMatchObject({ text: '', startMs: START_MS, endOfTurn: true });
    expect(finals[0]!.endMs).toBeCloseTo(START_MS + 300 + ms(one) + 300, -2);
  });

  it('asks Deepgram for exactly our audio format and features, with the key in the Authorization header', async () => {
    const stream = new DeepgramStt({ apiKey: fake.apiKey, sampleRate: 8000, model: 'nova-2-phonecall', baseUrl: `${fake.url}/` }).stream({
      language: 'en-US',
    });
    const count = fake.connections.length;
    stream.push({ pcm: new Int16Array(160), sampleRate: 8000, timestampMs: 0 });
    await opened(count + 1);
    expect(latest().url).toBe(
      '/v1/listen?model=nova-2-phonecall&language=en-US&encoding=linear16&sample_rate=8000&channels=1&interim_results=true&endpointing=300&utterance_end_ms=1000&vad_events=true&smart_format=true',
    );
    expect(latest().headers.authorization).toBe(`Token ${fake.apiKey}`);
    await stream.close();
  });

  it('answers flush() with a Finalize result for the words heard so far', async () => {
    fake.transcripts = ['I need to book a table.'];
    // Endpointing far away: only Finalize can fix the text.
    const stream = stt({ endpointingMs: 5000 }).stream({});
    const it = stream.events[Symbol.asyncIterator]();
    await pushPaced(stream, concatPcm([silence(200), one, silence(200)]));
    await sleep(50);
    expect(fake.connections.at(-1)!.sent.some((m) => m.is_final)).toBe(false);
    stream.flush();
    const final = await until(it, 'final');
    expect(final).toMatchObject({ text: 'I need to book a table.', startMs: START_MS, endOfTurn: false });
    expect(latest().controls).toEqual(['Finalize']);
    expect(latest().sent.find((m) => m.is_final)).toMatchObject({ from_finalize: true });
    await stream.close();
  });

  it('sends the caller audio in 200 ms messages, and what is held before Finalize and CloseStream', async () => {
    const stream = stt().stream({});
    const count = fake.connections.length;
    for (const f of toFrames(silence(460), RATE)) stream.push(f);
    await opened(count + 1);
    while (latest().audioMessages < 2) await sleep(5);
    await sleep(30);
    // 23 frames of 20 ms: two whole chunks went, 60 ms wait for more.
    expect(latest()).toMatchObject({ audioMessages: 2, audioBytes: (400 * RATE * 2) / 1000, controls: [] });
    stream.flush();
    while (latest().controls.length === 0) await sleep(5);
    expect(latest()).toMatchObject({ audioMessages: 3, audioBytes: (460 * RATE * 2) / 1000, controls: ['Finalize'] });
    stream.push(toFrames(silence(20), RATE)[0]!);
    await stream.close();
    expect(latest()).toMatchObject({ audioMessages: 4, audioBytes: (480 * RATE * 2) / 1000, controls: ['Finalize', 'CloseStream'] });
  });

  it('close() sends CloseStream, delivers the pending final, then ends after Metadata and a 1000 close', async () => {
    fake.transcripts = ['For two people at eight.'];
    const stream = stt().stream({});
    const events = collect(stream.events);
    // No trailing silence: nothing is final until the stream closes.
    await pushPaced(stream, concatPcm([silence(100), two]));
    await stream.close();
    const got = await events;
    expect(got.at(-1)).toMatchObject({ type: 'final', text: 'For two people at eight.' });
    expect(latest().controls.at(-1)).toBe('CloseStream');
    expect(latest().sent.at(-1)).toMatchObject({ type: 'Metadata', request_id: latest().requestId, channels: 1 });
    expect(latest().closed).toEqual({ code: 1000, reason: '' });
  });

  it('sends KeepAlive while no audio flows, and without it the fake closes 1011 NET-0001, which the iterator throws', async () => {
    // Idle limit well above the KeepAlive cadence, so a busy machine's timer lag cannot close the socket.
    fake.idleTimeoutMs = 400;
    const alive = stt({ keepAliveMs: 60 }).stream({});
    const aliveEvents = collect(alive.events);
    alive.push(toFrames(silence(20), RATE)[0]!);
    await sleep(700);
    const kept = latest();
    expect(kept.keepAlives).toBeGreaterThanOrEqual(4);
    expect(kept.closed).toBeUndefined();
    await alive.close();
    await expect(aliveEvents).resolves.toEqual([]);

    const idle = stt({ keepAliveMs: 0 }).stream({});
    idle.push(toFrames(silence(20), RATE)[0]!);
    const err = await collect(idle.events).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderError);
    expect(err).toMatchObject({ retryable: true, message: expect.stringMatching(/1011 .*NET-0001/i) });
    expect(latest().keepAlives).toBe(0);
    expect(latest().closed?.code).toBe(1011);
  });

  it('sends no KeepAlive while audio flows, and one once it has stopped for the KeepAlive time', async () => {
    const stream = stt({ keepAliveMs: 1000 }).stream({});
    const events = collect(stream.events);
    // A 200 ms chunk every 50 ms for 1.5 s: audio goes out far more often than the KeepAlive time.
    for (let i = 0; i < 30; i++) {
      stream.push({ pcm: silence(200), sampleRate: RATE, timestampMs: i * 200 });
      await sleep(50);
    }
    await vi.waitFor(() => expect(latest().audioMessages).toBe(30), { timeout: 5000, interval: 20 });
    expect(latest().keepAlives).toBe(0);
    await vi.waitFor(() => expect(latest().keepAlives).toBeGreaterThanOrEqual(1), { timeout: 5000, interval: 50 });
    await stream.close();
    await events;
  });

  it('surfaces refused handshakes: a bad key is permanent with the server message, 429 retryable with Retry-After', async () => {
    const bad = await collect(stt({ apiKey: 'not-a-key' }).stream({}).events).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(ProviderError);
    expect(bad).toMatchObject({ status: 401, retryable: false, message: 'deepgram: 401 Invalid credentials.' });

    fake.rejectNext(429, { retryAfter: 7 });
    await expect(collect(stt().stream({}).events)).rejects.toMatchObject({ status: 429, retryable: true, retryAfterMs: 7000 });
    fake.rejectNext(402);
    await expect(collect(stt().stream({}).events)).rejects.toMatchObject({ status: 402, retryable: false });
    fake.rejectNext(503);
    await expect(collect(stt().stream({}).events)).rejects.toMatchObject({ status: 503, retryable: true, retryAfterMs: undefined });
  });

  it('throws a retryable ProviderError when the socket drops mid-stream, after the events already received', async () => {
    fake.transcripts = ['I need to book a table.'];
    const stream = stt().stream({});
    const got: SttEvent[] = [];
    const done = (async () => {
      for await (const e of stream.events) got.push(e);
    })();
    await pushPaced(stream, concatPcm([silence(200), one.subarray(0, RATE / 2)]));
    await sleep(50);
    fake.dropNext();
    await pushPaced(stream, silence(100));
    await expect(done).rejects.toMatchObject({ provider: 'deepgram', retryable: true, message: expect.stringContaining('1006') });
    expect(got[0]?.type).toBe('speech-start');
    expect(latest().closed?.code).toBe(1006);
  });

  it('gives up on a handshake slower than connectTimeoutMs', async () => {
    // The handshake would complete after 3 s: timed out before that is the connect timeout's doing (a bound
    // nearer to 150 ms is one a loaded machine breaks).
    fake.handshakeDelayMs = 3000;
    const started = Date.now();
    await expect(collect(stt({ connectTimeoutMs: 150 }).stream({}).events)).rejects.toMatchObject({
      retryable: true,
      message: expect.stringMatching(/timed out/),
    });
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('buffers audio pushed before the socket opens, keeping the newest 5 s', async () => {
    fake.handshakeDelayMs = 100;
    const stream = stt().stream({});
    const count = fake.connections.length;
    for (const f of toFrames(silence(6000), RATE)) stream.push(f);
    await opened(count + 1);
    await stream.close();
    expect(stream.droppedMs).toBe(1000);
    expect(latest().audioBytes).toBe(5 * RATE * 2);
  });

  it('closes the socket when the abort signal fires, ending the events without an error', async () => {
    const controller = new AbortController();
    const stream = stt().stream({ signal: controller.signal });
    const count = fake.connections.length;
    for (const f of toFrames(silence(200), RATE)) stream.push(f);
    // Open from both sides: the audio arrived (an abort while connecting terminates instead).
    await opened(count + 1);
    while (latest().audioBytes === 0) await sleep(5);
    controller.abort();
    await expect(collect(stream.events)).resolves.toEqual([]);
    await sleep(50);
    expect(latest().closed?.code).toBe(1000);
  });
});

describe('fake Deepgram strictness (raw ws client)', () => {
  const base = 'model=nova-3&encoding=linear16&sample_rate=16000&channels=1&interim_results=true';
  /** Status of the handshake: 101 when it opened, else the refusal with its body and dg-error header. */
  function handshake(query: string, headers: Record<string, string> = { Authorization: `Token ${fake.apiKey}` }, protocols?: string[]) {
    return new Promise<{
      status: number;
      body?: { err_code: string; err_msg: string; request_id: string };
      dgError?: string;
      ws?: WebSocket;
    }>((resolve, reject) => {
      const ws = new WebSocket(`${fake.url}/v1/listen?${query}`, protocols, { headers });
      ws.on('open', () => resolve({ status: 101, ws }));
      ws.on('unexpected-response', (_req, res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c));
        res.on('end', () => {
          resolve({ status: res.statusCode!, body: JSON.parse(text), dgError: res.headers['dg-error'] as string });
          ws.terminate();
        });
      });
      ws.on('error', (e) => (e.message.includes('closed before') ? undefined : reject(e)));
    });
  }

  it('refuses bad query parameters at the handshake with 400, a JSON reason and the dg-error header', async () => {
    const bad = [
      'model=nova-3&encoding=pcm16&sample_rate=16000',
      'model=nova-3&encoding=linear16',
      'model=nova-3&encoding=mulaw&sample_rate=eight',
      `${base}&endpointing=300ms`,
      `${base}&endpointing=1.5`,
      'model=nova-3&encoding=linear16&sample_rate=16000&utterance_end_ms=1000',
      `${base.replace('interim_results=true', 'interim_results=false')}&utterance_end_ms=1000`,
      `${base}&vad_events=yes`,
      base.replace('nova-3', 'nova-9'),
    ];
    for (const query of bad) {
      const r = await handshake(query);
      expect({ query, status: r.status }).toEqual({ query, status: 400 });
      expect(r.body!.err_msg).toBe(r.dgError);
      expect(r.body!.request_id).toMatch(/^[0-9a-f-]{36}$/);
    }
    for (const query of [`${base}&endpointing=false&utterance_end_ms=1000`, `${base}&endpointing=10`, 'model=nova-3&encoding=ogg-opus']) {
      const r = await handshake(query);
      expect({ query, status: r.status }).toEqual({ query, status: 101 });
      r.ws!.close();
    }
  });

  it('wants a known key, by Authorization header or the browser subprotocol, on /v1/listen only', async () => {
    expect(await handshake(base, {})).toMatchObject({ status: 401, body: { err_code: 'INVALID_AUTH' } });
    expect(await handshake(base, { Authorization: `Bearer ${fake.apiKey}` })).toMatchObject({ status: 401 });
    const browser = await handshake(base, {}, ['token', fake.apiKey]);
    expect(browser.status).toBe(101);
    expect(browser.ws!.protocol).toBe('token');
    browser.ws!.close();
    const wrongPath = await new Promise<number>((resolve) => {
      const ws = new WebSocket(`${fake.url}/v2/listen?${base}`, { headers: { Authorization: `Token ${fake.apiKey}` } });
      ws.on('unexpected-response', (_req, res) => {
        resolve(res.statusCode!);
        ws.terminate();
      });
      ws.on('error', () => {});
    });
    expect(wrongPath).toBe(404);
  });

  it('closes 1008 on a malformed control message, and hears 8 kHz mulaw speech', async () => {
    for (const text of ['not json', '{"type":"Flush"}']) {
      const { ws } = await handshake(base);
      const closed = new Promise<number>((r) => ws!.on('close', (code) => r(code)));
      ws!.send(text);
      expect(await closed).toBe(1008);
    }

    fake.transcripts = ['I need to book a table.'];
    const { ws } = await handshake(
      'model=nova-2-phonecall&encoding=mulaw&sample_rate=8000&interim_results=true&vad_events=true&endpointing=300',
    );
    const messages: { type: string; is_final?: boolean; channel?: { alternatives: { transcript: string }[] } }[] = [];
    ws!.on('message', (m) => messages.push(JSON.parse(String(m))));
    const closed = new Promise<void>((r) => ws!.on('close', () => r()));
    const mulaw = muLawEncode(resample(concatPcm([silence(200), one, silence(500)]), RATE, 8000));
    for (let i = 0; i < mulaw.length; i += 160) ws!.send(mulaw.subarray(i, i + 160));
    ws!.send(JSON.stringify({ type: 'CloseStream' }));
    await closed;
    expect(messages[0]?.type).toBe('SpeechStarted');
    // No smart_format or punctuate asked: Deepgram's words come lowercase and bare.
    expect(messages.find((m) => m.is_final)?.channel?.alternatives[0]?.transcript).toBe('i need to book a table');
    expect(messages.at(-1)?.type).toBe('Metadata');
  });
});
