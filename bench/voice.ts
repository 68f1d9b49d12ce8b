// Voice pipeline benchmark (not a test): N concurrent calls through the real CallSession, in-memory transports
// (a frame every 20 ms per call, like a phone line), the energy VAD (or `--vad silero`) and simulated providers with fixed latencies:
// STT final 250 ms, LLM first token 400 ms at 50 tokens/s, TTS first byte 200 ms; endpointing 700 ms.
// Records go to an embedded database as in production.
//
//   npm run bench:voice                      # 1, 50 and 200 concurrent calls
//   npm run bench:voice -- --sessions 1,20 --turns 3
//   npm run bench:voice -- --db server       # the database in its own process (as with DATABASE_URL), not embedded
//   npm run bench:voice -- --quick           # 1 and 50 concurrent calls
//   npm run bench:voice -- --preemptive on   # only with preemptive replies (default: off, then on: before and after)
//   npm run bench:voice -- --pause-ms 600    # the third question with a pause mid-sentence ("Can I book an
//                                            # appointment ... for Monday"): a prepared reply dropped each time
//
// Reports voice-to-voice (caller stops speaking -> first agent audio) p50/p95/p99, the pipeline's own overhead
// (voice-to-voice minus the simulated stages on the critical path: max(endpointing, STT final) + LLM time to the
// first complete sentence + TTS first byte), barge-in reaction (from the moment caller speech qualifies as an
// interruption to the transport being cleared, and from speech onset) and resident memory per call. Each size runs
// without preemptive replies (the reply starts at the end of turn) and with them (started at the STT's final, while the
// endpointing time runs): how many prepared replies were dropped (per turn) and the tokens they had produced.
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { loadConfig } from '../src/config.js';
import { tenants } from '../src/db/schema.js';
import { buildDeps, closeDeps } from '../src/deps.js';
import { Agent } from '../src/voice/agent.js';
import { callLogFor } from '../src/voice/call-log.js';
import { CallSession } from '../src/voice/call-session.js';
import { realClock, withNow } from '../src/voice/clock.js';
import { FakeLlm } from '../src/voice/llm/fake.js';
import { FakeStt } from '../src/voice/stt/fake.js';
import { MemoryTransport } from '../src/voice/transports/memory.js';
import { dbfs, toFrames } from '../src/voice/audio.js';
import { EspeakTts } from '../src/voice/tts/espeak-tts.js';
import { FakeTts } from '../src/voice/tts/fake.js';
import { ENERGY_VAD_DEFAULTS, EnergyVad } from '../src/voice/vad/energy-vad.js';
import { SileroVad } from '../src/voice/vad/silero-vad.js';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i++) {
  const value = process.argv[i + 1];
  const flag = value === undefined || value.startsWith('--');
  args.set(process.argv[i]!.replace(/^--/, ''), flag ? '' : value);
  if (!flag) i++;
}
const SESSIONS = (args.get('sessions') ?? (args.has('quick') ? '1,50' : '1,50,200')).split(',').map(Number);
const PREEMPTIVE = ({ on: [true], off: [false] } as Record<string, boolean[]>)[args.get('preemptive') ?? ''] ?? [false, true];
const TURNS = Number(args.get('turns') ?? 4);
const OUT = args.get('out') ?? 'bench/results/voice.json';
const VAD_KIND = args.get('vad') ?? 'energy';
/** 'embedded': PGlite in this process (the default deployment); 'server': a database server process beside it. */
const DB = args.get('db') ?? 'embedded';

const RATE = 8000;
const STT_FINAL_MS = 250;
const LLM_TTFT_MS = 400;
const TOKENS_PER_S = 50;
const TTS_FIRST_BYTE_MS = 200;
const ENDPOINTING_MS = 700;
const MIN_INTERRUPTION_MS = 300;
const QUALIFIES_MS = ENERGY_VAD_DEFAULTS.minSpeechMs + MIN_INTERRUPTION_MS;
// Six words to the first full stop: the first sentence is complete 5 token intervals after the first token.
const REPLY = 'Sure, the clinic opens at nine. We close at six on weekdays and at noon on Saturdays. Is there anything else?';
const FIRST_SENTENCE_WORDS = 6;
const FIRST_SENTENCE_MS = LLM_TTFT_MS + ((FIRST_SENTENCE_WORDS - 1) * 1000) / TOKENS_PER_S;
const IDEAL_MS = Math.max(ENDPOINTING_MS, STT_FINAL_MS) + FIRST_SENTENCE_MS + TTS_FIRST_BYTE_MS;
/** With preemptive replies the model starts at the STT's final: its first sentence may be ready by the end of turn. */
const IDEAL_PREEMPTIVE_MS = Math.max(ENDPOINTING_MS, STT_FINAL_MS + FIRST_SENTENCE_MS) + TTS_FIRST_BYTE_MS;

const pct = (xs: number[], p: number) =>
  xs.length ? [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]! : NaN;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** The simulated caller's voice, made once with espeak-ng (a speech detector such as Silero needs real speech). */
async function utterance(text: string): Promise<Int16Array> {
  const parts: Int16Array[] = [];
  for await (const f of new EspeakTts({ sampleRate: RATE, voice: 'en-us+klatt', wordsPerMinute: 170 }).synthesize(text)) parts.push(f.pcm);
  const pcm = new Int16Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((at, p) => (pcm.set(p, at), at + p.length), 0);
  // Without espeak's leading and trailing silence: the caller's speech starts when the audio does.
  const frames = toFrames(pcm, RATE);
  const loud = frames.map((f) => dbfs(f.pcm) > -40);
  return pcm.slice(loud.indexOf(true) * frames[0]!.pcm.length, (loud.lastIndexOf(true) + 1) * frames[0]!.pcm.length);
}
const QUESTIONS = await Promise.all([
  'When does the clinic open on Saturday',
  'Do you have free parking near the clinic',
  'Can I book an appointment for Monday',
]).then((q) => Promise.all(q.map(utterance)));
const INTERRUPTION = await utterance('Wait wait stop please');
/** The caller pauses this long inside the third question (0: no pause). */
const PAUSE_MS = Number(args.get('pause-ms') || 0);
const PAUSED = PAUSE_MS > 0 ? await Promise.all(['Can I book an appointment', 'for Monday'].map(utterance)) : [];

/** A database server in a child process; its URL. */
async function databaseServer(): Promise<{ url: string; stop(): void }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(path.dirname(fileURLToPath(import.meta.url)), 'pg-server.ts')], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += String(d);
      if (out.includes('\n')) resolve(out.split('\n')[0]!.trim());
    });
    child.on('exit', (code) => reject(new Error(`database server exited (${code})`)));
  });
  return { url, stop: () => child.kill() };
}

async function run(n: number, preemptive: boolean) {
  const ideal = preemptive ? IDEAL_PREEMPTIVE_MS : IDEAL_MS;
  const server = DB === 'server' ? await databaseServer() : undefined;
  const config = loadConfig({
    NODE_ENV: 'test',
    DATA_DIR: 'memory://',
    SECRET_KEY: 'bench-secret-key-that-is-long-enough-0123456789',
    INGEST_CONCURRENCY: '0',
    LOG_LEVEL: 'silent',
    // The bench measures the pipeline at up to 200 calls of one tenant, past the admission limits on purpose.
    MAX_LIVE_CALLS: '100000',
    MAX_LIVE_CALLS_PER_TENANT: '100000',
    ...(server && { DATABASE_URL: server.url }),
  });
  const deps = await buildDeps(config, pino({ level: 'silent' }));
  const [tenant] = await deps.database.db.insert(tenants).values({ name: 'bench' }).returning();
  const log = pino({ level: 'silent' });
  global.gc?.();
  const rssBefore = process.memoryUsage().rss;
  let rssPeak = rssBefore;
  const memTimer = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage().rss)), 100);
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();

  const bargeOnsetMs: number[] = [];
  // The simulated callers wait for the agent's turns; counted here rather than by polling the database, which
  // at 200 calls would be the benchmark's own load, not the pipeline's.
  const agentTurnCount = new Map<string, number>();
  const addTurn = deps.calls.addTurn.bind(deps.calls);
  deps.calls.addTurn = async (tenantId, callId, turn) => {
    const row = await addTurn(tenantId, callId, turn);
    if (turn.speaker === 'agent') agentTurnCount.set(callId, (agentTurnCount.get(callId) ?? 0) + 1);
    return row;
  };
  const sessions = await Promise.all(
    Array.from({ length: n }, async () => {
      const transport = new MemoryTransport(RATE);
      const call = await deps.calls.start(tenant!.id, { direction: 'web' });
      // Every turn but the last asks the same question; the second one is interrupted.
      const llm = new FakeLlm({ reply: () => REPLY, firstTokenMs: LLM_TTFT_MS, tokensPerSecond: TOKENS_PER_S });
      const session = new CallSession({
        callLog: callLogFor(deps.calls, tenant!.id, call.id),
        transport,
        vad: VAD_KIND === 'silero' ? new SileroVad() : new EnergyVad(),
        stt: new FakeStt({
          sampleRate: RATE,
          transcripts: Array.from({ length: TURNS + 2 }, (_, k) => `Question ${k} about the opening hours?`),
          finalLatencyMs: STT_FINAL_MS,
        }),
        tts: new FakeTts(RATE, TTS_FIRST_BYTE_MS, 60),
        agent: new Agent(llm, async () => [], { agentName: 'Bench', systemPrompt: null, transferNumber: null }),
        behaviour: {
          greeting: null,
          endpointingMs: ENDPOINTING_MS,
          preemptive,
          minInterruptionMs: MIN_INTERRUPTION_MS,
          silencePromptMs: 120_000,
          maxDurationMs: 600_000,
        },
        log,
        clock: withNow(realClock, () => transport.now()),
      });
      const outcome = session.run();
      // Calls start spread over a second, like real traffic.
      await sleep(Math.random() * 1000);
      const agentTurns = async () => agentTurnCount.get(call.id) ?? 0;
      for (let turn = 0; turn < TURNS; turn++) {
        const before = await agentTurns();
        if (PAUSED.length && turn % QUESTIONS.length === 2) {
          await transport.say(PAUSED[0]!);
          await sleep(PAUSE_MS);
          await transport.say(PAUSED[1]!);
        } else await transport.say(QUESTIONS[turn % QUESTIONS.length]!);
        if (turn === 1) {
          // Interrupt the answer a second into its playback.
          const asked = transport.now();
          while (transport.heardMs(asked) < 1000) await sleep(20);
          const onset = transport.now();
          const clearsBefore = transport.clears.length;
          await transport.say(INTERRUPTION);
          if (transport.clears.length > clearsBefore) bargeOnsetMs.push(transport.clears.at(-1)! - onset);
          // The interrupted answer, then the answer to the interruption.
          while ((await agentTurns()) <= before + 1) await sleep(50);
          await sleep(300 + Math.random() * 500);
          continue;
        }
        while ((await agentTurns()) <= before) await sleep(50);
        await sleep(300 + Math.random() * 500);
      }
      transport.hangup();
      await outcome;
      return { session, callId: call.id };
    }),
  );
  clearInterval(memTimer);
  loopDelay.disable();

  const v2v: number[] = [];
  const overhead: number[] = [];
  const stages = new Map<string, number[]>();
  let callerTurns = 0;
  let prepared = 0;
  let discarded = 0;
  let wastedTokens = 0;
  for (const { callId } of sessions) {
    for (const t of await deps.calls.transcript(tenant!.id, callId)) {
      if (t.speaker === 'caller') callerTurns++;
      if (t.metrics.preemptive) prepared++;
      if (t.speaker !== 'agent' || t.metrics.voice_to_voice === undefined) continue;
      v2v.push(t.metrics.voice_to_voice);
      for (const [k, v] of Object.entries(t.metrics)) if (!k.startsWith('preemptive')) stages.set(k, [...(stages.get(k) ?? []), v]);
      overhead.push(t.metrics.voice_to_voice - ideal);
    }
    for (const e of await deps.calls.events(tenant!.id, callId)) {
      if (e.type !== 'turn.preemptive_discarded') continue;
      discarded++;
      wastedTokens += Number((e.extraData as { llm_tokens?: number }).llm_tokens ?? 0);
    }
  }
  await closeDeps(deps);
  server?.stop();
  return {
    sessions: n,
    preemptive: preemptive ? 'on' : 'off',
    db: DB,
    turns: v2v.length,
    v2v_p50_ms: pct(v2v, 50),
    v2v_p95_ms: pct(v2v, 95),
    v2v_p99_ms: pct(v2v, 99),
    ideal_ms: ideal,
    // Caller turns answered with a reply prepared before the turn ended; prepared replies dropped (the caller went
    // on, the words changed, the call ended) per caller turn, and the model's tokens they had produced.
    preemptive_used: prepared,
    wasted_per_turn: callerTurns ? Math.round((discarded / callerTurns) * 1000) / 1000 : 0,
    wasted_llm_tokens: wastedTokens,
    overhead_p50_ms: pct(overhead, 50),
    overhead_p95_ms: pct(overhead, 95),
    overhead_p99_ms: pct(overhead, 99),
    vad: VAD_KIND,
    barge_ins: bargeOnsetMs.length,
    // From the moment the interruption qualified (the VAD's minimum speech, then min_interruption_ms of voiced
    // speech: the caller speaks without pauses here) to the transport being cleared.
    barge_in_reaction_p50_ms: Math.round(pct(bargeOnsetMs, 50) - QUALIFIES_MS),
    barge_in_reaction_p99_ms: Math.round(pct(bargeOnsetMs, 99) - QUALIFIES_MS),
    barge_in_from_onset_p50_ms: Math.round(pct(bargeOnsetMs, 50)),
    barge_in_from_onset_p99_ms: Math.round(pct(bargeOnsetMs, 99)),
    event_loop_delay_p99_ms: Math.round(loopDelay.percentile(99) / 1e5) / 10,
    stage_p50_ms: Object.fromEntries([...stages].map(([k, xs]) => [k, Math.round(pct(xs, 50))])),
    stage_p99_ms: Object.fromEntries([...stages].map(([k, xs]) => [k, Math.round(pct(xs, 99))])),
    rss_per_session_mb: Math.round(((rssPeak - rssBefore) / n / 1024 / 1024) * 100) / 100,
  };
}

const results = [];
for (const n of SESSIONS) {
  for (const preemptive of PREEMPTIVE) {
    console.error(`${n} concurrent calls, preemptive replies ${preemptive ? 'on' : 'off'}...`);
    results.push(await run(n, preemptive));
  }
}
const cols = Object.keys(results[0]!);
console.log(
  `\nVoice pipeline, simulated providers (STT final ${STT_FINAL_MS} ms, LLM first token ${LLM_TTFT_MS} ms at ${TOKENS_PER_S} tokens/s, TTS first byte ${TTS_FIRST_BYTE_MS} ms, endpointing ${ENDPOINTING_MS} ms; ideal voice-to-voice ${IDEAL_MS} ms, ${IDEAL_PREEMPTIVE_MS} ms with preemptive replies)\n`,
);
console.log(`| ${cols.join(' | ')} |\n|${cols.map(() => '---').join('|')}|`);
for (const r of results)
  console.log(
    `| ${cols
      .map((c) => {
        const v = (r as Record<string, unknown>)[c];
        return typeof v === 'object' ? JSON.stringify(v) : String(v);
      })
      .join(' | ')} |`,
  );
mkdirSync(path.dirname(OUT), { recursive: true });
writeFileSync(OUT, `${JSON.stringify({ environment: { node: process.version, date: new Date().toISOString() }, results }, null, 2)}\n`);
console.log(`\nJSON: ${OUT}`);
