// The call session in virtual time: the in-memory phone line, the energy VAD and the simulated STT, LLM and TTS all
// run on one ManualClock, and the call's log is kept in memory; a whole call runs in milliseconds, no database.
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { EventQueue } from '../lib/event-queue.js';
import { ProviderError } from '../lib/provider-error.js';
import { Agent } from './agent.js';
import { resample } from './audio.js';
import { MemoryCallLog } from './call-log.js';
import {
  type CallBehaviour,
  type CallOutcome,
  CallSession,
  MAX_DURATION_GOODBYE,
  SILENCE_GOODBYE,
  SILENCE_PROMPT,
} from './call-session.js';
import { ManualClock } from './clock.js';
import { FakeLlm } from './llm/fake.js';
import type { ChatMessage, ChatRequest, KnowledgePassage, LLM, LlmChunk } from './llm/llm.js';
import { LocalResponder } from './llm/local-responder.js';
import { FakeStt } from './stt/fake.js';
import type { STT, SttEvent } from './stt/stt.js';
import { MemoryTransport } from './transports/memory.js';
import { FakeTts } from './tts/fake.js';
import { EnergyVad } from './vad/energy-vad.js';
import type { VAD } from './vad/vad.js';

const RATE = 16000;
const hours: KnowledgePassage = {
  chunkId: '00000000-0000-4000-8000-000000000001',
  documentId: '00000000-0000-4000-8000-0000000000d1',
  documentTitle: 'Hours',
  headingPath: ['Opening hours'],
  page: null,
  score: 0.7,
  text: 'The clinic opens at nine on weekdays. On Saturdays it closes at noon.',
};
/** The voice turn cites the passage readably: where it came from and how it begins (lib/citation.ts). */
const hoursCitation = {
  chunk_id: hours.chunkId,
  document_id: hours.documentId,
  title: 'Hours',
  heading_path: ['Opening hours'],
  page: null,
  snippet: hours.text,
};
/** What the simulated caller "says": a voiced sound with four syllables a second (speech dips between them). */
const speech = (ms: number) =>
  Int16Array.from({ length: (RATE * ms) / 1000 }, (_, i) => {
    const syllables = 0.55 + 0.45 * Math.sin((2 * Math.PI * 4 * i) / RATE);
    return Math.round(5000 * syllables * (Math.sin((2 * Math.PI * 160 * i) / RATE) + 0.4 * Math.sin((2 * Math.PI * 480 * i) / RATE)));
  });

interface CallOptions {
  transcripts?: string[];
  llm?: (clock: ManualClock) => LLM;
  behaviour?: Partial<CallBehaviour>;
  lineRate?: number;
  vad?: VAD;
  stt?: STT;
  transferNumber?: string;
  history?: ChatMessage[];
}

function startCall(opts: CallOptions = {}) {
  const clock = new ManualClock();
  const transport = new MemoryTransport(opts.lineRate ?? RATE, 20, clock);
  const callLog = new MemoryCallLog();
  const requests: ChatRequest[] = [];
  const llm = opts.llm?.(clock) ?? new LocalResponder();
  const recording: LLM = { provider: llm.provider, model: llm.model, chat: (r) => (requests.push(r), llm.chat(r)) };
  const agent = new Agent(recording, async (q) => (/clinic|open|saturday/i.test(q) ? [hours] : []), {
    agentName: 'Nora',
    systemPrompt: null,
    transferNumber: opts.transferNumber ?? null,
  });
  const closedBefore: string[] = [];
  const session = new CallSession({
    transport,
    vad: opts.vad ?? new EnergyVad(),
    stt: opts.stt ?? new FakeStt({ sampleRate: RATE, transcripts: opts.transcripts ?? [], finalLatencyMs: 250, clock }),
    tts: new FakeTts(RATE, 200, 40, clock),
    agent,
    callLog,
    behaviour: {
      greeting: 'Hello, Sunrise clinic.',
      endpointingMs: 500,
      minInterruptionMs: 300,
      silencePromptMs: 30_000,
      maxDurationMs: 600_000,
      ...opts.behaviour,
    },
    log: pino({ level: 'silent' }),
    clock,
    history: opts.history,
    beforeClose: async () => void closedBefore.push(transport.closedReason ?? 'open'),
  });
  let outcome: CallOutcome | undefined;
  const running = session.run().then((o) => (outcome = o));
  const turns = () => callLog.turns.map((t) => [t.speaker, t.text]);
  return {
    clock,
    transport,
    callLog,
    session,
    requests,
    closedBefore,
    turns,
    /** The caller speaks; resolves (in virtual time) once the audio has gone down the line. */
    async say(pcm: Int16Array) {
      let sent = false;
      void transport.say(pcm).then(() => (sent = true));
      await clock.until(() => sent, 'the caller’s speech to be sent');
    },
    until: (what: string, condition: () => boolean, timeoutMs?: number) => clock.until(condition, what, timeoutMs),
    waitTurns: (n: number) => clock.until(() => callLog.turns.length >= n, `${n} turns (have ${JSON.stringify(turns())})`),
    /** Runs the call to its end (the caller hangs up first when `hangup`). */
    async end(hangup = true): Promise<CallOutcome> {
      if (hangup) transport.hangup();
      await clock.until(() => outcome !== undefined, 'the call to end');
      await running;
      return outcome!;
    },
    get outcome() {
      return outcome;
    },
  };
}

describe('CallSession: greeting and answers', () => {
  it('greets first: the greeting is an agent turn the caller hears, and the history starts with it', async () => {
    const c = startCall({ transcripts: ['When does the clinic open?'] });
    await c.waitTurns(1);
    expect(c.callLog.turns[0]).toMatchObject({ speaker: 'agent', text: 'Hello, Sunrise clinic.', interrupted: false, startMs: 0 });
    // 200 ms to the TTS's first byte, then 22 characters at 40 ms each.
    expect(c.transport.heard[0]!.atMs).toBe(200);
    expect(c.transport.heardMs()).toBeGreaterThanOrEqual(22 * 40);
    await c.say(speech(900));
    await c.waitTurns(3);
    expect(c.requests[0]!.messages.map((m) => [m.role, m.content])).toEqual([
      ['assistant', 'Hello, Sunrise clinic.'],
      ['user', 'When does the clinic open?'],
    ]);
    await c.end();
  });

  it('answers from knowledge with citations and its latencies, measured exactly', async () => {
    const c = startCall({ transcripts: ['When does the clinic open on Saturdays?'], behaviour: { greeting: null } });
    await c.clock.advanceAsync(500);
    await c.say(speech(900));
    await c.waitTurns(2);
    expect(c.callLog.turns[0]).toMatchObject({ speaker: 'caller', text: 'When does the clinic open on Saturdays?' });
    expect(c.callLog.turns[1]).toMatchObject({ speaker: 'agent', text: hours.text, interrupted: false, citations: [hoursCitation] });
    const m = c.callLog.turns[1]!.metrics!;
    // The STT's final (250 ms) comes within the endpointing time (500 ms, +1 waited out); the TTS's first byte 200 ms.
    expect(m).toMatchObject({ endpointing: 501, stt_final: 250, tts_ttfb: 200, voice_to_voice: 701 });
    expect(m).toHaveProperty('retrieval');
    expect(m).toHaveProperty('llm_ttft');
    // The caller turn spans the speech as the VAD heard it (it starts 60 ms in, ends 200 ms of silence after).
    const caller = c.callLog.turns[0]!;
    expect(caller.endMs! - caller.startMs!).toBeGreaterThan(800);
    await c.end();
  });

  it('bridges rates: an 8 kHz phone line with 16 kHz STT and TTS', async () => {
    const c = startCall({ transcripts: ['When does the clinic open?'], behaviour: { greeting: null }, lineRate: 8000 });
    await c.say(resample(speech(900), RATE, 8000));
    await c.waitTurns(2);
    expect(c.callLog.turns[1]).toMatchObject({ speaker: 'agent', citations: [hoursCitation] });
    await c.until('the answer to play', () => c.transport.heardMs() >= 500);
    // What the caller hears is 8 kHz audio of the answer (the TTS made it at 16 kHz).
    expect(c.transport.heard.every((f) => f.pcm.length === 160)).toBe(true);
    await c.end();
  });

  it('a goodbye ends the call after the agent’s answer (end_call), with the transport closed for that reason', async () => {
    const c = startCall({ transcripts: ['When does the clinic open on Saturdays?', 'Thank you, goodbye.'] });
    await c.waitTurns(1);
    await c.say(speech(900));
    await c.waitTurns(3);
    await c.say(speech(600));
    const outcome = await c.end(false);
    expect(outcome).toMatchObject({
      status: 'completed',
      reason: 'agent ended the call: caller said goodbye',
      action: { type: 'end_call' },
    });
    expect(c.turns()).toEqual([
      ['agent', 'Hello, Sunrise clinic.'],
      ['caller', 'When does the clinic open on Saturdays?'],
      ['agent', hours.text],
      ['caller', 'Thank you, goodbye.'],
      ['agent', 'Thank you for calling. Goodbye!'],
    ]);
    expect(c.transport.closedReason).toBe('agent ended the call: caller said goodbye');
    expect(c.callLog.events.map((e) => e.type)).toEqual(['tool.called']);
    expect(c.callLog.ended).toEqual({ status: 'completed', reason: 'agent ended the call: caller said goodbye' });
  });
});

describe('CallSession: barge-in', () => {
  const long =
    'First, our clinic is open every weekday. Second, we have free parking. Third, bring your insurance card. Fourth, arrive ten minutes early.';
  const talker = (clock: ManualClock) =>
    new FakeLlm({ reply: (said) => (/stop/i.test(said) ? 'Of course.' : long), firstTokenMs: 100, tokensPerSecond: 50, clock });

  it('caller speech past the minimum clears the agent’s audio at once, counting only voiced speech', async () => {
    const c = startCall({ transcripts: ['Tell me everything.', 'Stop, please.'], llm: talker, behaviour: { greeting: null } });
    await c.say(speech(700));
    await c.until('the answer to be well under way', () => c.transport.heardMs() >= 2500);
    const interruptAt = c.transport.now();
    await c.say(speech(700));
    expect(c.transport.clears).toHaveLength(1);
    // The VAD needs 60 ms of speech, then 300 ms of voiced speech; the clear follows at once, within a frame.
    const reaction = c.transport.clears[0]! - interruptAt;
    expect(reaction).toBeGreaterThanOrEqual(360);
    expect(reaction).toBeLessThanOrEqual(380);
    expect(c.callLog.events.find((e) => e.type === 'turn.barge_in')!.data).toMatchObject({ voiced_ms: 300 });
    // Nothing of the interrupted answer is heard after the clear.
    const cleared = c.transport.clears[0]!;
    await c.waitTurns(4);
    const answerStart = c.transport.heard.find((f) => f.atMs > cleared)?.atMs ?? Infinity;
    expect(answerStart - cleared).toBeGreaterThanOrEqual(200); // only the new answer, after its TTS's first byte
    expect(await c.end()).toMatchObject({ status: 'completed', reason: 'caller hung up' });
  });

  it('the transcript and the history keep only what the caller heard of the interrupted answer', async () => {
    const c = startCall({ transcripts: ['Tell me everything.', 'Stop, please.'], llm: talker, behaviour: { greeting: null } });
    await c.say(speech(700));
    await c.until('the answer to be well under way', () => c.transport.heardMs() >= 2500);
    await c.say(speech(700));
    await c.waitTurns(4);
    const interrupted = c.callLog.turns[1]!;
    expect(interrupted).toMatchObject({ speaker: 'agent', interrupted: true });
    expect(long.startsWith(interrupted.text)).toBe(true);
    expect(interrupted.text.length).toBeGreaterThan(0);
    expect(interrupted.text.length).toBeLessThan(long.length);
    expect(c.callLog.turns[2]).toMatchObject({ speaker: 'caller', text: 'Stop, please.' });
    expect(c.callLog.turns[3]).toMatchObject({ speaker: 'agent', text: 'Of course.' });
    // The model's next request has the heard sentences only.
    expect(c.requests[1]!.messages.map((m) => [m.role, m.content])).toEqual([
      ['user', 'Tell me everything.'],
      ['assistant', interrupted.text],
      ['user', 'Stop, please.'],
    ]);
    await c.end();
  });

  it('the transcript keeps the words heard of the sentence the barge-in cut, and marks the turn truncated', async () => {
    const c = startCall({ transcripts: ['Tell me everything.', 'Stop, please.'], llm: talker, behaviour: { greeting: null } });
    await c.say(speech(700));
    // The fake TTS speaks 40 ms a character: the first sentence (40 characters) plays for 1,600 ms, the second
    // ("Second, we have free parking.", 29) for 1,160 ms. The clear comes 360-380 ms into the caller's speech.
    await c.until('the second sentence to be under way', () => c.transport.heardMs() >= 1800);
    const replyStart = c.transport.heard[0]!.atMs;
    await c.say(speech(700));
    await c.waitTurns(4);
    const cleared = c.transport.clears[0]!;
    // What the caller heard of the second sentence: the audio played before the clear, past the first sentence.
    const playedMs = c.transport.heardMs(replyStart, cleared) - 1600;
    expect(playedMs).toBeGreaterThan(500);
    expect(playedMs).toBeLessThan(640);
    // About half of 29 characters: "Second, we" (10 characters) is heard whole, "have" (ending at 15) is not.
    expect(c.callLog.turns[1]).toMatchObject({
      speaker: 'agent',
      text: 'First, our clinic is open every weekday. Second, we',
      interrupted: true,
      truncated: true,
    });
    expect(c.requests[1]!.messages[1]).toMatchObject({ role: 'assistant', content: 'First, our clinic is open every weekday. Second, we' });
    // An answer heard whole is not truncated.
    expect(c.callLog.turns[3]).toMatchObject({ speaker: 'agent', text: 'Of course.', interrupted: false, truncated: false });
    await c.end();
  });

  it('a short noise or backchannel while the agent talks does not interrupt it, and its words are dropped', async () => {
    const llm = (clock: ManualClock) =>
      new FakeLlm({
        reply: () => 'Our clinic is open every weekday from nine. We also open on Saturday mornings.',
        firstTokenMs: 50,
        tokensPerSecond: 100,
        clock,
      });
    const c = startCall({ transcripts: ['Hours?', 'uh-huh'], llm, behaviour: { greeting: null } });
    await c.say(speech(600));
    await c.until('the answer to be under way', () => c.transport.heardMs() >= 800);
    await c.say(speech(150)); // shorter than the 300 ms minimum
    await c.waitTurns(2);
    await c.clock.advanceAsync(3000);
    expect(c.transport.clears).toEqual([]);
    expect(c.callLog.turns.map((t) => [t.speaker, t.interrupted ?? false])).toEqual([
      ['caller', false],
      ['agent', false],
    ]);
    expect(c.callLog.turns[1]!.text).toBe('Our clinic is open every weekday from nine. We also open on Saturday mornings.');
    await c.end();
  });
});

describe('CallSession: a speech detector stuck on background noise', () => {
  it('the STT’s words end the turn after the endpointing time plus the grace period, and the noise does not interrupt', async () => {
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
    const stt: STT = {
      provider: 'fake',
      sampleRate: RATE,
      stream: () => ({ events, push: () => {}, flush: () => {}, close: async () => events.end() }),
    };
    const c = startCall({ behaviour: { greeting: null }, vad: stuckVad, stt });
    await c.clock.advanceAsync(1000);
    const saidAt = c.transport.now();
    events.push({ type: 'final', text: 'When does the clinic open?', startMs: 0, endMs: saidAt, confidence: 0.9, endOfTurn: true });
    await c.waitTurns(2);
    expect(c.callLog.turns[0]).toMatchObject({ speaker: 'caller', text: 'When does the clinic open?' });
    expect(c.callLog.turns[1]).toMatchObject({ speaker: 'agent', citations: [hoursCitation] });
    expect(c.callLog.events[0]).toEqual({
      type: 'turn.forced',
      data: { reason: 'speech detector still hearing speech', words_ms_ago: 2000 },
    });
    await c.until('the answer to be heard', () => c.transport.heard.length > 0);
    // Answered after the endpointing time plus the grace period (and the TTS's first byte), not at the maximum duration.
    expect(c.transport.heard[0]!.atMs - saidAt).toBe(500 + 1500 + 200);
    await c.clock.advanceAsync(3000);
    expect(c.transport.clears).toHaveLength(0);
    expect(await c.end()).toMatchObject({ status: 'completed' });
  });
});

describe('CallSession: keypad', () => {
  it('digits pressed less than 1.5 s apart become one caller turn the agent answers', async () => {
    const c = startCall({ behaviour: { greeting: null } });
    for (const d of '1234') {
      c.transport.pressDigit(d);
      await c.clock.advanceAsync(1000);
    }
    expect(c.callLog.turns).toEqual([]);
    await c.clock.advanceAsync(500);
    await c.waitTurns(2);
    expect(c.callLog.turns[0]).toEqual({ speaker: 'caller', text: '(pressed on the keypad: 1 2 3 4)', startMs: 4500, endMs: 4500 });
    expect(c.callLog.turns[1]!.speaker).toBe('agent');
    expect(c.requests[0]!.messages.at(-1)).toEqual({ role: 'user', content: '(pressed on the keypad: 1 2 3 4)' });
    expect(c.callLog.events.map((e) => e.data.digit)).toEqual(['1', '2', '3', '4']);
    await c.end();
  });

  it('# ends an entry at once', async () => {
    const c = startCall({ behaviour: { greeting: null } });
    for (const d of '42#') c.transport.pressDigit(d);
    await c.waitTurns(1);
    expect(c.callLog.turns[0]).toMatchObject({ text: '(pressed on the keypad: 4 2)', startMs: 0 });
    await c.end();
  });

  it('a digit interrupts the agent like speech', async () => {
    const c = startCall();
    await c.until('the greeting to be under way', () => c.transport.heardMs() >= 200);
    c.transport.pressDigit('0');
    await c.waitTurns(2);
    expect(c.transport.clears).toHaveLength(1);
    expect(c.callLog.turns[0]).toMatchObject({ speaker: 'agent', interrupted: true });
    expect(c.callLog.events.map((e) => e.type)).toEqual(['dtmf.received', 'turn.barge_in']);
    await c.clock.advanceAsync(1500);
    expect(c.callLog.turns[1]).toMatchObject({ speaker: 'caller', text: '(pressed on the keypad: 0)' });
    await c.end();
  });
});

describe('CallSession: silence and the maximum duration', () => {
  it('asks a silent caller whether they are there, then says goodbye and ends the call', async () => {
    const c = startCall({ behaviour: { greeting: null, silencePromptMs: 5000 } });
    const outcome = await c.end(false);
    expect(outcome).toEqual({ status: 'completed', reason: 'caller silent' });
    expect(c.turns()).toEqual([
      ['agent', SILENCE_PROMPT],
      ['agent', SILENCE_GOODBYE],
    ]);
    // The prompt after 5 s of silence; the goodbye 5 s after the prompt ended.
    expect(c.callLog.turns[0]!.startMs).toBe(5000);
    expect(c.callLog.turns[1]!.startMs! - c.callLog.turns[0]!.endMs!).toBeGreaterThanOrEqual(5000);
    expect(c.callLog.ended).toEqual({ status: 'completed', reason: 'caller silent' });
  });

  it('a caller who answers the prompt is not hung up on', async () => {
    const c = startCall({ transcripts: ['Yes, I am here.'], behaviour: { greeting: null, silencePromptMs: 5000 } });
    await c.waitTurns(1);
    await c.clock.advanceAsync(2000);
    await c.say(speech(600));
    await c.waitTurns(3);
    expect(c.turns().slice(0, 2)).toEqual([
      ['agent', SILENCE_PROMPT],
      ['caller', 'Yes, I am here.'],
    ]);
    // Silent again after the answer: a prompt again (the count starts over), not the goodbye.
    await c.waitTurns(4);
    expect(c.callLog.turns[3]).toMatchObject({ speaker: 'agent', text: SILENCE_PROMPT });
    await c.end();
  });

  it('says goodbye and ends the call at the maximum duration, even mid-answer', async () => {
    const llm = (clock: ManualClock) =>
      new FakeLlm({
        reply: () => 'This answer is long enough to last beyond the maximum duration of the call.',
        firstTokenMs: 10,
        tokensPerSecond: 100,
        clock,
      });
    const c = startCall({ transcripts: ['Tell me.'], llm, behaviour: { greeting: null, maxDurationMs: 3000 } });
    await c.say(speech(600));
    const outcome = await c.end(false);
    expect(outcome).toEqual({ status: 'completed', reason: 'maximum duration reached' });
    expect(c.callLog.turns.at(-2)).toMatchObject({ speaker: 'agent', interrupted: true });
    expect(c.callLog.turns.at(-1)).toMatchObject({ speaker: 'agent', text: MAX_DURATION_GOODBYE, startMs: 3000 });
    expect(c.transport.clears).toEqual([3000]);
  });
});

describe('CallSession: actions and the end of the call', () => {
  it('the agent’s transfer_call ends the call as transferred, handed over before the transport closes', async () => {
    const transferring = (): LLM => ({
      provider: 'script',
      model: 'script',
      async *chat(r): AsyncIterable<LlmChunk> {
        if (r.messages.at(-1)?.role === 'tool') return;
        yield { type: 'text', text: 'Let me connect you.' };
        yield { type: 'tool_call', call: { id: 't1', name: 'transfer_call', arguments: { reason: 'asked for a person' } } };
      },
    });
    const c = startCall({
      transcripts: ['A person, please.'],
      llm: transferring,
      behaviour: { greeting: null },
      transferNumber: '+15550002222',
    });
    await c.say(speech(600));
    const outcome = await c.end(false);
    expect(outcome).toEqual({
      status: 'completed',
      reason: 'transferred',
      action: { type: 'transfer_call', to: '+15550002222', reason: 'asked for a person' },
    });
    expect(c.callLog.turns.at(-1)).toMatchObject({ speaker: 'agent', text: 'Let me connect you.', interrupted: false });
    expect(c.callLog.events.map((e) => e.type)).toEqual(['tool.called', 'transfer.requested']);
    expect(c.closedBefore).toEqual(['open']);
    expect(c.transport.closedReason).toBe('transferred');
  });

  it('hangup() and transfer() from the API end the call at once, recorded as requested', async () => {
    const a = startCall();
    await a.waitTurns(0);
    a.session.hangup('ended by the operator');
    expect(await a.end(false)).toEqual({ status: 'completed', reason: 'ended by the operator' });
    expect(a.callLog.events).toEqual([{ type: 'hangup.requested', data: { reason: 'ended by the operator' } }]);

    const b = startCall();
    b.session.transfer('+15550003333', 'escalation');
    expect(await b.end(false)).toEqual({
      status: 'completed',
      reason: 'transferred',
      action: { type: 'transfer_call', to: '+15550003333', reason: 'escalation' },
    });
    expect(b.callLog.events).toEqual([{ type: 'transfer.requested', data: { to: '+15550003333', reason: 'escalation' } }]);
    expect(b.closedBefore).toEqual(['open']);
  });

  it('a hang-up while the LLM has not answered yet ends the call cleanly (the aborted reply does not hang or crash)', async () => {
    // An LLM that answers nothing until it is aborted, then fails as the SDKs do.
    const stalled = (): LLM => ({
      provider: 'stalled',
      model: 'stalled',
      chat: ({ signal }) => ({
        [Symbol.asyncIterator]: () => ({
          next: () =>
            new Promise((_, reject) => signal?.addEventListener('abort', () => reject(new Error('Request was aborted.')), { once: true })),
        }),
      }),
    });
    const unhandled: unknown[] = [];
    const onUnhandled = (err: unknown) => unhandled.push(err);
    process.on('unhandledRejection', onUnhandled);
    try {
      const c = startCall({ transcripts: ['When does the clinic open?'], behaviour: { greeting: null }, llm: stalled });
      await c.say(speech(900));
      // The caller's turn is stored once its answer is heard or over: here, at the hang-up.
      await c.until('the model to be asked', () => c.requests.length > 0);
      await c.clock.advanceAsync(300);
      expect(c.callLog.turns).toEqual([]);
      expect(await c.end()).toEqual({ status: 'completed', reason: 'caller hung up' });
      await new Promise((r) => setImmediate(r));
      expect(unhandled).toEqual([]);
      // The unanswered turn is kept as it was: the caller's words, and an agent turn with nothing heard.
      expect(c.turns()).toEqual([
        ['caller', 'When does the clinic open?'],
        ['agent', ''],
      ]);
      expect(c.callLog.ended).toEqual({ status: 'completed', reason: 'caller hung up' });
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('a caller the transport refused (a media policy violation) ends the call as failed, with the reason recorded', async () => {
    const c = startCall();
    c.transport.hangup('audio faster than real time');
    expect(await c.end(false)).toEqual({ status: 'failed', reason: 'media policy: audio faster than real time' });
    expect(c.callLog.events).toEqual([{ type: 'media.policy_violation', data: { reason: 'audio faster than real time' } }]);
  });

  it('a call picked up again goes on with its history (the model sees the conversation so far)', async () => {
    const c = startCall({
      transcripts: ['And on Sundays?'],
      behaviour: { greeting: null },
      history: [
        { role: 'assistant', content: 'Hello, Sunrise clinic.' },
        { role: 'user', content: 'When do you open?' },
        { role: 'assistant', content: 'At nine.' },
      ],
    });
    await c.say(speech(600));
    await c.waitTurns(2);
    expect(c.turns()[0]).toEqual(['caller', 'And on Sundays?']);
    expect(c.requests[0]!.messages.map((m) => m.content)).toEqual([
      'Hello, Sunrise clinic.',
      'When do you open?',
      'At nine.',
      'And on Sundays?',
    ]);
    await c.end();
  });

  it('the call ends as failed when speech-to-text fails for good', async () => {
    const events = new EventQueue<SttEvent>();
    const stt: STT = {
      provider: 'broken',
      sampleRate: RATE,
      stream: () => ({
        events: {
          [Symbol.asyncIterator]: () => ({
            next: () => Promise.reject(new ProviderError('deepgram', '503 busy', true, 503)),
          }),
        },
        push: () => {},
        flush: () => {},
        close: async () => events.end(),
      }),
    };
    const c = startCall({ behaviour: { greeting: null }, stt });
    expect(await c.end(false)).toEqual({ status: 'failed', reason: 'speech-to-text failed' });
    expect(c.callLog.ended).toEqual({ status: 'failed', reason: 'speech-to-text failed' });
    // No engine took over: the failure is recorded as such (the operator's provider_errors_total counts it).
    expect(c.callLog.events.filter((e) => e.type === 'provider.failed').map((e) => e.data)).toEqual([
      { stage: 'stt', provider: 'deepgram', status: 503, reason: 'server_error' },
    ]);
  });
});

describe('CallSession: what the caller’s screen is told (live messages)', () => {
  it('the caller’s words as recognised, the agent’s state and sentences, and the turn’s latencies as stored', async () => {
    const c = startCall({ transcripts: ['When does the clinic open on Saturdays?'], behaviour: { greeting: null } });
    await c.clock.advanceAsync(500);
    await c.say(speech(900));
    await c.waitTurns(2);
    await c.until('the answer to end', () => c.transport.notified.at(-1)?.message.type === 'agent.state');
    const messages = c.transport.notified.map((n) => n.message);
    const types = messages.map((m) => (m.type === 'agent.state' ? `state:${m.state}` : m.type));
    // Interims while the caller speaks (each at least as long as the last), thinking at the end of turn, then the
    // stored turn as the answer's first audio goes out (until then the caller could still go on), then the answer.
    const firstFinal = types.indexOf('caller.final');
    expect(types[0]).toBe('state:listening');
    expect(types.slice(1, firstFinal - 1).every((t) => t === 'caller.interim')).toBe(true);
    expect(firstFinal).toBeGreaterThan(2);
    expect(types.slice(firstFinal - 1)).toEqual([
      'state:thinking',
      'caller.final',
      'state:speaking',
      'agent.sentence',
      'agent.sentence',
      'turn.latency',
      'state:listening',
    ]);
    const interims = messages.filter((m) => m.type === 'caller.interim').map((m) => m.text);
    expect(interims.at(-1)).toBe('When does the clinic open on Saturdays?');
    const caller = c.callLog.turns[0]!;
    expect(messages[firstFinal]).toEqual({
      type: 'caller.final',
      text: caller.text,
      start_ms: Math.round(caller.startMs!),
      end_ms: Math.round(caller.endMs!),
    });
    expect(
      messages
        .filter((m) => m.type === 'agent.sentence')
        .map((m) => m.text)
        .join(' '),
    ).toBe(hours.text);
    // The latencies are the stored turn's, stage for stage.
    const m = c.callLog.turns[1]!.metrics!;
    expect(messages.find((x) => x.type === 'turn.latency')).toEqual({
      type: 'turn.latency',
      endpointing: 501,
      stt_final: 250,
      retrieval: m.retrieval,
      llm_ttft: m.llm_ttft,
      tts_ttfb: 200,
      voice_to_voice: 701,
    });
    // The sentence is announced when its audio starts going out: the first at the TTS's first byte.
    const speaking = c.transport.notified.find((n) => n.message.type === 'agent.sentence')!;
    expect(speaking.atMs).toBe(Math.round(caller.endMs! + 501 + 200));
    await c.end();
  });

  it('a barge-in: the screen hears the agent stop (listening), then the new turn', async () => {
    const long = 'First, our clinic is open every weekday. Second, we have free parking. Third, bring your insurance card.';
    const c = startCall({
      transcripts: ['Tell me everything.', 'Stop, please.'],
      llm: (clock) =>
        new FakeLlm({ reply: (said) => (/stop/i.test(said) ? 'Of course.' : long), firstTokenMs: 100, tokensPerSecond: 50, clock }),
      behaviour: { greeting: null },
    });
    await c.say(speech(700));
    await c.until('the answer to be under way', () => c.transport.heardMs() >= 2500);
    const before = c.transport.notified.length;
    await c.say(speech(700));
    await c.waitTurns(4);
    await c.until(
      'the second answer to end',
      () => c.transport.notified.at(-1)?.message.type === 'agent.state' && c.transport.notified.length > before + 3,
    );
    const after = c.transport.notified
      .slice(before)
      .map((n) => (n.message.type === 'agent.state' ? `state:${n.message.state}` : n.message.type));
    const final = after.indexOf('caller.final');
    expect(after.slice(0, final)).toContain('state:listening');
    expect(after.slice(final - 1)).toEqual([
      'state:thinking',
      'caller.final',
      'state:speaking',
      'agent.sentence',
      'turn.latency',
      'state:listening',
    ]);
    await c.end();
  });
});

describe('CallSession: preemptive replies (prepared while the endpointing time runs)', () => {
  // The benchmark's reference stages: STT final 250 ms, LLM first token 400 ms at 50 tokens/s, TTS first byte 200 ms,
  // endpointing 700 ms. The first sentence (6 words) is complete 5 tokens after the first.
  const referenceLlm = (clock: ManualClock) =>
    new FakeLlm({
      reply: (said) => `Sure, you asked about ${said.toLowerCase()} Anything else?`,
      firstTokenMs: 400,
      tokensPerSecond: 50,
      clock,
    });
  const ask = async (preemptive: boolean) => {
    const c = startCall({
      transcripts: ['The clinic hours.'],
      llm: referenceLlm,
      behaviour: { greeting: null, endpointingMs: 700, preemptive },
    });
    await c.clock.advanceAsync(500);
    await c.say(speech(900));
    await c.waitTurns(2);
    await c.until('the answer to be heard', () => c.transport.heard.length > 0);
    return c;
  };

  it('used when the turn ends with the same words: one model request, started at the STT’s final, and voice-to-voice 451 ms lower', async () => {
    const on = await ask(true);
    const off = await ask(false);
    for (const c of [on, off]) {
      expect(c.turns()).toEqual([
        ['caller', 'The clinic hours.'],
        ['agent', 'Sure, you asked about the clinic hours. Anything else?'],
      ]);
      expect(c.requests).toHaveLength(1);
    }
    const mOn = on.callLog.turns[1]!.metrics!;
    const mOff = off.callLog.turns[1]!.metrics!;
    // Off: end of turn (701) + first token (400) + 6 tokens to the first full stop (120) + TTS first byte (200).
    expect(mOff.voice_to_voice).toBe(1421);
    expect(mOff).not.toHaveProperty('preemptive');
    // On: the model started at the STT's final (250), so the first sentence was ready at 770, its audio at 970.
    expect(mOn.voice_to_voice).toBe(970);
    expect(mOn).toMatchObject({ preemptive: 1, preemptive_head_start: 451 });
    expect(mOn).not.toHaveProperty('preemptive_discarded');
    // Nothing was played before the turn ended (701 ms after the speech).
    const callerEnd = on.callLog.turns[0]!.endMs!;
    expect(on.transport.heard[0]!.atMs).toBe(callerEnd + 970);
    expect(on.callLog.events).toEqual([]);
    await on.end();
    await off.end();
  });

  it('its audio starts at the end of turn plus the TTS’s first byte when the model was faster than the endpointing time', async () => {
    const llm = (clock: ManualClock) => new FakeLlm({ reply: () => 'We open at nine.', firstTokenMs: 100, tokensPerSecond: 50, clock });
    const c = startCall({ transcripts: ['When do you open?'], llm, behaviour: { greeting: null, endpointingMs: 700 } });
    await c.say(speech(900));
    await c.waitTurns(2);
    await c.until('the answer to be heard', () => c.transport.heard.length > 0);
    expect(c.callLog.turns[1]!.metrics).toMatchObject({ preemptive: 1, endpointing: 701, voice_to_voice: 901 });
    await c.end();
  });

  it('discarded when the caller goes on speaking: the model is aborted, nothing is heard or stored of it, and its tokens are counted', async () => {
    const llm = (clock: ManualClock) =>
      new FakeLlm({ reply: (said) => `You asked: ${said} We open at nine.`, firstTokenMs: 100, tokensPerSecond: 50, clock });
    const c = startCall({
      transcripts: ['When does the clinic', 'open on Saturdays?'],
      llm,
      behaviour: { greeting: null, endpointingMs: 700 },
    });
    await c.say(speech(900));
    // A pause: the VAD's end after 200 ms, the STT's final 250 ms later (a reply is prepared), then the caller goes
    // on 700 ms into the pause, before the endpointing time (700 ms from the VAD's end) is up.
    await c.clock.advanceAsync(700);
    expect(c.requests).toHaveLength(1);
    expect(c.requests[0]!.signal!.aborted).toBe(false);
    await c.say(speech(900));
    expect(c.requests[0]!.signal!.aborted).toBe(true);
    expect(c.transport.heard).toEqual([]);
    expect(c.callLog.turns).toEqual([]);
    await c.waitTurns(2);
    expect(c.turns()).toEqual([
      ['caller', 'When does the clinic open on Saturdays?'],
      ['agent', 'You asked: When does the clinic open on Saturdays? We open at nine.'],
    ]);
    expect(c.requests.map((r) => r.messages.at(-1)!.content)).toEqual(['When does the clinic', 'When does the clinic open on Saturdays?']);
    // The dropped reply had produced its first tokens ("You asked: When "...) before the caller went on.
    const discarded = c.callLog.events.filter((e) => e.type === 'turn.preemptive_discarded');
    expect(discarded).toHaveLength(1);
    expect(discarded[0]!.data).toMatchObject({ reason: 'caller_resumed', tts_chars: 0 });
    const { llm_chars: chars, llm_tokens: tokens } = discarded[0]!.data as { llm_chars: number; llm_tokens: number };
    expect(chars).toBeGreaterThan(0);
    expect(tokens).toBeGreaterThan(0);
    // The waste is stored with the agent's turn that followed, whose own reply was prepared too.
    expect(c.callLog.turns[1]!.metrics).toMatchObject({
      preemptive: 1,
      preemptive_discarded: 1,
      preemptive_wasted_llm_chars: chars,
      preemptive_wasted_llm_tokens: tokens,
      preemptive_wasted_tts_chars: 0,
    });
    // Every heard frame is the answer to the whole turn, after it ended.
    const turnEnd = c.callLog.turns[0]!.endMs! + 700;
    expect(c.transport.heard[0]!.atMs).toBeGreaterThan(turnEnd);
    await c.end();
  });

  it('off: no reply is started before the end of turn, whatever the caller does', async () => {
    const llm = (clock: ManualClock) => new FakeLlm({ reply: () => 'We open at nine.', firstTokenMs: 100, tokensPerSecond: 50, clock });
    const c = startCall({
      transcripts: ['When does the clinic', 'open on Saturdays?'],
      llm,
      behaviour: { greeting: null, endpointingMs: 700, preemptive: false },
    });
    await c.say(speech(900));
    await c.clock.advanceAsync(700);
    expect(c.requests).toHaveLength(0);
    await c.say(speech(900));
    await c.waitTurns(2);
    expect(c.requests).toHaveLength(1);
    expect(c.callLog.events).toEqual([]);
    expect(c.callLog.turns[1]!.metrics).not.toHaveProperty('preemptive');
    await c.end();
  });

  it('a prepared reply that is spoken is aborted by a barge-in like any other', async () => {
    const long = 'First, our clinic is open every weekday. Second, we have free parking. Third, bring your insurance card.';
    const llm = (clock: ManualClock) =>
      new FakeLlm({ reply: (said) => (/stop/i.test(said) ? 'Of course.' : long), firstTokenMs: 100, tokensPerSecond: 10, clock });
    const c = startCall({ transcripts: ['Tell me everything.', 'Stop, please.'], llm, behaviour: { greeting: null } });
    await c.say(speech(700));
    await c.until('the answer to be under way', () => c.transport.heardMs() >= 1000);
    expect(c.requests[0]!.signal!.aborted).toBe(false);
    await c.say(speech(700));
    expect(c.transport.clears).toHaveLength(1);
    expect(c.requests[0]!.signal!.aborted).toBe(true);
    await c.waitTurns(4);
    expect(c.callLog.turns[1]).toMatchObject({ speaker: 'agent', interrupted: true, metrics: { preemptive: 1 } });
    expect(c.callLog.turns[3]).toMatchObject({ speaker: 'agent', text: 'Of course.', metrics: { preemptive: 1 } });
    await c.end();
  });

  it('a reply prepared when the call ends is aborted and counted', async () => {
    const c = startCall({ transcripts: ['The clinic hours.'], llm: referenceLlm, behaviour: { greeting: null, endpointingMs: 700 } });
    await c.say(speech(900));
    await c.clock.advanceAsync(500); // the final came at 450: the reply is being prepared
    expect(c.requests).toHaveLength(1);
    await c.end();
    expect(c.requests[0]!.signal!.aborted).toBe(true);
    expect(c.callLog.turns).toEqual([]);
    expect(c.callLog.events).toMatchObject([{ type: 'turn.preemptive_discarded', data: { reason: 'call_ended' } }]);
  });
});

describe('CallSession: turn resumption (the caller goes on before any of the answer is heard)', () => {
  // A slow first sentence: its words come at 10 a second after the first at 100 ms, so the answer is heard about
  // 1.3 s after the turn ends (the TTS's first byte 200 ms after the sentence).
  const slow = (clock: ManualClock) =>
    new FakeLlm({
      reply: (said) =>
        /receipt/.test(said) ? 'Of course, I will send the receipt by email today.' : 'Of course, I can help you with that.',
      firstTokenMs: 100,
      tokensPerSecond: 10,
      clock,
    });
  const afterthought = () =>
    startCall({
      transcripts: ['Yes.', 'And can you send me the receipt too?'],
      llm: slow,
      behaviour: { greeting: null, endpointingMs: 700, preemptive: false },
    });

  it('the answer is dropped unheard, its waste counted, and the turn goes on: one caller turn with both parts', async () => {
    const c = afterthought();
    await c.clock.advanceAsync(500);
    await c.say(speech(600));
    await c.until('the turn to end (the model asked)', () => c.requests.length === 1);
    const turnEndedAt = c.clock.now();
    await c.clock.advanceAsync(500); // the model has given its first words, the first sentence is not complete
    expect(c.transport.heard).toEqual([]);
    await c.say(speech(900));
    // The VAD heard speech (60 ms): the model was aborted, nothing was played or stored.
    expect(c.requests[0]!.signal!.aborted).toBe(true);
    expect(c.callLog.turns).toEqual([]);
    expect(c.transport.heard).toEqual([]);
    await c.waitTurns(2);
    expect(c.turns()).toEqual([
      ['caller', 'Yes. And can you send me the receipt too?'],
      ['agent', 'Of course, I will send the receipt by email today.'],
    ]);
    // The turn spans both parts: from the first speech's start (60 ms in) to the second's end.
    expect(c.callLog.turns[0]!.startMs).toBe(560);
    expect(c.callLog.turns[0]!.endMs!).toBeGreaterThan(turnEndedAt + 500 + 900);
    // The model's second request holds one caller message with all the words.
    expect(c.requests).toHaveLength(2);
    expect(c.requests[1]!.messages.filter((m) => m.role === 'user').map((m) => m.content)).toEqual([
      'Yes. And can you send me the receipt too?',
    ]);
    // Everything heard is the second answer, after the turn that has both parts ended.
    expect(c.transport.heard[0]!.atMs).toBeGreaterThan(c.callLog.turns[0]!.endMs! + 700);
    // The dropped answer's words so far are waste, in the event and with the agent's turn.
    const resumed = c.callLog.events.filter((e) => e.type === 'turn.resumed');
    expect(resumed).toHaveLength(1);
    const data = resumed[0]!.data as { after_ms: number; llm_chars: number; llm_tokens: number; tts_chars: number; resumes: number };
    expect(data).toMatchObject({ resumes: 1, tts_chars: 0 });
    expect(data.after_ms).toBeGreaterThanOrEqual(540);
    expect(data.after_ms).toBeLessThanOrEqual(580);
    expect(data.llm_chars).toBeGreaterThan(0);
    expect(data.llm_chars).toBeLessThan('Of course, I can help you with that.'.length);
    expect(data.llm_tokens).toBeGreaterThan(0);
    expect(c.callLog.turns[1]!.metrics).toMatchObject({
      turn_resumed: 1,
      resumed_wasted_llm_chars: data.llm_chars,
      resumed_wasted_llm_tokens: data.llm_tokens,
      resumed_wasted_tts_chars: 0,
    });
    expect(c.callLog.events.map((e) => e.type)).toEqual(['turn.resumed']);
    await c.end();
  });

  it('off (call.turn_resumption): the speech interrupts the unheard reply and is a turn of its own, as before', async () => {
    const c = startCall({
      transcripts: ['Yes.', 'And can you send me the receipt too?'],
      llm: slow,
      behaviour: { greeting: null, endpointingMs: 700, preemptive: false, turnResumption: false },
    });
    await c.say(speech(600));
    await c.until('the turn to end (the model asked)', () => c.requests.length === 1);
    await c.clock.advanceAsync(500);
    await c.say(speech(900));
    await c.waitTurns(4);
    expect(c.turns()).toEqual([
      ['caller', 'Yes.'],
      ['agent', ''],
      ['caller', 'And can you send me the receipt too?'],
      ['agent', 'Of course, I will send the receipt by email today.'],
    ]);
    expect(c.callLog.events.map((e) => e.type)).toEqual(['turn.barge_in']);
    await c.end();
  });

  it('a reply prepared before the turn ended is dropped the same way (preemptive on)', async () => {
    const c = startCall({
      transcripts: ['Yes.', 'And can you send me the receipt too?'],
      llm: slow,
      behaviour: { greeting: null, endpointingMs: 700 },
    });
    await c.say(speech(600));
    await c.until('the turn to end', () =>
      c.transport.notified.some((n) => n.message.type === 'agent.state' && n.message.state === 'thinking'),
    );
    await c.clock.advanceAsync(100);
    await c.say(speech(900));
    expect(c.requests[0]!.signal!.aborted).toBe(true);
    await c.waitTurns(2);
    expect(c.turns()).toEqual([
      ['caller', 'Yes. And can you send me the receipt too?'],
      ['agent', 'Of course, I will send the receipt by email today.'],
    ]);
    expect(c.callLog.events.map((e) => e.type)).toEqual(['turn.resumed']);
    expect(c.callLog.turns[1]!.metrics).toMatchObject({ turn_resumed: 1, preemptive: 1 });
    await c.end();
  });

  it('once the answer’s audio has gone out, the caller’s speech is a barge-in as before, and two turns are stored', async () => {
    const c = afterthought();
    await c.say(speech(600));
    await c.until('the answer to be heard', () => c.transport.heard.length > 0);
    await c.say(speech(900));
    expect(c.transport.clears).toHaveLength(1);
    await c.waitTurns(4);
    expect(c.turns().map(([speaker, text]) => [speaker, speaker === 'agent' ? undefined : text])).toEqual([
      ['caller', 'Yes.'],
      ['agent', undefined],
      ['caller', 'And can you send me the receipt too?'],
      ['agent', undefined],
    ]);
    expect(c.callLog.turns[1]).toMatchObject({ interrupted: true });
    expect(c.callLog.events.map((e) => e.type)).toEqual(['turn.barge_in']);
    await c.end();
  });

  it('a noise too short for the speech detector does not drop the answer', async () => {
    const c = afterthought();
    await c.say(speech(600));
    await c.until('the turn to end (the model asked)', () => c.requests.length === 1);
    await c.clock.advanceAsync(300);
    await c.say(speech(40)); // the VAD needs 60 ms of speech
    await c.waitTurns(2);
    expect(c.requests[0]!.signal!.aborted).toBe(false);
    expect(c.turns()).toEqual([
      ['caller', 'Yes.'],
      ['agent', 'Of course, I can help you with that.'],
    ]);
    expect(c.callLog.events).toEqual([]);
    await c.end();
  });
});
