// A voice call in its own process, for the crash test: the service's real parts (embedded database in DATA_DIR,
// registry, VoiceCalls, local STT and TTS) with a simulated caller on the in-memory transport speaking the
// utterances in UTTERANCES (JSON) with espeak-ng. Prints one JSON line per step on stdout:
//   {"call": {tenantId, callId}}  {"saying": n}  {"turn": {seq, speaker, text}}  {"done": outcome}
// With CALL_ID (and TENANT_ID) set it picks up that call instead of starting one.
import pino from 'pino';
import { loadConfig } from '../../src/config.js';
import { tenants } from '../../src/db/schema.js';
import { buildDeps, closeDeps } from '../../src/deps.js';
import { MemoryTransport } from '../../src/voice/transports/memory.js';
import { EspeakTts } from '../../src/voice/tts/espeak-tts.js';
import { setTimeout as sleep } from 'node:timers/promises';

const RATE = 16000;
const out = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);

const config = loadConfig({
  ...process.env,
  NODE_ENV: 'test',
  SECRET_KEY: 'harness-secret-key-that-is-long-enough-0123456789',
  INGEST_CONCURRENCY: '0',
});
const deps = await buildDeps(config, pino({ level: process.env.LOG_LEVEL ?? 'warn' }, pino.destination(2)));

let tenantId = process.env.TENANT_ID;
let callId = process.env.CALL_ID;
if (!tenantId || !callId) {
  tenantId = (await deps.database.db.insert(tenants).values({ name: 'Crash test' }).returning())[0]!.id;
  await deps.settings.putTenant(tenantId, {
    greeting: 'Hello, Sunrise clinic.',
    providers: { llm: { provider: 'openai', model: 'gpt-4o-mini' } },
    provider_keys: { openai: process.env.FAKE_OPENAI_KEY },
  });
  callId = (await deps.calls.start(tenantId, { direction: 'web' })).id;
}
out({ call: { tenantId, callId } });

const transport = new MemoryTransport(RATE);
const outcome = deps.voice.run(tenantId, callId, transport);

// Report every turn as soon as it is in the database.
let reported = 0;
let closing = false;
const watching = (async () => {
  while (!closing) {
    const turns = await deps.calls.transcript(tenantId, callId);
    for (const t of turns.slice(reported)) out({ turn: { seq: t.seq, speaker: t.speaker, text: t.text } });
    reported = turns.length;
    await sleep(25);
  }
})();
void watching;

const espeak = new EspeakTts({ sampleRate: RATE });
const utterances = JSON.parse(process.env.UTTERANCES ?? '[]') as string[];
const agentTurns = async () => (await deps.calls.transcript(tenantId, callId)).filter((t) => t.speaker === 'agent').length;
// A new call's greeting is spoken before the caller speaks (a fixed wait was too short on a loaded machine, and the
// caller then took the greeting for the answer to its first question). A call picked up again is not greeted: the
// caller waits for the session to be listening.
if (process.env.CALL_ID) await sleep(3000);
else while ((await agentTurns()) === 0) await sleep(50);
for (const [n, text] of utterances.entries()) {
  const before = await agentTurns();
  const parts: Int16Array[] = [];
  for await (const f of espeak.synthesize(text)) parts.push(f.pcm);
  const pcm = new Int16Array(parts.reduce((k, p) => k + p.length, 0));
  parts.reduce((at, p) => (pcm.set(p, at), at + p.length), 0);
  out({ saying: n });
  await transport.say(pcm);
  while ((await agentTurns()) <= before) await sleep(50);
  await sleep(500);
}
transport.hangup();
out({ done: await outcome });
// The watcher's last query must end before the database closes (a query on a closed pool rejects).
closing = true;
await watching;
await closeDeps(deps);
process.exit(0);
