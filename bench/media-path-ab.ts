// A/B of the live media path's event-loop cost in virtual time (not a test): two checkouts of this repository
// (`--a DIR --b DIR`, each with its src/) are loaded into this one process, and the same calls run on each in
// alternating rounds, so a busy machine slows both alike. A call: TwilioMediaStreamTransport on a fake socket (the
// caller's media messages as Twilio sends them, marks echoed as the audio before them is sent), the recording (to a
// temp file), the usage meter, CallSession with the energy VAD and the fake STT, LLM and TTS of src/ on a
// ManualClock (no network, no worker thread: what is measured is our code), the caller asking a question every 6 s.
// Printed per variant: CPU ms (this process, user + system) per virtual call-second, and the JS heap bytes allocated
// per call-second (the sampling heap profiler with collected objects), summed over the rounds.
//
//   npx tsx bench/media-path-ab.ts --a /path/to/main --b . [--calls 20] [--seconds 30] [--rounds 6]
import { mkdtempSync, rmSync } from 'node:fs';
import { EventEmitter } from 'node:events';
import { Session } from 'node:inspector/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import pino from 'pino';
import { CLINIC_BEHAVIOUR, utterance } from './call-bench-kit.js';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1] ?? '');
const CALLS = Number(args.get('calls') ?? 20);
const SECONDS = Number(args.get('seconds') ?? 30);
const ROUNDS = Number(args.get('rounds') ?? 6);
const QUESTION = 'When does the clinic open on Saturday?';
const REPLY = 'The clinic opens at nine on Saturdays. It closes at noon. Anything else?';
const STREAM_SID = 'MZ' + '0'.repeat(32);

/** The modules of one checkout. */
async function load(root: string) {
  const m = (p: string) => import(pathToFileURL(path.resolve(root, 'src/voice', p)).href);
  return {
    audio: await m('audio.ts'),
    clock: await m('clock.ts'),
    twilio: await m('transports/twilio-media-stream.ts'),
    recording: await m('recording.ts'),
    session: await m('call-session.ts'),
    callLog: await m('call-log.ts'),
    agent: await m('agent.ts'),
    fakeLlm: await m('llm/fake.ts'),
    fakeStt: await m('stt/fake.ts'),
    fakeTts: await m('tts/fake.ts'),
    fallbackStt: await m('stt/fallback-stt.ts'),
    fallbackTts: await m('tts/fallback-tts.ts'),
    meter: await m('usage-meter.ts'),
    vad: await m('vad/energy-vad.ts'),
  };
}
type Variant = Awaited<ReturnType<typeof load>>;

/** The caller's media messages, 20 ms each: the question, then quiet line noise, for 6 s. */
function callerMessages(v: Variant, speech: Int16Array): Buffer[] {
  const cycle = new Int16Array(6 * 8000);
  cycle.set(speech.subarray(0, Math.min(speech.length, cycle.length)));
  for (let i = speech.length; i < cycle.length; i++) cycle[i] = ((i * 7919) % 17) - 8;
  const out: Buffer[] = [];
  for (let at = 0; at < cycle.length; at += 160) {
    const payload = v.audio.muLawBase64(cycle.subarray(at, at + 160)) as string;
    // The timestamp is filled in per message (below): a template with a placeholder of fixed width.
    out.push(
      Buffer.from(
        JSON.stringify({
          event: 'media',
          sequenceNumber: '1',
          media: { track: 'inbound', chunk: '1', timestamp: 'TTTTTTTT', payload },
          streamSid: STREAM_SID,
        }),
      ),
    );
  }
  return out;
}

/** What the calls sent (both variants must send the same). */
const sent = { messages: 0, media: 0 };

/** One round: CALLS calls for SECONDS of virtual time on variant v; returns CPU ms and call-seconds. */
async function round(v: Variant, messages: Buffer[], dir: string): Promise<{ cpuMs: number; callSeconds: number }> {
  const clock = new v.clock.ManualClock();
  const log = pino({ level: 'silent' });
  const calls = [];
  for (let i = 0; i < CALLS; i++) {
    const socket = Object.assign(new EventEmitter(), {
      readyState: 1,
      bufferedAmount: 0,
      send(data: unknown) {
        sent.messages++;
        if (Buffer.isBuffer(data)) sent.media++;
        // Twilio echoes a mark once the audio before it has played; here as soon as it was sent (nothing waits on it).
        if (typeof data === 'string' && data.startsWith('{"event":"mark"')) {
          const name = (JSON.parse(data) as { mark: { name: string } }).mark.name;
          clock.setTimeout(
            () => socket.emit('message', Buffer.from(JSON.stringify({ event: 'mark', streamSid: STREAM_SID, mark: { name } })), false),
            0,
          );
        }
      },
      close() {
        socket.readyState = 3;
        socket.emit('close', 1000, Buffer.alloc(0));
      },
      terminate() {
        socket.close();
      },
    });
    const accepted = v.twilio.TwilioMediaStreamTransport.accept(socket, {
      authorize: async () => true,
      clock: () => clock.now(),
      pacing: clock,
    });
    socket.emit(
      'message',
      Buffer.from(
        JSON.stringify({
          event: 'start',
          streamSid: STREAM_SID,
          start: {
            streamSid: STREAM_SID,
            callSid: `CA${i}`,
            accountSid: 'AC1',
            customParameters: {},
            mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
            tracks: ['inbound'],
          },
        }),
      ),
      false,
    );
    const transport = (await accepted).transport;
    const recorded = v.recording.recordTransport(transport, { file: path.join(dir, `${i}.wav`) });
    const meter = new v.meter.UsageTally();
    const stt = new v.fallbackStt.FallbackStt([
      v.meter.meteredStt(
        new v.fakeStt.FakeStt({ sampleRate: 8000, transcripts: Array(100).fill(QUESTION), finalLatencyMs: 250, clock }),
        meter,
        'platform',
      ),
    ]);
    const llm = v.meter.meteredLlm(
      new v.fakeLlm.FakeLlm({ reply: () => REPLY, firstTokenMs: 400, tokensPerSecond: 50, clock }),
      meter,
      'platform',
    );
    const tts = new v.fallbackTts.FallbackTts([v.meter.meteredTts(new v.fakeTts.FakeTts(8000, 200, 70, clock), meter, 'platform')]);
    const session = new v.session.CallSession({
      transport: recorded.transport,
      vad: new v.vad.EnergyVad(),
      stt,
      tts,
      agent: new v.agent.Agent(llm, async () => [], {
        agentName: 'Sunrise',
        systemPrompt: 'You answer for the clinic.',
        transferNumber: null,
      }),
      callLog: new v.callLog.MemoryCallLog(),
      behaviour: CLINIC_BEHAVIOUR,
      log,
      clock,
    });
    calls.push({ socket, run: session.run(), recorded, offset: (i * 6000) / CALLS });
  }
  const steps = (SECONDS * 1000) / 20;
  const cpu0 = process.cpuUsage();
  for (let s = 0; s < steps; s++) {
    for (const c of calls) {
      // Calls are spread over the 6 s cycle, so their questions do not all come at once.
      const k = Math.floor((s * 20 + c.offset) / 20) % messages.length;
      const msg = Buffer.from(messages[k]!);
      msg.write(String(s * 20).padStart(8, '0'), msg.indexOf('TTTTTTTT'), 'latin1');
      c.socket.emit('message', msg, false);
    }
    await clock.advanceAsync(20);
  }
  const cpu = process.cpuUsage(cpu0);
  for (const c of calls) c.socket.close();
  await clock.advanceAsync(3000);
  await Promise.all(calls.map(async (c) => (await c.run, await c.recorded.finish())));
  return { cpuMs: (cpu.user + cpu.system) / 1000, callSeconds: CALLS * SECONDS };
}

const roots = { a: path.resolve(args.get('a') ?? '.'), b: path.resolve(args.get('b') ?? '.') };
const variants = { a: await load(roots.a), b: await load(roots.b) };
const speech = await utterance(QUESTION);
const messages = { a: callerMessages(variants.a, speech), b: callerMessages(variants.b, speech) };
const dir = mkdtempSync(path.join(os.tmpdir(), 'media-path-ab-'));
const totals = {
  a: { cpuMs: 0, callSeconds: 0, bytes: 0, media: 0, messages: 0 },
  b: { cpuMs: 0, callSeconds: 0, bytes: 0, media: 0, messages: 0 },
};
const session = new Session();
session.connect();
// Warm-up (JIT) of both, not counted.
for (const k of ['a', 'b'] as const) await round(variants[k], messages[k], dir);
for (let r = 0; r < ROUNDS; r++) {
  for (const k of r % 2 ? (['b', 'a'] as const) : (['a', 'b'] as const)) {
    // Allocation on odd rounds only: the profiler's own cost stays out of the even rounds' CPU... and both get both.
    const sample = r % 2 === 1;
    if (sample)
      await session.post('HeapProfiler.startSampling', {
        samplingInterval: 16384,
        includeObjectsCollectedByMajorGC: true,
        includeObjectsCollectedByMinorGC: true,
      });
    sent.messages = sent.media = 0;
    const res = await round(variants[k], messages[k], dir);
    totals[k].media += sent.media;
    totals[k].messages += sent.messages;
    if (sample) {
      const { profile } = (await session.post('HeapProfiler.stopSampling')) as unknown as { profile: { head: HeapNode } };
      totals[k].bytes += sum(profile.head);
    } else {
      totals[k].cpuMs += res.cpuMs;
      totals[k].callSeconds += res.callSeconds;
    }
  }
}
const sampledRounds = Math.floor(ROUNDS / 2);
for (const k of ['a', 'b'] as const)
  console.log(
    JSON.stringify({
      variant: k,
      root: roots[k],
      calls: CALLS,
      cpu_ms_per_call_s: +(totals[k].cpuMs / totals[k].callSeconds).toFixed(4),
      agent_media_messages: totals[k].media,
      other_messages: totals[k].messages - totals[k].media,
      heap_kb_per_call_s: +(totals[k].bytes / 1024 / (sampledRounds * CALLS * SECONDS)).toFixed(2),
    }),
  );
rmSync(dir, { recursive: true, force: true });
process.exit(0);

interface HeapNode {
  selfSize: number;
  children: HeapNode[];
}
function sum(n: HeapNode): number {
  return n.selfSize + n.children.reduce((t, c) => t + sum(c), 0);
}
