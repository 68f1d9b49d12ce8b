// Issue 16, "Done means": a hostile upload (the Markdown bracket bomb, which froze the process for 11 s a pass when
// its extraction ran on the main thread) is processed while a simulated phone call is in progress, and neither the
// call nor /health notices. The same call is made first on the idle service as the baseline. The call is a real
// Twilio media stream over HTTP and a websocket (SimulatedCall), the providers are the cloud fakes with fixed
// latencies (so voice-to-voice is the same on every run unless the service itself is late), the caller's speech is
// espeak-ng's.
//
// Robust on a busy 2-core machine: the deciding check is the main thread's CPU time while the upload is processed
// (a CPU clock, not a wall clock: other processes do not move it), beyond the call's own rate: ~150-250 ms with the
// document work in the worker, ~700 ms more if it runs on the main thread (checked by running the pool's jobs
// inline: the test fails). The wall-clock checks are the criteria with room for a loaded machine: the gap p99
// as the caller hears it under the 40 ms (the service sends 200 ms ahead, which covers a loaded machine's
// scheduling: as sent, the p99 reached 80 ms under load from other test files, idle call 52 ms, with the worker),
// the longest gap as sent and /health under the 1 s, voice-to-voice within the 10% of the idle
// call's plus 250 ms. `npm run bench:isolation` reports the same measurements for every hostile upload.
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimulatedCall } from '../src/sim/simulated-call.js';
import { FakeDeepgram } from './fakes/deepgram.js';
import { FakeElevenLabs } from './fakes/elevenlabs.js';
import { FakeOpenAI } from './fakes/openai.js';
import { bracketBombMarkdown } from './fixtures/documents.js';
import { speech } from './fixtures/speech.js';
import { buildTestApp, call, type Session, signup, type TestApp, waitFor, WIRE_PASS } from './helpers.js';

const ACCOUNT = { accountSid: `AC${'2'.repeat(32)}`, authToken: 'twilio-test-auth-token' };
const NUMBER = '+15550002222';
const QUESTIONS = ['When does the clinic open on Saturday?', 'Is there free parking near the clinic?'];
const REPLY = 'The clinic opens at nine on Saturdays. It closes at noon. Anything else?';
const CLINIC =
  '# Opening hours\n\nThe Sunrise clinic opens at nine on Saturdays.\n\n# Parking\n\nFree parking is in the garage on Elm Street.';
/** The agent has finished speaking once it has been quiet this long (longer than its pause between sentences). */
const QUIET_MS = 1000;
const HEARD_GAP_P99_BOUND_MS = 40;
const STALL_BOUND_MS = 1000;
const V2V_RATIO_BOUND = 1.1;
const V2V_SLACK_MS = 250;
/**
 * Main-thread CPU the upload may add while it is processed, over what the call itself uses (HTTP, multipart, database
 * rows, the test's own polls): measured 157-260 ms on an idle machine, 479 ms once in CI (polling every 50 ms then);
 * with this document's extraction and chunking on the main thread it is 930 ms on an idle machine.
 */
const MAIN_THREAD_EXTRA_CPU_BOUND_MS = 550;
/** How often the test asks whether the upload has been processed. */
const POLL_MS = 250;

/**
 * CPU time (user + system) of this process's main thread, ms: where the service's event loop runs (vitest runs
 * each file in a forked process, on its main thread), and where document work must not.
 */
function mainThreadCpuMs(): number {
  const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
  // After "pid (comm) ", utime and stime are the 12th and 13th fields; clock ticks are 10 ms on Linux.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

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
    DOCUMENT_MAX_CHUNKS: '1000',
  });
  await t.app.listen({ port: 0, host: '127.0.0.1' });
  const addr = t.app.server.address();
  base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  s = await signup(t.app);
  const doc = await call(t.app, 'POST', '/api/v1/documents', s.access_token, { title: 'Clinic', content: CLINIC });
  await waitFor('clinic document ready', async () =>
    (await call(t.app, 'GET', `/api/v1/documents/${doc.json().id}`, s.access_token)).json().status === 'ready' ? true : undefined,
  );
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
  /** Main-thread CPU used during the call, and the call's length, ms. */
  mainCpuMs: number;
  durationMs: number;
  v2vMs: number[];
  pacing: ReturnType<SimulatedCall['leg']['pacing']>;
  protocolErrors: string[];
  clears: number;
}

/** A phone call: the greeting, each question answered in full, then the caller hangs up; `answering` runs as each answer's first audio is heard. */
async function phoneCall(answering: () => void = () => {}): Promise<CallRun> {
  const cpu0 = mainThreadCpuMs();
  const t0 = performance.now();
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
  return {
    callId: c.callId!,
    mainCpuMs: mainThreadCpuMs() - cpu0,
    durationMs: performance.now() - t0,
    v2vMs,
    pacing: c.leg.pacing(),
    protocolErrors: c.leg.protocolErrors,
    clears: c.leg.clears.length,
  };
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
    await sleep(50);
  }
  return { latencies, longestIntervalMs };
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

describe.skipIf(WIRE_PASS)('a hostile upload during a phone call', () => {
  it('the call keeps its pacing and voice-to-voice, and /health keeps answering, while the Markdown bracket bomb is extracted and chunked', async () => {
    // The idle baseline, /health probed the same way (its CPU is part of both calls').
    const idleCall = phoneCall();
    await probeHealth(idleCall);
    const idle = await idleCall;

    // The Markdown bracket bomb: 1 MB of unclosed [ and ![ (its inline stripping was quadratic: 11 s a pass
    // on the main thread). This app allows 1,000 chunks a document, so after its extraction and chunking in a
    // worker (the work that froze the service) it fails on that limit instead of spending seconds storing ~2,500
    // chunks. Uploaded as the agent's first answer starts to play, so the work runs while the service paces that
    // answer's audio.
    const bomb = bracketBombMarkdown(150_000);
    let processed: Promise<{ status: string; error: string | null; at: number; cpuMs: number }> | undefined;
    let uploadedAt = Infinity;
    let cpuAtUpload = 0;
    const upload = async () => {
      uploadedAt = performance.now();
      cpuAtUpload = mainThreadCpuMs();
      const form = new FormData();
      form.append('file', new Blob([new Uint8Array(bomb)]), 'bomb.md');
      const uploaded = await fetch(`${base}/api/v1/documents`, {
        method: 'POST',
        headers: { authorization: `Bearer ${s.access_token}` },
        body: form,
      });
      expect(uploaded.status).toBe(202);
      const { id } = (await uploaded.json()) as { id: string };
      // Each poll is main-thread work of its own, and their number grows with the machine's load (polling every 50 ms,
      // the CI run that measured 479 ms polled ~65 times in its 3.2 s of processing).
      return waitFor(
        'bomb processed',
        async () => {
          const d = (await call(t.app, 'GET', `/api/v1/documents/${id}`, s.access_token)).json();
          return d.status === 'ready' || d.status === 'failed'
            ? { status: d.status as string, error: d.error as string | null, at: performance.now(), cpuMs: mainThreadCpuMs() }
            : undefined;
        },
        180_000,
        POLL_MS,
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
    // Main-thread CPU from the upload to the end of its processing, beyond what the call used at the idle call's rate.
    const extraMainCpuMs = Math.round(doc.cpuMs - cpuAtUpload - (idle.mainCpuMs / idle.durationMs) * (doc.at - uploadedAt));

    const report = {
      idle: { v2vMs: idle.v2vMs.map(Math.round), pacing: idle.pacing },
      loaded: { v2vMs: loaded.v2vMs.map(Math.round), pacing: loaded.pacing },
      healthMaxMs: Math.round(Math.max(...health.latencies)),
      healthLongestIntervalMs: Math.round(health.longestIntervalMs),
      processingMs: Math.round(doc.at - uploadedAt),
      extraMainCpuMs,
    };
    console.log(`upload during call: ${JSON.stringify(report)}`);

    // The bomb was extracted and chunked, and failed on the chunk limit.
    expect(doc).toMatchObject({
      status: 'failed',
      error: expect.stringMatching(/^document_too_complex: The document makes \d+ chunks \(the limit is 1000\)/),
    });
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
    // The document's work did not run on the main thread (the CPU clock does not care how busy the machine is).
    expect(extraMainCpuMs, JSON.stringify(report)).toBeLessThan(MAIN_THREAD_EXTRA_CPU_BOUND_MS);
    // Frame pacing: the gaps as the caller hears them, and the longest as sent (between the service's media messages
    // within an utterance).
    expect(loaded.pacing.count).toBeGreaterThan(200);
    expect(loaded.pacing.heardP99Ms, JSON.stringify(report)).toBeLessThan(HEARD_GAP_P99_BOUND_MS);
    expect(loaded.pacing.maxMs, JSON.stringify(report)).toBeLessThan(STALL_BOUND_MS);
    // Voice-to-voice at the phone, against the idle call's.
    expect(mean(loaded.v2vMs), JSON.stringify(report)).toBeLessThan(mean(idle.v2vMs) * V2V_RATIO_BOUND + V2V_SLACK_MS);
    // /health over HTTP, every answer.
    expect(health.latencies.length).toBeGreaterThan(20);
    expect(Math.max(...health.latencies), JSON.stringify(report)).toBeLessThan(STALL_BOUND_MS);
    expect(health.longestIntervalMs, JSON.stringify(report)).toBeLessThan(STALL_BOUND_MS);
  }, 240_000);
});
