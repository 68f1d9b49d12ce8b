// The live media path's cost on the event loop, per call-second, without the database and HTTP (not a test): N
// simulated Twilio calls (a child process, SimulatedCall's media leg over a real websocket) against this process,
// which runs what the service runs for each: TwilioMediaStreamTransport, the recording (to a temp file), the usage
// meter, CallSession with the Silero VAD (its worker thread) and the cloud engines in their fallback chains
// (Deepgram, OpenAI, ElevenLabs) against their wire-protocol fakes (bench/provider-fakes.ts, a process of its own).
// Each call hears the greeting, asks 2 questions and hears each answer, then hangs up. Printed: this process's
// main-thread CPU (/proc, user + system) and the bytes allocated on the JS heap (sampling heap profiler, objects
// collected by minor and major GCs included) per call-second, and where those bytes were allocated. Both count
// work done, not time waited, so they hardly move with the machine's load (unlike bench:calls' gaps and latencies).
//
//   npx tsx bench/media-path.ts [--calls 40] [--alloc 1] [--top 25] [--heap-out /tmp/x.heapprofile]
//   node --import tsx --cpu-prof --cpu-prof-dir /tmp/prof bench/media-path.ts --alloc 0   # where the CPU goes
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { WebSocketServer } from 'ws';
import { SimulatedCall } from '../src/sim/simulated-call.js';
import { Agent } from '../src/voice/agent.js';
import { MemoryCallLog } from '../src/voice/call-log.js';
import { CallSession } from '../src/voice/call-session.js';
import { realClock, withNow } from '../src/voice/clock.js';
import { FallbackLlm } from '../src/voice/llm/fallback-llm.js';
import { LocalResponder } from '../src/voice/llm/local-responder.js';
import { OpenAiLlm } from '../src/voice/llm/openai-llm.js';
import { recordTransport } from '../src/voice/recording.js';
import { DeepgramStt } from '../src/voice/stt/deepgram-stt.js';
import { FallbackStt } from '../src/voice/stt/fallback-stt.js';
import { FakeStt } from '../src/voice/stt/fake.js';
import { TwilioMediaStreamTransport } from '../src/voice/transports/twilio-media-stream.js';
import { ElevenLabsTts } from '../src/voice/tts/elevenlabs-tts.js';
import { FallbackTts } from '../src/voice/tts/fallback-tts.js';
import { FakeTts } from '../src/voice/tts/fake.js';
import { meteredLlm, meteredStt, meteredTts, UsageTally } from '../src/voice/usage-meter.js';
import { SileroVad } from '../src/voice/vad/silero-vad.js';
import { CLINIC_BEHAVIOUR, utterance } from './call-bench-kit.js';
import type { ProviderFakesInfo } from './provider-fakes.js';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1] ?? '');
const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const QUESTIONS = ['When does the clinic open on Saturday?', 'Is there free parking near the clinic?'];
const REPLY = 'The clinic opens at nine on Saturdays. It closes at noon. Anything else?';

/** The child process: N calls through SimulatedCall's media leg, started over 2 s; prints a line when all ended. */
async function callers(url: string, n: number): Promise<void> {
  const speech = await Promise.all(QUESTIONS.map(utterance));
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const account = { accountSid: 'AC' + '0'.repeat(32), authToken: 'x' };
  const twiml = `<Response><Connect><Stream url="${url}"></Stream></Connect></Response>`;
  const one = async (i: number) => {
    await sleep((i * 2000) / n);
    const call = await SimulatedCall.fromTwiml(twiml, account, `CA${String(i).padStart(32, '0')}`);
    await call.agentDone({ quietMs: 1000, timeoutMs: 20_000 });
    for (const pcm of speech) {
      const turn = await call.say(pcm);
      await call.answer(turn, 20_000);
      await call.agentDone({ sinceMs: turn.saidEndMs, quietMs: 1000, timeoutMs: 20_000 });
      await sleep(300);
    }
    await call.hangup();
  };
  const results = await Promise.allSettled(Array.from({ length: n }, (_, i) => one(i)));
  const failed = results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason));
  console.log(JSON.stringify({ failed }));
  process.exit(0);
}

function start(script: string, scriptArgs: string[]): Promise<{ child: ChildProcess; line: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(HERE, script), ...scriptArgs], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += String(d);
      if (out.includes('\n')) resolve({ child, line: out.split('\n')[0]!.trim() });
    });
    child.once('exit', (code) => reject(new Error(`${script} exited (${code}) before it was ready`)));
  });
}

const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
/** This process's main thread's CPU time, ms. */
function mainCpuMs(): number {
  const stat = readFileSync(`/proc/${process.pid}/task/${process.pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
}

interface HeapNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: HeapNode[];
}

async function main(): Promise<void> {
  const n = Number(args.get('calls') ?? 40);
  const alloc = args.get('alloc') !== '0';
  const fakes = await start('provider-fakes.ts', ['--transcripts', JSON.stringify(QUESTIONS), '--reply', REPLY]);
  const info = JSON.parse(fakes.line) as ProviderFakesInfo;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'media-path-'));
  const log = pino({ level: 'silent' });
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise((r) => wss.once('listening', r));
  const url = `ws://127.0.0.1:${(wss.address() as { port: number }).port}/`;

  const runs: Promise<unknown>[] = [];
  let callMs = 0;
  let callNo = 0;
  wss.on('connection', (socket) => {
    const i = callNo++;
    runs.push(
      (async () => {
        const accepted = await TwilioMediaStreamTransport.accept(socket, { authorize: async () => true });
        if (!accepted) throw new Error('not accepted');
        const startedAt = performance.now();
        const recorded = recordTransport(accepted.transport, { file: path.join(dir, `${i}.wav`) });
        const meter = new UsageTally();
        const stt = new FallbackStt([
          meteredStt(
            new DeepgramStt({ apiKey: info.deepgram.apiKey, sampleRate: 8000, model: 'nova-2-phonecall', baseUrl: info.deepgram.url }),
            meter,
            'platform',
          ),
          meteredStt(new FakeStt({ sampleRate: 8000, transcripts: QUESTIONS, finalLatencyMs: 250 }), meter, 'platform'),
        ]);
        const llm = new FallbackLlm([
          meteredLlm(new OpenAiLlm({ apiKey: info.openai.apiKey, model: 'gpt-4o-mini', baseURL: info.openai.baseURL }), meter, 'platform'),
          meteredLlm(new LocalResponder(), meter, 'platform'),
        ]);
        const tts = new FallbackTts([
          meteredTts(
            new ElevenLabsTts({
              apiKey: info.elevenlabs.apiKey,
              voiceId: info.elevenlabs.voiceId,
              sampleRate: 8000,
              baseUrl: info.elevenlabs.baseUrl,
            }),
            meter,
            'platform',
          ),
          meteredTts(new FakeTts(8000, 200), meter, 'platform'),
        ]);
        const origin = performance.now();
        const session = new CallSession({
          transport: recorded.transport,
          vad: new SileroVad({ offThread: true }),
          stt,
          tts,
          agent: new Agent(llm, async () => [], { agentName: 'Sunrise', systemPrompt: 'You answer for the clinic.', transferNumber: null }),
          callLog: new MemoryCallLog(),
          behaviour: CLINIC_BEHAVIOUR,
          log,
          clock: withNow(realClock, () => performance.now() - origin),
        });
        await session.run();
        await recorded.finish();
        callMs += performance.now() - startedAt;
      })(),
    );
  });

  // A warm-up call (modules, JIT, the VAD model), not counted.
  const warm = await start('media-path.ts', ['--caller', url, '--calls', '1']);
  if (JSON.parse(warm.line).failed.length) throw new Error(`warm-up call failed: ${warm.line}`);
  await Promise.all(runs.splice(0));
  callMs = 0;

  let session: Session | undefined;
  if (alloc) {
    session = new Session();
    session.connect();
    await session.post('HeapProfiler.startSampling', {
      samplingInterval: 16384,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
  }
  const cpu0 = mainCpuMs();
  const usage0 = process.cpuUsage();
  const callersRun = await start('media-path.ts', ['--caller', url, '--calls', String(n)]);
  const outcome = JSON.parse(callersRun.line) as { failed: string[] };
  await Promise.allSettled(runs);
  const cpu = mainCpuMs() - cpu0;
  const usage = process.cpuUsage(usage0);
  let bytes = 0;
  const byFunction = new Map<string, number>();
  if (session) {
    const { profile } = (await session.post('HeapProfiler.stopSampling')) as unknown as { profile: { head: HeapNode } };
    const walk = (node: HeapNode, stack: string[]) => {
      const name = `${node.callFrame.functionName || '(anon)'} ${node.callFrame.url.replace(/^.*\/(src|node_modules)\//, '$1/')}`;
      bytes += node.selfSize;
      if (node.selfSize) {
        // Attributed to the innermost frame of our own code (src/), or of a library when none.
        const own = [...stack, name].reverse().find((s) => s.includes(' src/')) ?? name;
        byFunction.set(own, (byFunction.get(own) ?? 0) + node.selfSize);
      }
      for (const c of node.children) walk(c, [...stack, name]);
    };
    walk(profile.head, []);
    if (args.get('heap-out')) writeFileSync(args.get('heap-out')!, JSON.stringify(profile));
    session.disconnect();
  }
  const callSeconds = callMs / 1000;
  console.log(
    JSON.stringify({
      calls: n,
      failed: outcome.failed.length,
      failures: outcome.failed.slice(0, 3),
      call_seconds: Math.round(callSeconds),
      main_cpu_ms_per_call_s: +(cpu / callSeconds).toFixed(3),
      process_cpu_ms_per_call_s: +((usage.user + usage.system) / 1000 / callSeconds).toFixed(3),
      ...(alloc && { heap_kb_allocated_per_call_s: +(bytes / 1024 / callSeconds).toFixed(1) }),
    }),
  );
  if (alloc) {
    const top = Number(args.get('top') ?? 25);
    for (const [k, v] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top))
      console.log(`${(v / 1024 / callSeconds).toFixed(1).padStart(8)} KB/call-s  ${k}`);
  }
  fakes.child.stdin!.end();
  wss.close();
  rmSync(dir, { recursive: true, force: true });
  process.exit(0);
}

if (args.get('caller')) await callers(args.get('caller')!, Number(args.get('calls')));
else await main();
