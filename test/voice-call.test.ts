// Whole voice calls through VoiceCalls (the registry's engines from the tenant's settings, history from the
// database) over the in-memory transport, with real speech made by espeak-ng as the caller's voice:
// - the cloud chain (Deepgram, OpenAI, ElevenLabs fakes speaking their wire protocols): grounded answers,
//   barge-in, then each provider failing mid-call and the next engine taking over without dropping the call;
// - Anthropic as the LLM;
// - the local engines alone (pocketsphinx, the local responder, espeak-ng): no keys, no network.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryTransport } from '../src/voice/transports/memory.js';
import { FakeAnthropic } from './fakes/anthropic.js';
import { type FakeDeepgram, startFakeDeepgram } from './fakes/deepgram.js';
import { FakeElevenLabs } from './fakes/elevenlabs.js';
import { FakeOpenAI } from './fakes/openai.js';
import { speech as speakAs } from './fixtures/speech.js';
import { buildTestApp, call, type Session, signup, type TestApp, waitFor } from './helpers.js';

const RATE = 16000;
let t: TestApp;
let openai: FakeOpenAI;
let anthropic: FakeAnthropic;
let elevenlabs: FakeElevenLabs;
let deepgram: FakeDeepgram;

const CLINIC =
  '# Opening hours\n\nThe Sunrise clinic opens at seven thirty on weekdays. On Saturdays the clinic closes at noon.\n\n' +
  '# Parking\n\nFree parking is in the garage on Elm Street, behind the clinic.';

beforeAll(async () => {
  openai = await new FakeOpenAI().start();
  anthropic = await new FakeAnthropic().start();
  elevenlabs = await new FakeElevenLabs().start();
  deepgram = await startFakeDeepgram({});
  t = await buildTestApp({ OPENAI_BASE_URL: openai.baseURL, ANTHROPIC_BASE_URL: anthropic.baseURL, ELEVENLABS_BASE_URL: elevenlabs.baseUrl, DEEPGRAM_BASE_URL: deepgram.url });
});
afterAll(async () => {
  await t.close();
  await Promise.all([openai.stop(), anthropic.stop(), elevenlabs.stop(), deepgram.close()]);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** The caller's words as 16 kHz speech. */
const speech = (text: string) => speakAs(text, RATE);

async function tenantWithClinic(settings: object): Promise<Session> {
  const s = await signup(t.app);
  const doc = await call(t.app, 'POST', '/api/v1/documents', s.access_token, { title: 'Clinic', content: CLINIC });
  await waitFor('document ready', async () => ((await call(t.app, 'GET', `/api/v1/documents/${doc.json().id}`, s.access_token)).json().status === 'ready' ? true : undefined));
  const put = await call(t.app, 'PUT', '/api/v1/settings/tenant', s.access_token, { greeting: 'Hello, Sunrise clinic.', ...settings });
  expect(put.statusCode, put.body).toBe(200);
  return s;
}

async function startCall(s: Session) {
  const transport = new MemoryTransport(RATE);
  const row = await t.deps.calls.start(s.tenant.id, { direction: 'web' });
  const outcome = t.deps.voice.run(s.tenant.id, row.id, transport);
  const turns = () => t.deps.calls.transcript(s.tenant.id, row.id);
  const waitTurns = async (n: number, timeoutMs = 20_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const ts = await turns();
      if (ts.length >= n) return ts;
      if (Date.now() > deadline) throw new Error(`only ${ts.length} of ${n} turns: ${JSON.stringify(ts.map((x) => [x.speaker, x.text]))}`);
      await sleep(50);
    }
  };
  const events = async () => (await t.deps.calls.events(s.tenant.id, row.id)).map((e): Record<string, unknown> & { type: string } => ({ ...(e.extraData as Record<string, unknown>), type: e.type }));
  return { transport, callId: row.id, outcome, turns, waitTurns, events };
}

describe('voice calls through the cloud providers (fakes on their wire protocols)', () => {
  it('answers from the documents, handles barge-in, and survives each provider failing mid-call', async () => {
    const s = await tenantWithClinic({
      providers: { stt: { provider: 'deepgram', model: 'nova-3' }, llm: { provider: 'openai', model: 'gpt-4o-mini' }, tts: { provider: 'elevenlabs', voice: elevenlabs.voiceId } },
      provider_keys: { deepgram: deepgram.apiKey, openai: openai.apiKey, elevenlabs: elevenlabs.apiKey },
    });
    const long = Array.from({ length: 12 }, (_, i) => `Parking detail number ${i + 1} is worth knowing.`).join(' ');
    openai.chatScript = (body) => {
      const messages = body.messages as { role: string; content: string }[];
      const said = messages.at(-1)!.content;
      if (/parking/i.test(said)) return { text: long };
      if (/closes at noon/.test(messages[0]!.content)) return { text: 'On Saturdays we close at noon.' };
      return { text: 'I am not sure, let me find someone who knows.' };
    };
    deepgram.transcripts = ['When does the clinic close on Saturdays?', 'Tell me about parking.', 'Sorry, stop there.'];
    const c = await startCall(s);

    // The greeting, spoken by ElevenLabs.
    await c.waitTurns(1);
    expect(elevenlabs.requests.at(-1)!.body.text).toBe('Hello, Sunrise clinic.');
    expect(elevenlabs.requests.at(-1)!.url).toContain('output_format=pcm_16000');

    await c.transport.say(await speech('When does the clinic close on Saturdays?'));
    const answered = await c.waitTurns(3);
    expect(answered[1]).toMatchObject({ speaker: 'caller', text: 'When does the clinic close on Saturdays?' });
    expect(answered[2]).toMatchObject({ speaker: 'agent', text: 'On Saturdays we close at noon.', interrupted: false });
    expect(answered[2]!.citations.length).toBeGreaterThan(0);
    for (const k of ['endpointing', 'stt_final', 'retrieval', 'llm_ttft', 'tts_ttfb', 'voice_to_voice']) expect(answered[2]!.metrics).toHaveProperty(k);
    // Deepgram got linear16 at 16 kHz with our endpointing and interim results, authenticated with the key.
    const dg = deepgram.connections.at(-1)!;
    expect(dg.query).toMatchObject({ encoding: 'linear16', sample_rate: '16000', interim_results: 'true', model: 'nova-3' });
    expect(dg.headers.authorization).toBe(`Token ${deepgram.apiKey}`);

    // Barge-in during the long parking answer.
    await c.transport.say(await speech('Tell me about parking.'));
    await c.waitTurns(4);
    const deadline = Date.now() + 15_000;
    while (c.transport.heardMs(c.transport.now() - 1500) < 1400 && Date.now() < deadline) await sleep(20);
    await c.transport.say(await speech('Sorry, stop there.'));
    expect(c.transport.clears.length).toBeGreaterThanOrEqual(1);
    const afterBarge = await c.waitTurns(7);
    expect(afterBarge[4]).toMatchObject({ speaker: 'agent', interrupted: true });
    expect(long.startsWith(afterBarge[4]!.text)).toBe(true);
    expect(afterBarge[4]!.text.length).toBeLessThan(long.length);
    expect(afterBarge[5]).toMatchObject({ speaker: 'caller', text: 'Sorry, stop there.' });

    // Every provider fails at once: Deepgram's socket drops, OpenAI answers 500 (twice: the SDK retries once),
    // ElevenLabs answers 500. The call goes on with pocketsphinx, the local responder and espeak-ng.
    deepgram.dropNext();
    openai.failNext({ status: 500 }, { status: 500 });
    elevenlabs.failNext({ status: 500 });
    const before = (await c.turns()).length;
    const heardBefore = c.transport.heardMs();
    await c.transport.say(await speech('When does the clinic close on Saturdays?'));
    const after = await c.waitTurns(before + 2, 30_000);
    const reply = after.at(-1)!;
    const said = JSON.stringify(after.slice(before).map((x) => [x.speaker, x.text, x.interrupted]));
    expect(reply.speaker, said).toBe('agent');
    expect(reply.text.length, said).toBeGreaterThan(0);
    expect(c.transport.heardMs()).toBeGreaterThan(heardBefore + 500); // espeak-ng spoke the answer
    const fallbacks = (await c.events()).filter((e) => e.type === 'provider.fallback').map((e) => `${String(e.stage)}:${String(e.provider)}`);
    expect(fallbacks.sort()).toEqual(['llm:openai', 'stt:deepgram', 'tts:elevenlabs']);

    c.transport.hangup();
    expect(await c.outcome).toMatchObject({ status: 'completed', reason: 'caller hung up' });
    const record = (await call(t.app, 'GET', `/api/v1/calls/${c.callId}`, s.access_token)).json();
    expect(record.status).toBe('completed');
    const types = (await c.events()).map((e) => e.type);
    expect(types).toContain('turn.barge_in');
    expect(types.at(-1)).toBe('call.ended');
  }, 90_000);

  it('speaks with Anthropic as the LLM', async () => {
    const s = await tenantWithClinic({
      providers: { stt: { provider: 'deepgram' }, llm: { provider: 'anthropic', model: 'claude-haiku-4-5' }, tts: { provider: 'elevenlabs', voice: elevenlabs.voiceId } },
      provider_keys: { deepgram: deepgram.apiKey, anthropic: anthropic.apiKey, elevenlabs: elevenlabs.apiKey },
      greeting: null,
    });
    anthropic.script = (body) => ({ text: /closes at noon/.test(JSON.stringify(body.system)) ? 'We close at noon on Saturdays.' : 'I do not know.' });
    deepgram.transcripts = ['When does the clinic close on Saturdays?'];
    const c = await startCall(s);
    await c.transport.say(await speech('When does the clinic close on Saturdays?'));
    const ts = await c.waitTurns(2);
    expect(ts[1]).toMatchObject({ speaker: 'agent', text: 'We close at noon on Saturdays.' });
    c.transport.hangup();
    await c.outcome;
  }, 30_000);

  it('speaks with an OpenAI-compatible server (a base URL, e.g. Ollama or vLLM) as the LLM', async () => {
    const s = await tenantWithClinic({
      providers: { stt: { provider: 'deepgram' }, llm: { provider: 'openai_compatible', model: 'gpt-4o-mini', base_url: openai.baseURL }, tts: { provider: 'elevenlabs', voice: elevenlabs.voiceId } },
      provider_keys: { deepgram: deepgram.apiKey, openai_compatible: openai.apiKey, elevenlabs: elevenlabs.apiKey },
      greeting: null,
    });
    openai.chatScript = (body) => ({ text: /closes at noon/.test(JSON.stringify(body.messages)) ? 'Noon on Saturdays, from the local model.' : 'I do not know.' });
    deepgram.transcripts = ['When does the clinic close on Saturdays?'];
    const c = await startCall(s);
    await c.transport.say(await speech('When does the clinic close on Saturdays?'));
    const ts = await c.waitTurns(2);
    expect(ts[1]).toMatchObject({ speaker: 'agent', text: 'Noon on Saturdays, from the local model.' });
    c.transport.hangup();
    await c.outcome;
  }, 30_000);
});

describe('voice calls on the local engines alone (no keys, no network)', () => {
  it('pocketsphinx hears the question, the local responder answers from the documents, espeak-ng speaks; barge-in', async () => {
    const s = await tenantWithClinic({});
    const c = await startCall(s);
    await c.waitTurns(1);
    await c.transport.say(await speech('Where is the free parking?'));
    const ts = await c.waitTurns(3, 30_000);
    // What pocketsphinx heard is approximate (WER ~0.3 on this voice: npm run bench:local-stt); this question it hears.
    expect(ts[1]!.speaker).toBe('caller');
    expect(ts[1]!.text.toLowerCase()).toContain('parking');
    expect(ts[2]!.text).toContain('Elm Street');
    expect(ts[2]!.citations.length).toBeGreaterThan(0);
    for (const k of ['endpointing', 'stt_final', 'retrieval', 'tts_ttfb', 'voice_to_voice']) expect(ts[2]!.metrics).toHaveProperty(k);

    // The same question again, interrupted a second into the answer.
    await c.transport.say(await speech('Where is the free parking?'));
    await c.waitTurns(4, 30_000);
    const deadline = Date.now() + 20_000;
    while (c.transport.heardMs(c.transport.now() - 1000) < 900 && Date.now() < deadline) await sleep(20);
    await c.transport.say(await speech('When do you close on Saturday?'));
    expect(c.transport.clears.length).toBeGreaterThanOrEqual(1);
    const after = await c.waitTurns(7, 30_000);
    expect(after[4]).toMatchObject({ speaker: 'agent', interrupted: true });
    expect(after[5]!.speaker).toBe('caller');
    expect(after[6]!.speaker).toBe('agent');
    c.transport.hangup();
    expect(await c.outcome).toMatchObject({ status: 'completed', reason: 'caller hung up' });
    const events = (await c.events()).map((e) => e.type);
    expect(events).toContain('turn.barge_in');
    expect(events.at(-1)).toBe('call.ended');
  }, 90_000);
});
