// The voice pipeline through the in-memory transport with simulated providers (fixed latencies): greeting,
// turns grounded in knowledge, barge-in that keeps only what was heard, backchannels that do not interrupt,
// goodbye ending the call; every turn, event and latency in the database.
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tenants } from '../src/db/schema.js';
import { Agent } from '../src/voice/agent.js';
import { resample } from '../src/voice/audio.js';
import { CallSession } from '../src/voice/call-session.js';
import { FakeLlm } from '../src/voice/llm/fake.js';
import type { KnowledgePassage, LLM } from '../src/voice/llm/llm.js';
import { LocalResponder } from '../src/voice/llm/local-responder.js';
import { FakeStt } from '../src/voice/stt/fake.js';
import { MemoryTransport } from '../src/voice/transports/memory.js';
import { FakeTts } from '../src/voice/tts/fake.js';
import { EnergyVad } from '../src/voice/vad/energy-vad.js';
import type { VAD } from '../src/voice/vad/vad.js';
import type { STT, SttEvent } from '../src/voice/stt/stt.js';
import { EventQueue } from '../src/lib/event-queue.js';
import { buildTestApp, type TestApp } from './helpers.js';

const RATE = 16000;
let t: TestApp;
let tenantId: string;
beforeAll(async () => {
  t = await buildTestApp();
  tenantId = (await t.deps.database.db.insert(tenants).values({ name: 'Voice test' }).returning())[0]!.id;
});
afterAll(() => t.close());

const hours: KnowledgePassage = { chunkId: '00000000-0000-4000-8000-000000000001', documentTitle: 'Hours', score: 0.7, text: 'The clinic opens at nine on weekdays. On Saturdays it closes at noon.' };
/** What the simulated caller "says": a voiced sound with four syllables a second (speech dips between them). */
const speech = (ms: number) =>
  Int16Array.from({ length: (RATE * ms) / 1000 }, (_, i) => {
    const syllables = 0.55 + 0.45 * Math.sin((2 * Math.PI * 4 * i) / RATE);
    return Math.round(5000 * syllables * (Math.sin((2 * Math.PI * 160 * i) / RATE) + 0.4 * Math.sin((2 * Math.PI * 480 * i) / RATE)));
  });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function startCall(opts: { transcripts: string[]; llm?: LLM; greeting?: string | null; minInterruptionMs?: number; lineRate?: number; vad?: VAD; stt?: STT }) {
  const transport = new MemoryTransport(opts.lineRate ?? RATE);
  const call = await t.deps.calls.start(tenantId, { direction: 'web' });
  const agent = new Agent(opts.llm ?? new LocalResponder(), async (q) => (/clinic|open|saturday/i.test(q) ? [hours] : []), {
    agentName: 'Nora',
    systemPrompt: null,
    transferNumber: null,
  });
  const session = new CallSession({
    tenantId,
    callId: call.id,
    transport,
    vad: opts.vad ?? new EnergyVad(),
    stt: opts.stt ?? new FakeStt({ sampleRate: RATE, transcripts: opts.transcripts, finalLatencyMs: 250 }),
    tts: new FakeTts(RATE, 200, 40),
    agent,
    calls: t.deps.calls,
    behaviour: { greeting: opts.greeting === undefined ? 'Hello, Sunrise clinic.' : opts.greeting, endpointingMs: 500, minInterruptionMs: opts.minInterruptionMs ?? 300, silencePromptMs: 30_000, maxDurationMs: 60_000 },
    log: pino({ level: 'silent' }),
    now: () => transport.now(),
  });
  return { transport, callId: call.id, session, outcome: session.run() };
}

const turns = (callId: string) => t.deps.calls.transcript(tenantId, callId);
const waitTurns = async (callId: string, n: number, timeoutMs = 10_000) => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ts = await turns(callId);
    if (ts.length >= n) return ts;
    if (Date.now() > deadline) throw new Error(`only ${ts.length} of ${n} turns: ${JSON.stringify(ts.map((x) => [x.speaker, x.text]))}`);
    await sleep(50);
  }
};

describe('CallSession (simulated providers)', () => {
  it('bridges rates: an 8 kHz phone line with 16 kHz STT and TTS', async () => {
    const c = await startCall({ transcripts: ['When does the clinic open?'], greeting: null, lineRate: 8000 });
    const phone = resample(speech(900), RATE, 8000);
    await c.transport.say(phone);
    const ts = await waitTurns(c.callId, 2);
    expect(ts[1]).toMatchObject({ speaker: 'agent', citations: [hours.chunkId] });
    while (c.transport.heardMs() < 500) await sleep(20);
    // What the caller hears is 8 kHz audio of the answer (TTS made it at 16 kHz).
    expect(c.transport.heard.every((f) => f.pcm.length === 160)).toBe(true);
    c.transport.hangup();
    await c.outcome;
  });

  it('greets, answers from knowledge with citations and latencies, and ends on goodbye', async () => {
    const c = await startCall({ transcripts: ['When does the clinic open on Saturdays?', 'Thank you, goodbye.'] });
    await waitTurns(c.callId, 1); // greeting spoken
    await c.transport.say(speech(900));
    const afterAnswer = await waitTurns(c.callId, 3);
    expect(afterAnswer[2]).toMatchObject({ speaker: 'agent', text: 'The clinic opens at nine on weekdays. On Saturdays it closes at noon.', interrupted: false, citations: [hours.chunkId] });
    const m = afterAnswer[2]!.metrics;
    // endpointing 500 ms, STT final 250 ms (in parallel), TTS first byte 200 ms, local LLM ~0.
    expect(m.endpointing).toBeGreaterThanOrEqual(480);
    expect(m.stt_final).toBeGreaterThanOrEqual(230);
    expect(m.tts_ttfb).toBeGreaterThanOrEqual(195);
    expect(m.voice_to_voice).toBeGreaterThanOrEqual(690);
    expect(m.voice_to_voice).toBeLessThan(1000);
    expect(m).toHaveProperty('retrieval');
    expect(m).toHaveProperty('llm_ttft');

    await c.transport.say(speech(600));
    const outcome = await c.outcome;
    expect(outcome).toMatchObject({ status: 'completed', action: { type: 'end_call' } });
    const all = await turns(c.callId);
    expect(all.map((x) => [x.speaker, x.text])).toEqual([
      ['agent', 'Hello, Sunrise clinic.'],
      ['caller', 'When does the clinic open on Saturdays?'],
      ['agent', 'The clinic opens at nine on weekdays. On Saturdays it closes at noon.'],
      ['caller', 'Thank you, goodbye.'],
      ['agent', 'Thank you for calling. Goodbye!'],
    ]);
    expect(c.transport.closedReason).toBe('caller said goodbye');
    const events = (await t.deps.calls.events(tenantId, c.callId)).map((e) => e.type);
    expect(events).toEqual(['call.started', 'tool.called', 'call.ended']);
    const record = await t.deps.calls.get(tenantId, c.callId);
    expect(record.status).toBe('completed');
    expect((record.metrics as Record<string, { n: number }>).voice_to_voice?.n).toBe(2);
  });

  it('barge-in: caller speech past the minimum clears the audio at once, and history keeps only what was heard', async () => {
    const long = 'First, our clinic is open every weekday. Second, we have free parking. Third, bring your insurance card. Fourth, arrive ten minutes early.';
    const llm = new FakeLlm({ reply: (said) => (/stop/i.test(said) ? 'Of course.' : long), firstTokenMs: 100, tokensPerSecond: 50 });
    const c = await startCall({ transcripts: ['Tell me everything.', 'Stop, please.'], llm, greeting: null });
    await c.transport.say(speech(700));
    // Wait until the agent is well into its answer (it lasts about 5 s at 40 ms per character).
    const deadline = Date.now() + 5000;
    while (c.transport.heardMs() < 2500 && Date.now() < deadline) await sleep(20);
    const interruptAt = c.transport.now();
    await c.transport.say(speech(700));
    expect(c.transport.clears.length).toBe(1);
    const reaction = c.transport.clears[0]! - interruptAt;
    // VAD needs 60 ms of speech, then the 300 ms minimum; the clear itself follows at once.
    expect(reaction).toBeGreaterThanOrEqual(300);
    expect(reaction).toBeLessThan(460);
    const ts = await waitTurns(c.callId, 4);
    const interrupted = ts[1]!;
    expect(interrupted.interrupted).toBe(true);
    expect(long.startsWith(interrupted.text)).toBe(true);
    expect(interrupted.text.length).toBeLessThan(long.length);
    expect(ts[3]).toMatchObject({ speaker: 'agent', text: 'Of course.' });
    // The agent stopped talking: nothing it said after the clear was heard (beyond the new answer).
    const events = await t.deps.calls.events(tenantId, c.callId);
    const barge = events.find((e) => e.type === 'turn.barge_in')!;
    // Cleared as the 300th ms of voiced speech came in (frames are 20 ms), not later.
    expect((barge.extraData as { voiced_ms: number }).voiced_ms).toBe(300);
    c.transport.hangup();
    expect(await c.outcome).toMatchObject({ status: 'completed', reason: 'caller hung up' });
  });

  it('a short noise or backchannel while the agent talks does not interrupt it', async () => {
    const llm = new FakeLlm({ reply: () => 'Our clinic is open every weekday from nine. We also open on Saturday mornings.', firstTokenMs: 50, tokensPerSecond: 100 });
    const c = await startCall({ transcripts: ['Hours?', 'uh-huh'], llm, greeting: null });
    await c.transport.say(speech(600));
    while (c.transport.heardMs() < 800) await sleep(20);
    await c.transport.say(speech(150)); // shorter than the 300 ms minimum
    const ts = await waitTurns(c.callId, 2);
    await sleep(1500);
    expect(c.transport.clears).toEqual([]);
    expect((await turns(c.callId)).map((x) => [x.speaker, x.interrupted])).toEqual([
      ['caller', false],
      ['agent', false],
    ]);
    expect(ts[1]!.text).toBe('Our clinic is open every weekday from nine. We also open on Saturday mornings.');
    c.transport.hangup();
    await c.outcome;
  });

  it('a speech detector stuck on background noise does not hold the turn open: the STT’s words end it', async () => {
    // The VAD hears speech from the first frame and never stops (loud babble); the STT, like Deepgram with its own
    // endpointing, gives the caller's words as a final after a second.
    let started = false;
    const stuckVad: VAD = {
      push: () => (started ? null : ((started = true), 'speech-start')),
      speaking: true,
      voiced: true,
      reset: () => {},
    };
    const events = new EventQueue<SttEvent>();
    const stt: STT = { provider: 'fake', sampleRate: RATE, stream: () => ({ events, push: () => {}, flush: () => {}, close: async () => events.end() }) };
    const c = await startCall({ transcripts: [], greeting: null, vad: stuckVad, stt });
    await sleep(1000);
    const saidAt = c.transport.now();
    events.push({ type: 'final', text: 'When does the clinic open?', startMs: 0, endMs: saidAt, confidence: 0.9, endOfTurn: true });
    const ts = await waitTurns(c.callId, 2, 8000);
    expect(ts[0]).toMatchObject({ speaker: 'caller', text: 'When does the clinic open?' });
    expect(ts[1]).toMatchObject({ speaker: 'agent', citations: [hours.chunkId] });
    // Answered after the endpointing time plus the grace period, not at the call's maximum duration.
    const answeredAt = c.transport.heard[0]!.atMs;
    expect(answeredAt - saidAt).toBeGreaterThan(500 + 1500);
    expect(answeredAt - saidAt).toBeLessThan(500 + 1500 + 1500);
    const evs = await t.deps.calls.events(tenantId, c.callId);
    expect(evs.map((e) => e.type)).toContain('turn.forced');
    // The noise the VAD still hears does not interrupt the answer.
    expect(c.transport.clears).toHaveLength(0);
    c.transport.hangup();
    expect(await c.outcome).toMatchObject({ status: 'completed' });
  });

  it('a hang-up while the LLM has not answered yet ends the call cleanly (the aborted reply does not hang or crash)', async () => {
    // An LLM that answers nothing until it is aborted, then fails as the SDKs do.
    const stalled: LLM = {
      provider: 'stalled',
      model: 'stalled',
      chat: ({ signal }) => ({
        [Symbol.asyncIterator]: () => ({
          next: () => new Promise((_, reject) => signal?.addEventListener('abort', () => reject(new Error('Request was aborted.')), { once: true })),
        }),
      }),
    };
    const unhandled: unknown[] = [];
    const onUnhandled = (err: unknown) => unhandled.push(err);
    process.on('unhandledRejection', onUnhandled);
    try {
      const c = await startCall({ transcripts: ['When does the clinic open?'], greeting: null, llm: stalled });
      await c.transport.say(speech(900));
      await waitTurns(c.callId, 1);
      await sleep(300);
      c.transport.hangup();
      const outcome = await Promise.race([c.outcome, sleep(5000).then(() => 'still running')]);
      expect(outcome).toMatchObject({ status: 'completed', reason: 'caller hung up' });
      await sleep(50);
      expect(unhandled).toEqual([]);
      // The unanswered turn is kept as it was: the caller's words, and an agent turn with nothing heard.
      const ts = await turns(c.callId);
      expect(ts.map((x) => [x.speaker, x.text])).toEqual([['caller', 'When does the clinic open?'], ['agent', '']]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
