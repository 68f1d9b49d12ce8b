// One agent turn's latencies laid out in time from the moment the caller stopped speaking (0 ms), as the voice
// session measures them (src/voice/turns.ts, agent.ts, call-session.ts):
// - endpointing: the silence waited before the turn was declared over (0 -> E);
// - stt_final: when the speech-to-text's final words came, after the end of speech (0 -> S);
// - retrieval: the knowledge search, started when the turn ended (E -> E+R);
// - llm_ttft: the model's first token, asked after retrieval (E+R -> E+R+L);
// - tts_ttfb: the first audio byte of the first sentence, ending when the first audio went out (V-T -> V), or
//   right after the first token when the voice-to-voice time is unknown;
// - voice_to_voice: end of the caller's speech to the agent's first audio (0 -> V).
// Missing metrics are left out; times are clamped to be >= 0.

export interface Bar {
  stage: string;
  label: string;
  startMs: number;
  durationMs: number;
}

export const STAGES: Record<string, string> = {
  endpointing: 'Endpointing',
  stt_final: 'STT final',
  retrieval: 'Retrieval',
  llm_ttft: 'LLM first token',
  tts_ttfb: 'TTS first byte',
  voice_to_voice: 'Voice to voice',
};

const num = (m: Record<string, number>, k: string): number | undefined => {
  const v = m[k];
  return typeof v === 'number' && Number.isFinite(v) ? Math.max(0, v) : undefined;
};

export function waterfall(metrics: Record<string, number>): Bar[] {
  const bars: Bar[] = [];
  const add = (stage: string, startMs: number, durationMs: number) =>
    bars.push({ stage, label: STAGES[stage]!, startMs: Math.max(0, Math.round(startMs)), durationMs: Math.round(durationMs) });

  const e = num(metrics, 'endpointing');
  const s = num(metrics, 'stt_final');
  const r = num(metrics, 'retrieval');
  const l = num(metrics, 'llm_ttft');
  const t = num(metrics, 'tts_ttfb');
  const v = num(metrics, 'voice_to_voice');

  if (e !== undefined) add('endpointing', 0, e);
  if (s !== undefined) add('stt_final', 0, s);
  const turnEnd = e ?? 0;
  if (r !== undefined) add('retrieval', turnEnd, r);
  const llmStart = turnEnd + (r ?? 0);
  if (l !== undefined) add('llm_ttft', llmStart, l);
  if (t !== undefined) {
    if (v !== undefined) add('tts_ttfb', v - t, Math.min(t, v));
    else add('tts_ttfb', llmStart + (l ?? 0), t);
  }
  if (v !== undefined) add('voice_to_voice', 0, v);
  return bars;
}

/** The end of the latest bar: the chart's width. */
export function waterfallSpan(bars: Bar[]): number {
  return bars.reduce((m, b) => Math.max(m, b.startMs + b.durationMs), 0);
}
