// Issue 16, "Done means": a hostile upload (a DOCX of 2.2 million paragraphs, whose inflation and parsing froze the
// process for seconds when it ran on the main thread) is processed while a simulated phone call is in progress,
// and neither the call nor /health notices. The same call is made first on the idle service as the baseline. The call is a real
// Twilio media stream over HTTP and a websocket (SimulatedCall), the providers are the cloud fakes with fixed
// latencies (so voice-to-voice is the same on every run unless the service itself is late), the caller's speech is
// espeak-ng's.
//
// Timing on a busy 2-core machine: a stalled main event loop (what the issue found: 10 to 150 s) shows as a long
// gap between the service's media messages and a slow /health, far past these bounds; ordinary CPU contention
// (another engineer's test, the document worker thread on the other core) moves them by milliseconds. So the gap
// p99 is the 40 ms, the longest gap is held under 250 ms (past the 200 ms the service sends ahead, the
// caller hears a hole: this DOCX parsed on the main thread made a 600 ms gap, a 400 ms hole), /health to the
// issue's 1 s; voice-to-voice is compared
// with the idle call's with the 10% plus 250 ms of slack for scheduling noise on a loaded box (a stall
// of the old code added seconds). `npm run bench:isolation` reports the same measurements for every hostile upload.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimulatedCall } from '../src/sim/simulated-call.js';
import { FakeDeepgram } from './fakes/deepgram.js';
import { FakeElevenLabs } from './fakes/elevenlabs.js';
import { FakeOpenAI } from './fakes/openai.js';
import { paragraphBombDocx } from './fixtures/documents.js';
import { speech } from './fixtures/speech.js';
import { buildTestApp, call, type Session, signup, type TestApp, waitFor } from './helpers.js';

const ACCOUNT = { accountSid: `AC${'2'.repeat(32)}`, authToken: 'twilio-test-auth-token' };
const NUMBER = '+15550002222';
const QUESTIONS = ['When does the clinic open on Saturday?', 'Is there free parking near the clinic?'];
const REPLY = 'The clinic opens at nine on Saturdays. It closes at noon. Anything else?';
const CLINIC = '# Opening hours\n\nThe Sunrise clinic opens at nine on Saturdays.\n\n# Parking\n\nFree parking is in the garage on Elm Street.';
/** The agent has finished speaking once it has been quiet this long (longer than its pause between sentences). */
const QUIET_MS = 1000;
const GAP_P99_BOUND_MS = 40;
const STALL_BOUND_MS = 1000;
/** The service sends up to 200 ms of audio ahead of real time: a longer gap (plus a frame) is a hole the caller hears. */
const HOLE_BOUND_MS = 250;
const V2V_RATIO_BOUND = 1.1;
const V2V_SLACK_MS = 250;

/** Deepgram's answers cycle through the questions, one per utterance, on every connection. */
class CyclingDeepgram extends FakeDeepgram {
  private said = 0;
  override nextTranscript(): string {
    return QUESTIONS[this.said++ % QUESTIONS.length]!;
  }
}

let t: TestApp;
let s: Session;
let base: string;
let deepgram: FakeDeepgram;
let openai: FakeOpenAI;
let elevenlabs: FakeElevenLabs;
let said: Int16Array[];

beforeAll(async () => {
  // The latencies bench:calls uses: STT final 250 ms after it is due, LLM first token 400 ms then 50 tokens/s,
  // TTS first byte 200 ms.
  deepgram = await new CyclingDeepgram({ finalLatencyMs: 250 }).start();
  openai = await new FakeOpenAI().start();
  openai.delayMs = 400;
  openai.chunkDelayMs = 20;
  openai.chatScript = () => ({ text: REPLY });
  elevenlabs = await new FakeElevenLabs().start();
  elevenlabs.firstByteMs = 200;
  t = await buildTestApp({
    TWILIO_ACCOUNT_SID: ACCOUNT.accountSid,
    TWILIO_AUTH_TOKEN: ACCOUNT.authToken,
    PHONE_NUMBERS_SKIP_VERIFICATION: 'true',
    OPENAI_BASE_URL: openai.baseURL,
    DEEPGRAM_BASE_URL: deepgram.url,
    ELEVENLABS_BASE_URL: elevenlabs.baseUrl,
  });
  await t.app.listen({ port: 0, host: '127.0.0.1' });
  const addr = t.app.server.address();
  base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  s = await signup(t.app);
  const doc = await call(t.app, 'POST', '/api/v1/documents', s.access_token, { title: 'Clinic', content: CLINIC });
  await waitFor('clinic document ready', async () => ((await call(t.app, 'GET', `/api/v1/documents/${doc.json().id}`, s.access_token)).json().status === 'ready' ? true : undefined));
  const put = await call(t.app, 'PUT', '/api/v1/settings/tenant', s.access_token, {
    greeting: 'Hello, Sunrise clinic. How can I help?',
    providers: {
      stt: { provider: 'deepgram', model: 'nova-2-phonecall' },
      llm: { provider: 'openai', model: 'gpt-4o-mini' },
      tts: { provider: 'elevenlabs', voice: elevenlabs.voiceId, model: 'eleven_flash_v2_5' },
    },
    provider_keys: { deepgram: deepgram.apiKey, openai: openai.apiKey, elevenlabs: elevenlabs.apiKey },
    // The energy VAD: no model inference on the loop, so the call's own CPU is small and the same on every run.
    call: { vad: 'energy', endpointing_ms: 700 },
  });
  expect(put.statusCode, put.body).toBe(200);
  expect((await call(t.app, 'POST', '/api/v1/phone-numbers', s.access_token, { number: NUMBER })).statusCode).toBe(201);
  said = await Promise.all(QUESTIONS.map((q) => speech(q, 8000, 170)));
}, 120_000);
afterAll(async () => {
  await t.close();
  await Promise.all([deepgram.close(), openai.stop(), elevenlabs.stop()]);
});

interface CallRun {
  callId: string;
  v2vMs: number[];
  pacing: ReturnType<SimulatedCall['leg']['pacing']>;
  protocolErrors: string[];
  clears: number;
}

/** A phone call: the greeting, each question answered in full, then the caller hangs up; `answering` runs as each answer's first audio is heard. */
async function phoneCall(answering: () => void = () => {}): Promise<CallRun> {
  const c = await SimulatedCall.inbound({ ...ACCOUNT, baseUrl: base, from: '+15557654321', to: NUMBER });
  const dropped = c.leg.closed.then(({ code }) => {
    throw new Error(`the media stream closed during the call (${code})`);
  });
  dropped.catch(() => {});
  const step = <T>(p: Promise<T>) => Promise.race([p, dropped]);
  await step(c.agentDone({ quietMs: QUIET_MS, timeoutMs: 20_000 }));
  const v2vMs: number[] = [];
  for (const pcm of said) {
    const turn = await step(c.say(pcm));
    v2vMs.push(await step(c.answer(turn, 20_000)));
    answering();
    await step(c.agentDone({ sinceMs: turn.saidEndMs, quietMs: QUIET_MS, timeoutMs: 20_000 }));
  }
  await c.hangup();
  return { callId: c.callId!, v2vMs, pacing: c.leg.pacing(), protocolErrors: c.leg.protocolErrors, clears: c.leg.clears.length };
}

/**
 * Asks /health over HTTP every 50 ms until `until` settles: each answer's latency, and the time between consecutive
 * answers (the prober shares the service's event loop here, so a stall can also delay the question; it still shows
 * as a long interval between answers).
 */
async function probeHealth(until: Promise<unknown>): Promise<{ latencies: number[]; longestIntervalMs: number }> {
  let done = false;
  void until.finally(() => (done = true)).catch(() => {});
  const latencies: number[] = [];
  let last = performance.now();
  let longestIntervalMs = 0;
  while (!done) {
    const started = performance.now();
    const res = await fetch(`${base}/health`);
    await res.text();
    expect(res.status).toBe(200);
    const now = performance.now();
    latencies.push(now - started);
    longestIntervalMs = Math.max(longestIntervalMs, now - last);
    last = now;
    await new Promise((r) => setTimeout(r, 50));
  }
  return { latencies, longestIntervalMs };
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

describe('a hostile upload during a phone call', () => {
  it('the call keeps its pacing and voice-to-voice, and /health keeps answering, while a DOCX over the XML element limit is processed', async () => {
    const idle = await phoneCall();

    // 2.2 million tiny paragraphs (99 MB of XML in 290 KB): under the ZIP directory's size limit, so the upload is
    // accepted, and the document is inflated and parsed (in a worker) until the XML element limit stops it. On the
    // main thread this froze everything for seconds. Uploaded as the agent's first answer starts to play, so the work
    // runs while the service paces that answer's audio.
    const bomb = await paragraphBombDocx(2_200_000);
    let processed: Promise<{ status: string; error: string | null; at: number }> | undefined;
    let uploadedAt = Infinity;
    const upload = async () => {
      uploadedAt = performance.now();
      const form = new FormData();
      form.append('file', new Blob([new Uint8Array(bomb)]), 'bomb.docx');
      const uploaded = await fetch(`${base}/api/v1/documents`, { method: 'POST', headers: { authorization: `Bearer ${s.access_token}` }, body: form });
      expect(uploaded.status).toBe(202);
      const { id } = (await uploaded.json()) as { id: string };
      return waitFor(
        'bomb processed',
        async () => {
          const d = (await call(t.app, 'GET', `/api/v1/documents/${id}`, s.access_token)).json();
          return d.status === 'ready' || d.status === 'failed' ? { status: d.status as string, error: d.error as string | null, at: performance.now() } : undefined;
        },
        180_000,
      );
    };
    const loadedCall = phoneCall(() => {
      if (processed) return;
      processed = upload();
      processed.catch(() => {});
    });
    const health = await probeHealth(loadedCall.then(() => processed));
    const loaded = await loadedCall;
    const doc = await processed!;

    const report = {
      idle: { v2vMs: idle.v2vMs.map(Math.round), pacing: idle.pacing },
      loaded: { v2vMs: loaded.v2vMs.map(Math.round), pacing: loaded.pacing },
      healthMaxMs: Math.round(Math.max(...health.latencies)),
      healthLongestIntervalMs: Math.round(health.longestIntervalMs),
      processingMs: Math.round(doc.at - uploadedAt),
    };
    console.log(`upload during call: ${JSON.stringify(report)}`);

    // The bomb failed on its limit, in the worker, once.
    expect(doc).toMatchObject({ status: 'failed', error: expect.stringMatching(/^document_too_complex: The DOCX has more than \d+ XML elements/) });
    // The call completed normally: every question answered, nothing Twilio would reject, no answer cut.
    for (const r of [idle, loaded]) {
      expect(r.v2vMs).toHaveLength(QUESTIONS.length);
      expect(r.protocolErrors).toEqual([]);
      expect(r.clears).toBe(0);
      const ended = await waitFor('call ended', async () => {
        const c = (await call(t.app, 'GET', `/api/v1/calls/${r.callId}`, s.access_token)).json();
        return c.ended_at ? c : undefined;
      });
      expect(ended.status).toBe('completed');
    }
    // Frame pacing as sent (the gaps between the service's media messages within an utterance).
    expect(loaded.pacing.count).toBeGreaterThan(200);
    expect(loaded.pacing.p99Ms, JSON.stringify(report)).toBeLessThan(GAP_P99_BOUND_MS);
    expect(loaded.pacing.maxMs, JSON.stringify(report)).toBeLessThan(HOLE_BOUND_MS);
    // Voice-to-voice at the phone, against the idle call's.
    expect(mean(loaded.v2vMs), JSON.stringify(report)).toBeLessThan(mean(idle.v2vMs) * V2V_RATIO_BOUND + V2V_SLACK_MS);
    // /health over HTTP, every answer.
    expect(health.latencies.length).toBeGreaterThan(20);
    expect(Math.max(...health.latencies), JSON.stringify(report)).toBeLessThan(STALL_BOUND_MS);
    expect(health.longestIntervalMs, JSON.stringify(report)).toBeLessThan(STALL_BOUND_MS);
  }, 240_000);
});
