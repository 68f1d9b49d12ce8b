// The metered engine wrappers: reported usage taken as it is, estimated only when the engine reports none; audio
// seconds and characters counted as they are sent; a provider that fails before answering is not counted.
import { describe, expect, it } from 'vitest';
import type { ChatRequest, LLM, LlmChunk } from './llm/llm.js';
import type { STT, SttStream } from './stt/stt.js';
import type { TTS } from './tts/tts.js';
import { meteredLlm, meteredStt, meteredTts, UsageTally } from './usage-meter.js';

const request: ChatRequest = { system: 'Be brief.', messages: [{ role: 'user', content: 'Hello there' }], knowledge: [], tools: [] };
const llm = (chunks: LlmChunk[], fail = false): LLM => ({
  provider: 'openai',
  model: 'gpt-4o-mini',
  async *chat() {
    if (fail) throw new Error('refused');
    yield* chunks;
  },
});
const drainAll = async (it: AsyncIterable<unknown>) => {
  for await (const chunk of it) void chunk;
};

describe('meteredLlm', () => {
  it('takes the tokens the provider reported', async () => {
    const m = new UsageTally();
    const chunks: LlmChunk[] = [
      { type: 'text', text: 'Hi!' },
      { type: 'done', finishReason: 'stop', usage: { inputTokens: 120, outputTokens: 7 } },
    ];
    await drainAll(meteredLlm(llm(chunks), m, 'tenant').chat(request));
    expect(m.drain()).toEqual([
      { component: 'llm', provider: 'openai', model: 'gpt-4o-mini', unit: 'input_tokens', billedTo: 'tenant', quantity: 120 },
      { component: 'llm', provider: 'openai', model: 'gpt-4o-mini', unit: 'output_tokens', billedTo: 'tenant', quantity: 7 },
    ]);
  });

  it('estimates when the stream reports nothing (cut short, or a local engine); nothing for a provider that failed first', async () => {
    const m = new UsageTally();
    await drainAll(meteredLlm(llm([{ type: 'text', text: 'Hello, how can I help?' }]), m, 'platform').chat(request));
    const [input, output] = m.drain();
    expect(input!.quantity).toBeGreaterThan(0);
    expect(output!.quantity).toBeGreaterThan(0);
    await expect(drainAll(meteredLlm(llm([], true), m, 'platform').chat(request))).rejects.toThrow('refused');
    expect(m.drain()).toEqual([]);
  });
});

describe('meteredStt and meteredTts', () => {
  it('counts the seconds of audio pushed and the characters sent', async () => {
    const m = new UsageTally();
    const inner: STT = {
      provider: 'deepgram',
      sampleRate: 16000,
      stream: (): SttStream => ({ push() {}, flush() {}, close: async () => {}, events: (async function* () {})() }),
    };
    const stream = meteredStt(inner, m, 'tenant').stream({});
    for (let i = 0; i < 150; i++) stream.push({ pcm: new Int16Array(320), sampleRate: 16000, timestampMs: i * 20 });
    const tts: TTS = { provider: 'local', sampleRate: 16000, synthesize: async function* () {} };
    await drainAll(meteredTts(tts, m, 'platform').synthesize('Good morning.', {}));
    const [stt, chars] = m.drain();
    expect(stt).toMatchObject({ component: 'stt', provider: 'deepgram', unit: 'seconds', billedTo: 'tenant' });
    expect(stt!.quantity).toBeCloseTo(3, 9);
    expect(chars).toEqual({ component: 'tts', provider: 'local', model: '', unit: 'characters', billedTo: 'platform', quantity: 13 });
  });
});
