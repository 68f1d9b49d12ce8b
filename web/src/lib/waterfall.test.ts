import { describe, expect, it } from 'vitest';
import { waterfall, waterfallSpan } from './waterfall';

const at = (bars: ReturnType<typeof waterfall>, stage: string) => bars.find((b) => b.stage === stage);

describe('waterfall', () => {
  it('lays each stage out from the end of the caller’s speech', () => {
    const bars = waterfall({ endpointing: 703, stt_final: 340, retrieval: 76, llm_ttft: 16, tts_ttfb: 768, voice_to_voice: 1566 });
    expect(at(bars, 'endpointing')).toMatchObject({ startMs: 0, durationMs: 703 });
    expect(at(bars, 'stt_final')).toMatchObject({ startMs: 0, durationMs: 340 });
    // Retrieval starts when the turn ends; the model after retrieval.
    expect(at(bars, 'retrieval')).toMatchObject({ startMs: 703, durationMs: 76 });
    expect(at(bars, 'llm_ttft')).toMatchObject({ startMs: 779, durationMs: 16 });
    // The first audio byte ends where the agent's first audio went out.
    expect(at(bars, 'tts_ttfb')).toMatchObject({ startMs: 1566 - 768, durationMs: 768 });
    expect(at(bars, 'voice_to_voice')).toMatchObject({ startMs: 0, durationMs: 1566 });
    expect(waterfallSpan(bars)).toBe(1566);
  });

  it('without voice-to-voice, puts the TTS right after the first token', () => {
    const bars = waterfall({ endpointing: 500, retrieval: 100, llm_ttft: 200, tts_ttfb: 300 });
    expect(at(bars, 'tts_ttfb')).toMatchObject({ startMs: 800, durationMs: 300 });
    expect(at(bars, 'voice_to_voice')).toBeUndefined();
    expect(waterfallSpan(bars)).toBe(1100);
  });

  it('leaves out what was not measured and ignores nonsense', () => {
    const bars = waterfall({ llm_ttft: 250, retrieval: Number.NaN, endpointing: -5, other: 9 });
    expect(bars.map((b) => b.stage)).toEqual(['endpointing', 'llm_ttft']);
    expect(at(bars, 'endpointing')).toMatchObject({ startMs: 0, durationMs: 0 });
    expect(at(bars, 'llm_ttft')).toMatchObject({ startMs: 0, durationMs: 250 });
    expect(waterfall({})).toEqual([]);
    expect(waterfallSpan([])).toBe(0);
  });

  it('never starts a bar before zero when the TTS took longer than voice-to-voice', () => {
    const bars = waterfall({ tts_ttfb: 900, voice_to_voice: 600 });
    expect(at(bars, 'tts_ttfb')).toMatchObject({ startMs: 0, durationMs: 600 });
  });
});
