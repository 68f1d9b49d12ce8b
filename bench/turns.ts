// End-of-turn benchmark (not a test): the fixed endpointing time against the adaptive one (src/voice/endpointing.ts)
// on 135 scripted caller utterances with pauses in them (bench/turns-data.ts: espeak-ng and FSDD digit recordings,
// 8 kHz, pauses of 300-1500 ms after fillers, conjunctions, prepositions and articles, between dictated digits and
// after a complete sentence the caller adds to). Reported apart for: the first 68, which the first rules were written
// against; the 108 (40 added after those rules); the two halves of the 108 (every other utterance: the afterthought
// rules were designed on the first half, the second checks them); the 27 held out (written before the afterthought
// rules were tuned, never tuned on); and all 135.
//
//   npm run bench:turns                       # Silero VAD; oracle words and pocketsphinx words; writes bench/results/turns.json
//   npm run bench:turns -- --quick            # oracle words only (about a minute)
//   npm run bench:turns -- --vad energy --stt-latency 450 --base 700
//
// Each utterance runs through the real TurnDetector in virtual time (ManualClock), frame by 20 ms frame, with the
// real VAD the call uses (Silero by default, in this thread). The STT's finals come `--stt-latency` ms (default 250,
// the reference fake of bench:voice; pocketsphinx measured 205 ms p50, 436 ms p95 at 8 kHz in bench:local-stt)
// after each VAD speech-end, as in a call (the session flushes the STT there), with one of two texts:
//   - oracle: the words the caller said in that stretch of audio (the manifest's, spread over their piece's time):
//     the rules' quality without recognition errors;
//   - pocketsphinx: what the local engine (general model) actually heard, one stream per utterance, flushed at each
//     VAD speech-end, audio pushed as fast as the engine takes it (its own timing replaced by the latency above).
// A false cut-in: the turn ended (the agent would answer) before the caller's last word. End-of-turn delay: from the
// end of the caller's last word to the turn ending, per utterance (the last turn), including the VAD's hangover.
//
// Turn resumption (the call takes a turn up again when the caller goes on before any reply audio was sent): the rows
// marked "resume" model the agent's reply and tell the detector when its first audio goes out; a turn the caller
// took up again before then is no cut-in (the agent had not answered). The first audio comes, with the reference
// stages of bench:voice (LLM first token 400 ms, 50 tokens/s, a first sentence of 6 tokens, TTS first byte 200 ms):
//   - resume-720: 720 ms after the turn ended (the reply starts at the end of turn; preemptive replies off);
//   - resume-prep: with the reply prepared from the STT final whose words the turn has (preemptive replies, the
//     default): 200 ms after the turn ended or after the first sentence was ready (the final + 520 ms), the later.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { type AudioFrame, toFrames } from '../src/voice/audio.js';
import { ManualClock } from '../src/voice/clock.js';
import { PocketsphinxStt } from '../src/voice/stt/pocketsphinx-stt.js';
import { TurnDetector } from '../src/voice/turns.js';
import { EnergyVad } from '../src/voice/vad/energy-vad.js';
import type { VAD, VadEvent } from '../src/voice/vad/vad.js';
import { progress } from './data.js';
import { loadManifest, RATE, render, type RenderedUtterance, type Utterance } from './turns-data.js';

const FRAME_MS = 20;
/** The reference stages of bench:voice: LLM first token, 6 tokens to the first full stop at 50/s, TTS first byte. */
const LLM_FIRST_SENTENCE_MS = 400 + 6 * 20;
const TTS_FIRST_BYTE_MS = 200;

/** How the agent's reply is modelled: none (the detector alone, as before resumption), or when its first audio goes out. */
export type ReplyModel = 'none' | 'resume-720' | 'resume-prep';
/** Categories whose utterance ends in a complete question or sentence (the others end in digits). */
const ENDS_COMPLETE = new Set(['question', 'statement', 'short', 'filler', 'conjunction', 'afterthought', 'opener']);

interface Final {
  atMs: number;
  text: string;
  confidence?: number;
}

interface Run {
  id: string;
  category: string;
  /** One of the utterances added after the rules were written (turns-data.ts ADDED). */
  added: boolean;
  /** One of the held-out utterances (turns-data.ts HELD_OUT). */
  heldOut: boolean;
  cutIn: boolean;
  /** Turns the caller took up again before the reply's first audio (resume rows). */
  resumed: number;
  /**
   * After a cut-in, how long after the turn ended the caller spoke again: a reply not yet heard by then could still
   * be dropped and the turn taken again with all the words.
   */
  resumedAfterMs?: number;
  /** From the end of the last word to the turn ending; undefined: no turn after it. */
  delayMs?: number;
  turns: { atMs: number; text: string }[];
}

const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;
const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
const percentile = (xs: number[], p: number) =>
  xs.length ? [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)]! : NaN;

/** The VAD over the utterance: each frame's event and whether the frame itself is speech. */
export function vadTrack(frames: AudioFrame[], vad: VAD): { event: VadEvent | null; voiced: boolean }[] {
  vad.reset();
  return frames.map((f) => {
    const event = vad.push(f);
    return { event, voiced: vad.voiced };
  });
}

/** When each VAD speech-end happened (the end of the frame that raised it). */
export const speechEnds = (track: ReturnType<typeof vadTrack>) =>
  track.flatMap((t, i) => (t.event === 'speech-end' ? [(i + 1) * FRAME_MS] : []));

/**
 * Oracle finals: every word said, timed within its piece of speech, is in the final of the first speech-end after it;
 * a speech-end with no new words gives an empty final (as Deepgram answers a Finalize).
 */
export function oracleFinals(r: RenderedUtterance, ends: number[], latencyMs: number): Final[] {
  const words: { atMs: number; word: string }[] = [];
  for (const c of r.chunks) {
    const w = c.text.split(/\s+/).filter(Boolean);
    w.forEach((word, i) => words.push({ atMs: c.startMs + ((i + 1) * (c.endMs - c.startMs)) / w.length, word }));
  }
  const finals: Final[] = ends.map((end) => ({ atMs: end + latencyMs, text: '' }));
  for (const { atMs, word } of words) {
    const i = ends.findIndex((end) => end >= atMs);
    // A word the VAD never closed a stretch on (it did not hear it end) goes to the last stretch.
    const f = finals[i < 0 ? finals.length - 1 : i];
    if (f) f.text = `${f.text} ${word}`.trim();
  }
  return finals;
}

/**
 * What pocketsphinx heard, one stream per utterance, flushed at each VAD speech-end (as a call does). Kept in a file in the temp folder by audio and VAD: the words do
 * not depend on the endpointing rules, so a second run is quick.
 */
export async function pocketsphinxFinals(
  u: Utterance,
  frames: AudioFrame[],
  track: ReturnType<typeof vadTrack>,
  latencyMs: number,
): Promise<Final[]> {
  const key = createHash('sha256')
    .update(JSON.stringify(['v3', u.id, track.map((t) => t.event)]))
    .update(new Uint8Array(frames.flatMap((f) => [...new Uint8Array(f.pcm.buffer, f.pcm.byteOffset, 64)])))
    .digest('hex');
  const cached = readCache()[key];
  const got = cached ?? (await transcribe(frames, track));
  if (!cached) writeCache(key, got);
  const ends = speechEnds(track);
  const finals: Final[] = [];
  for (const f of got) {
    const end = ends.find((e) => e >= f.endMs) ?? ends[ends.length - 1] ?? f.endMs;
    finals.push({ atMs: end + latencyMs, text: f.text, confidence: f.confidence });
  }
  return finals;
}

async function transcribe(frames: AudioFrame[], track: ReturnType<typeof vadTrack>): Promise<Heard[]> {
  const stream = new PocketsphinxStt({ sampleRate: RATE }).stream({});
  const got: Heard[] = [];
  const collecting = (async () => {
    for await (const e of stream.events) if (e.type === 'final') got.push({ text: e.text, endMs: e.endMs, confidence: e.confidence });
  })();
  // All of it: stopping at the last speech-end (its flush written, then close) lost the last words of a third of
  // the utterances.
  frames.forEach((f, i) => {
    stream.push(f);
    if (track[i]!.event === 'speech-end') stream.flush();
  });
  await stream.close();
  await collecting;
  return got;
}

type Heard = { text: string; endMs: number; confidence?: number };
const CACHE_FILE = path.join(os.tmpdir(), 'bench-turns-pocketsphinx.json');
let cache: Record<string, Heard[]> | undefined;
function readCache(): Record<string, Heard[]> {
  if (!cache) {
    try {
      cache = JSON.parse(readFileSync(CACHE_FILE, 'utf8')) as Record<string, Heard[]>;
    } catch {
      cache = {};
    }
  }
  return cache;
}
function writeCache(key: string, value: Heard[]) {
  readCache()[key] = value;
  writeFileSync(CACHE_FILE, JSON.stringify(cache));
}

/** The TurnDetector over the utterance in virtual time. */
export function simulate(
  u: Utterance,
  r: RenderedUtterance,
  track: ReturnType<typeof vadTrack>,
  finals: Final[],
  rules: { endpointingMs: number; adaptiveEndpointing: boolean },
  reply: ReplyModel = 'none',
): Run {
  const clock = new ManualClock();
  const turns: (Run['turns'][number] & { resumed?: boolean })[] = [];
  let preview: { atMs: number; text: string } | undefined;
  let firstAudio: ReturnType<ManualClock['setTimeout']> | undefined;
  const detector: TurnDetector = new TurnDetector(
    { ...rules, minInterruptionMs: 400, silencePromptMs: 3_600_000, maxDurationMs: 3_600_000 },
    clock,
    (d) => {
      if (d.type === 'turn-preview') preview = { atMs: clock.now(), text: d.text };
      if (d.type === 'turn-preview-cancel') preview = undefined;
      if (d.type === 'turn') {
        turns.push({ atMs: clock.now(), text: d.text });
        if (reply === 'none') return;
        // The session starts the reply at once (the detector knows the agent is replying, not yet heard).
        detector.replyStarted();
        detector.agentSpeakingStarted();
        const prepared = reply === 'resume-prep' && preview?.text === d.text ? preview.atMs : undefined;
        const at =
          prepared === undefined
            ? clock.now() + LLM_FIRST_SENTENCE_MS + TTS_FIRST_BYTE_MS
            : Math.max(clock.now(), prepared + LLM_FIRST_SENTENCE_MS) + TTS_FIRST_BYTE_MS;
        preview = undefined;
        firstAudio = clock.setTimeout(() => detector.agentAudioStarted(), at - clock.now());
      }
      if (d.type === 'turn-resumed') {
        clock.clearTimeout(firstAudio);
        turns.at(-1)!.resumed = true;
      }
      // The session stops the reply at once.
      if (d.type === 'barge-in') detector.replyEnded(true);
    },
    { previews: reply === 'resume-prep', resumption: reply !== 'none' },
  );
  detector.start({ agentSpeaksFirst: true });
  for (const f of finals)
    clock.setTimeout(
      () => detector.stt({ type: 'final', text: f.text, startMs: 0, endMs: f.atMs, confidence: f.confidence, endOfTurn: true }),
      f.atMs,
    );
  for (const t of track) {
    clock.advance(FRAME_MS);
    detector.vad(t.event, t.voiced, FRAME_MS);
  }
  detector.stop();
  const after = turns.find((t) => t.atMs >= r.endMs);
  // A turn the caller took up again before the reply was heard is no cut-in: the agent had not answered.
  const cut = turns.find((t) => t.atMs < r.endMs && !t.resumed);
  // The stretch of speech the turn cut (negative: the caller had started it again before the VAD heard it).
  const resumed = cut && r.chunks.find((c) => c.endMs > cut.atMs);
  return {
    id: u.id,
    category: u.category,
    added: u.added === true,
    heldOut: u.heldOut === true,
    cutIn: cut !== undefined,
    resumed: turns.filter((t) => t.resumed).length,
    resumedAfterMs: cut && resumed ? Math.round(resumed.startMs - cut.atMs) : undefined,
    delayMs: after ? after.atMs - r.endMs : undefined,
    turns: turns.map((t) => ({ atMs: t.atMs, text: t.resumed ? `${t.text} [resumed]` : t.text })),
  };
}

interface Summary {
  utterances: number;
  false_cut_ins: number;
  false_cut_in_pct: number;
  /** Mean delay on utterances ending in a complete question or sentence. */
  mean_delay_complete_ms: number;
  p50_delay_complete_ms: number;
  p95_delay_complete_ms: number;
  /** Mean delay on utterances ending in digits being dictated. */
  mean_delay_digits_ms: number;
  mean_delay_all_ms: number;
  unanswered: number;
  /** Turns taken up again before the reply was heard (resume rows). */
  resumed: number;
  by_category: Record<string, { n: number; cut_ins: number; mean_delay_ms: number }>;
}

function summarize(runs: Run[]): Summary {
  const cut = runs.filter((r) => r.cutIn).length;
  const delays = (rs: Run[]) => rs.flatMap((r) => (r.delayMs === undefined ? [] : [r.delayMs]));
  const complete = delays(runs.filter((r) => ENDS_COMPLETE.has(r.category)));
  const byCategory: Summary['by_category'] = {};
  for (const c of new Set(runs.map((r) => r.category))) {
    const rs = runs.filter((r) => r.category === c);
    byCategory[c] = { n: rs.length, cut_ins: rs.filter((r) => r.cutIn).length, mean_delay_ms: round(mean(delays(rs)), 0) };
  }
  return {
    utterances: runs.length,
    false_cut_ins: cut,
    false_cut_in_pct: round((100 * cut) / runs.length),
    mean_delay_complete_ms: round(mean(complete), 0),
    p50_delay_complete_ms: percentile(complete, 50),
    p95_delay_complete_ms: percentile(complete, 95),
    mean_delay_digits_ms: round(mean(delays(runs.filter((r) => !ENDS_COMPLETE.has(r.category)))), 0),
    mean_delay_all_ms: round(mean(delays(runs)), 0),
    unanswered: runs.filter((r) => r.delayMs === undefined).length,
    resumed: runs.reduce((n, r) => n + r.resumed, 0),
    by_category: byCategory,
  };
}

export interface TurnsBenchOptions {
  quick?: boolean;
  vad?: 'silero' | 'energy';
  sttLatencyMs?: number;
  baseMs?: number;
  log?: (line: string) => void;
}

export async function measureTurns(opts: TurnsBenchOptions = {}) {
  const log = opts.log ?? (() => {});
  const baseMs = opts.baseMs ?? 700;
  const latencyMs = opts.sttLatencyMs ?? 250;
  const manifest = loadManifest();
  const makeVad = async (): Promise<VAD> => {
    if (opts.vad === 'energy') return new EnergyVad();
    const { SileroVad } = await import('../src/voice/vad/silero-vad.js');
    return new SileroVad();
  };
  const vad = await makeVad();
  const sources = opts.quick ? ['oracle'] : ['oracle', 'pocketsphinx'];
  const runs: Record<string, Run[]> = {};
  const heard: { id: string; said: string; pocketsphinx: string }[] = [];
  const tick = progress('bench:turns', manifest.length, log);
  for (const u of manifest) {
    const r = await render(u);
    const frames = toFrames(r.pcm, RATE, 0);
    const track = vadTrack(frames, vad);
    const ends = speechEnds(track);
    for (const source of sources) {
      const finals = source === 'oracle' ? oracleFinals(r, ends, latencyMs) : await pocketsphinxFinals(u, frames, track, latencyMs);
      if (source === 'pocketsphinx')
        heard.push({
          id: u.id,
          said: u.text,
          pocketsphinx: finals.map((f) => `${f.text} (${f.confidence === undefined ? '-' : round(f.confidence, 2)})`).join(' | '),
        });
      for (const [mode, adaptive] of [
        ['fixed', false],
        ['adaptive', true],
      ] as const)
        for (const reply of ['none', 'resume-720', 'resume-prep'] as const)
          (runs[reply === 'none' ? `${source} ${mode}` : `${source} ${mode} ${reply}`] ??= []).push(
            simulate(u, r, track, finals, { endpointingMs: baseMs, adaptiveEndpointing: adaptive }, reply),
          );
    }
    tick.tick();
  }
  const summaries = Object.fromEntries(Object.entries(runs).map(([k, rs]) => [k, summarize(rs)]));
  // Each set apart: the later ones check the rules on utterances they were not written (or tuned) for.
  const sets: Record<string, (r: Run, i: number) => boolean> = {
    first_68: (r) => !r.added,
    all_108: (r) => !r.heldOut,
    design_half_of_108: (r, i) => !r.heldOut && i % 2 === 0,
    check_half_of_108: (r, i) => !r.heldOut && i % 2 === 1,
    held_out_27: (r) => r.heldOut,
  };
  const summariesBySet = Object.fromEntries(
    Object.entries(sets).map(([set, keep]) => [
      set,
      Object.fromEntries(Object.entries(runs).map(([k, rs]) => [k, summarize(rs.filter((r, i) => keep(r, i)))])),
    ]),
  );
  const perUtterance = manifest.map((u, i) => ({
    id: u.id,
    ...Object.fromEntries(Object.entries(runs).map(([k, rs]) => [k, rs[i]!.cutIn ? 'cut-in' : (rs[i]!.delayMs ?? null)])),
  }));
  const cutIns = Object.fromEntries(
    Object.entries(runs).map(([k, rs]) => [
      k,
      rs.filter((r) => r.cutIn).map((r) => ({ id: r.id, resumed_after_ms: r.resumedAfterMs, turns: r.turns.map((t) => t.text) })),
    ]),
  );
  return {
    baseMs,
    latencyMs,
    vad: opts.vad ?? 'silero',
    summaries,
    summaries_by_set: summariesBySet,
    cut_ins: cutIns,
    per_utterance: perUtterance,
    heard,
  };
}

async function main() {
  const args = process.argv.slice(2);
  const value = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
  const started = performance.now();
  const result = await measureTurns({
    quick: args.includes('--quick'),
    vad: value('--vad') === 'energy' ? 'energy' : 'silero',
    sttLatencyMs: value('--stt-latency') ? Number(value('--stt-latency')) : undefined,
    baseMs: value('--base') ? Number(value('--base')) : undefined,
    log: (l) => console.error(l),
  });
  console.log(`\nEnd of turn: ${result.vad} VAD, STT final ${result.latencyMs} ms after each speech-end, base ${result.baseMs} ms`);
  console.log('rows: words given to the turn detector, then fixed (before) or adaptive (after) endpointing; then');
  console.log('  without turn resumption, or with it and the reply first heard 720 ms after the turn (resume-720: preemptive');
  console.log('  replies off) or 200 ms after the turn or after the first sentence prepared from the STT final (resume-prep)\n');
  const table = (title: string, summaries: Record<string, Summary>) => {
    console.log(`${title}\n`);
    const header = ['', 'cut-ins', 'cut-in %', 'delay complete mean', 'p50', 'p95', 'delay digits mean', 'unanswered', 'resumed'];
    const rows = Object.entries(summaries).map(([k, s]) => [
      k,
      `${s.false_cut_ins}/${s.utterances}`,
      String(s.false_cut_in_pct),
      String(s.mean_delay_complete_ms),
      String(s.p50_delay_complete_ms),
      String(s.p95_delay_complete_ms),
      String(s.mean_delay_digits_ms),
      String(s.unanswered),
      String(s.resumed),
    ]);
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    for (const r of [header, ...rows]) console.log(r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  '));
    for (const source of ['oracle', 'pocketsphinx'])
      for (const reply of ['', ' resume-720', ' resume-prep']) {
        const fixed = summaries[`${source} fixed`];
        const adaptive = summaries[`${source} adaptive${reply}`];
        if (!fixed || !adaptive) continue;
        const lower = 100 * (1 - adaptive.mean_delay_complete_ms / fixed.mean_delay_complete_ms);
        const change = lower >= 0 ? `${round(lower)}% lower` : `${round(-lower)}% higher`;
        console.log(
          `${source} fixed -> adaptive${reply}: false cut-ins ${fixed.false_cut_in_pct}% -> ${adaptive.false_cut_in_pct}%; mean end-of-turn delay on complete utterances ${fixed.mean_delay_complete_ms} -> ${adaptive.mean_delay_complete_ms} ms (${change})`,
        );
      }
    console.log('\nby category (cut-ins / mean delay ms):');
    const cats = Object.keys(Object.values(summaries)[0]!.by_category);
    for (const [k, s] of Object.entries(summaries))
      console.log(
        `  ${k.padEnd(22)} ${cats.map((c) => `${c} ${s.by_category[c]!.cut_ins}/${s.by_category[c]!.mean_delay_ms}`).join('  ')}`,
      );
    console.log('');
  };
  const titles: Record<string, string> = {
    first_68: 'the first 68 (the first rules were written against them)',
    all_108: 'the 108 (the first 68 and 40 added after the first rules)',
    design_half_of_108: 'the design half of the 108 (every other one, from the first: the afterthought rules were designed on it)',
    check_half_of_108: 'the check half of the 108 (the others)',
    held_out_27: 'the 27 held out (written before the afterthought rules were tuned)',
  };
  for (const [set, summaries] of Object.entries(result.summaries_by_set)) table(titles[set] ?? set, summaries);
  table(`all ${Object.values(result.summaries)[0]!.utterances}`, result.summaries);
  for (const [k, list] of Object.entries(result.cut_ins))
    for (const c of list)
      if (k.includes('adaptive')) {
        const atFixed = result.cut_ins[k.replace('adaptive', 'fixed')]?.some((f) => f.id === c.id) ? 'also' : 'not';
        console.log(
          `  cut in (${k}): ${c.id}: ${c.turns.map((t) => `"${t}"`).join(' / ')} (the caller went on ${c.resumed_after_ms} ms after; ${atFixed} cut in at the fixed time)`,
        );
      }
  const out = value('--out') ?? (args.includes('--quick') ? undefined : path.join('bench', 'results', 'turns.json'));
  if (out) {
    mkdirSync(path.dirname(out), { recursive: true });
    const environment = {
      node: process.version,
      cpus: os.cpus().length,
      load: os.loadavg().map((x) => round(x, 2)),
      date: new Date().toISOString(),
    };
    writeFileSync(out, `${JSON.stringify({ environment, ...result }, null, 1)}\n`);
    console.log(`\nwrote ${out}`);
  }
  console.error(`took ${round((performance.now() - started) / 1000)} s`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
