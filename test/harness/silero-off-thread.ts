// An off-thread Silero VAD in a process started the way bench:calls starts the service (`node --import tsx --import
// bench/exit-with-parent.mjs ...`): prints where the model ran, as one JSON line {mainThreadRuns, pending, warnings}.
import { setTimeout as sleep } from 'node:timers/promises';
import { SileroVad, sileroRuns } from '../../src/voice/vad/silero-vad.js';

const warnings: string[] = [];
process.on('warning', (w) => warnings.push(w.message));
const vad = new SileroVad({ offThread: true });
for (let i = 0; i < 50; i++) {
  vad.push({
    pcm: new Int16Array(160).map((_, k) => Math.round(3000 * Math.sin((i * 160 + k) / 5))),
    sampleRate: 8000,
    timestampMs: i * 20,
  });
  await sleep(20);
}
while (vad.pending > 0) await sleep(5);
process.stdout.write(`${JSON.stringify({ mainThreadRuns: sileroRuns.runs, pending: vad.pending, warnings })}\n`);
process.exit(0);
