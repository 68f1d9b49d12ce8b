// How much of bench:calls' "gap as sent" is the simulator's own lateness (not a test): N simulated Twilio callers
// (TwilioCallerLeg, exactly as bench:calls drives them: the caller's espeak-ng speech and line noise every 20 ms)
// against a paced sender in another process instead of the service. The sender does nothing but send media
// messages in the service's exact format on a 20 ms grid (3 s utterances, a mark, a 1 s pause) and records when it
// sent each; the callers time the same gaps as bench:calls does. The sender's own gaps are the truth: what the
// callers report above them is the simulator's (its event loop, and whatever else runs on its core).
//
//   taskset -c 1 npx tsx bench/sim-check.ts --calls 150 --sender-cpus 0 [--seconds 40] [--warmup-gaps 250]
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { WebSocketServer, type WebSocket } from 'ws';
import { TwilioCallerLeg } from '../src/sim/twilio-caller.js';
import { FRAME_MS, muLawBase64 } from '../src/voice/audio.js';
import { utterance } from './call-bench-kit.js';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1] ?? '');
const CALLS = Number(args.get('calls') ?? 150);
const SECONDS = Number(args.get('seconds') ?? 40);
const SENDER_CPUS = args.get('sender-cpus');
const UTTERANCE_FRAMES = 150;
const PAUSE_FRAMES = 50;
const LATE_GAP_MS = 40;
/** Each stream's first gaps are left out (connections still opening, code not yet optimised), as bench:calls warms up. */
const WARMUP_GAPS = Number(args.get('warmup-gaps') ?? 250);

const pct = (xs: number[], p: number) => {
  const sorted = Float64Array.from(xs).sort();
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
};
const round1 = (x: number) => Math.round(x * 10) / 10;
const summary = (gaps: number[]) => ({
  frames: gaps.length,
  late: gaps.filter((g) => g > LATE_GAP_MS).length,
  p50: round1(pct(gaps, 50)),
  p99: round1(pct(gaps, 99)),
  p999: round1(pct(gaps, 99.9)),
  max: round1(gaps.reduce((m, g) => Math.max(m, g), 0)),
});

if (args.get('serve') === '1') {
  // ---- the paced sender: one clock for every stream; prints its port, then its gaps as JSON when stdin closes ----
  const payload = muLawBase64(Int16Array.from({ length: 160 }, (_, i) => Math.round(6000 * Math.sin((2 * Math.PI * 200 * i) / 8000))));
  const streams = new Set<{ ws: WebSocket; msg: Buffer; mark: Buffer; startedAt: number; sent: number; lastAt?: number; gaps: number[] }>();
  const gaps: Record<string, number[]> = {};
  const wss = new WebSocketServer({ noServer: true });
  const server = createServer();
  server.on('upgrade', (req, socket, head) =>
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('message', (data) => {
        const text = String(data);
        if (!text.includes('"event":"start"')) return;
        const streamSid = (JSON.parse(text) as { streamSid: string }).streamSid;
        const sid = JSON.stringify(streamSid);
        const s = {
          gaps: (gaps[streamSid] = []),
          ws,
          msg: Buffer.from(`{"event":"media","streamSid":${sid},"media":{"payload":"${payload}"}}`),
          mark: Buffer.from(`{"event":"mark","streamSid":${sid},"mark":{"name":"m"}}`),
          startedAt: performance.now(),
          sent: 0,
        };
        streams.add(s);
        ws.once('close', () => streams.delete(s));
      });
    }),
  );
  setInterval(() => {
    const now = performance.now();
    for (const s of streams) {
      const due = Math.floor((now - s.startedAt) / FRAME_MS);
      while (s.sent < due) {
        const at = s.sent++ % (UTTERANCE_FRAMES + PAUSE_FRAMES);
        if (at >= UTTERANCE_FRAMES) continue;
        s.ws.send(s.msg, { binary: false });
        const t = performance.now();
        if (s.lastAt !== undefined) s.gaps.push(t - s.lastAt);
        s.lastAt = t;
        if (at === UTTERANCE_FRAMES - 1) {
          s.ws.send(s.mark, { binary: false });
          s.lastAt = undefined;
        }
      }
    }
  }, 2);
  server.listen(0, '127.0.0.1', () => console.log((server.address() as AddressInfo).port));
  process.stdin.resume();
  process.stdin.on('end', () => {
    writeFileSync(args.get('gaps-file')!, JSON.stringify(gaps));
    process.exit(0);
  });
} else {
  // ---- the callers ----
  const speech = await Promise.all(
    ['When does the clinic open on Saturday?', 'Is there free parking near the clinic?', 'Can I book an appointment for Monday?'].map(
      utterance,
    ),
  );
  const script = fileURLToPath(import.meta.url);
  const pinned = SENDER_CPUS ? ['-c', SENDER_CPUS, process.execPath] : [];
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sim-check-'));
  const gapsFile = path.join(dir, 'gaps.json');
  const sender = spawn(
    SENDER_CPUS ? 'taskset' : process.execPath,
    [...pinned, '--import', 'tsx', script, '--serve', '1', '--gaps-file', gapsFile],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  let out = '';
  sender.stdout.on('data', (d: Buffer) => (out += String(d)));
  while (!out.includes('\n')) await new Promise((r) => setTimeout(r, 50));
  const url = `ws://127.0.0.1:${out.trim()}`;
  const loop = monitorEventLoopDelay({ resolution: 10 });
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  loop.enable();
  const legs = await Promise.all(
    Array.from({ length: CALLS }, async (_, i) => {
      await new Promise((r) => setTimeout(r, (i * 2000) / CALLS));
      const leg = await TwilioCallerLeg.connect({ url });
      void (async () => {
        for (let q = 0; performance.now() - t0 < SECONDS * 1000; q++) {
          await leg.say(speech[q % speech.length]!);
          await new Promise((r) => setTimeout(r, 1000 + Math.random() * 2000));
        }
      })();
      return leg;
    }),
  );
  await new Promise((r) => setTimeout(r, SECONDS * 1000 - (performance.now() - t0)));
  loop.disable();
  const cpu = process.cpuUsage(cpu0);
  const wallMs = performance.now() - t0;
  await Promise.all(legs.map((l) => l.hangup()));
  sender.stdin.end();
  await new Promise((r) => sender.once('exit', r));
  const sent = JSON.parse(readFileSync(gapsFile, 'utf8')) as Record<string, number[]>;
  rmSync(dir, { recursive: true, force: true });
  // The same frames' gaps on both sides (a frame still in flight at the hang-up is left out).
  const senderGaps: number[] = [];
  const simGaps: number[] = [];
  const excess: number[] = [];
  for (const leg of legs) {
    const theirs = sent[leg.streamSid] ?? [];
    const n = Math.min(theirs.length, leg.outboundGapsMs.length);
    for (let i = WARMUP_GAPS; i < n; i++) {
      senderGaps.push(theirs[i]!);
      simGaps.push(leg.outboundGapsMs[i]!);
      excess.push(leg.outboundGapsMs[i]! - theirs[i]!);
    }
  }
  console.log(
    JSON.stringify(
      {
        calls: CALLS,
        seconds: SECONDS,
        sim_cpu_pct_of_core: Math.round(((cpu.user + cpu.system) / 1000 / wallMs) * 100),
        sim_loop_delay_p99_ms: round1(Math.max(0, loop.percentile(99) / 1e6 - 10)),
        gaps_as_sent_by_the_sender: summary(senderGaps),
        gaps_as_timed_by_the_callers: summary(simGaps),
        // Per gap: as timed by the caller minus as sent: the simulator's lateness on this frame minus on the one before.
        caller_minus_sender_ms: {
          p1: round1(pct(excess, 1)),
          p50: round1(pct(excess, 50)),
          p99: round1(pct(excess, 99)),
          max: round1(excess.reduce((m, g) => Math.max(m, g), 0)),
        },
      },
      null,
      2,
    ),
  );
  process.exit(0);
}
