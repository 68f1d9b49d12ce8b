// Processes per live call (not a test): N browser calls of one member are requested at once (POST /api/v1/calls/web),
// the admitted ones connect (in-memory transport) and greet together for 15 s on the local engines, and the most
// processes the service had under it at any moment are counted (espeak-ng, pocketsphinx with its sh and cat).
//
//   npx tsx bench/call-processes.ts                      # N=60, the defaults (MAX_LIVE_CALLS_PER_TENANT 20, 4 espeak-ng)
//   N=200 PER_TENANT=1000 MAX=1000 SLOTS=256 npx tsx bench/call-processes.ts   # the limits out of the way
//   STT=deepgram npx tsx bench/call-processes.ts         # speech-to-text on Deepgram's fake instead of pocketsphinx
import { execFileSync } from 'node:child_process';
import { startFakeDeepgram } from '../test/fakes/deepgram.js';
import { bearer, buildTestApp, signup } from '../test/helpers.js';
import { MemoryTransport } from '../src/voice/transports/memory.js';

const N = Number(process.env.N ?? 60);
const deepgram = await startFakeDeepgram({});
const t = await buildTestApp({
  DEEPGRAM_BASE_URL: deepgram.url,
  ...(process.env.SLOTS && { LOCAL_TTS_CONCURRENCY: process.env.SLOTS }),
  ...(process.env.MAX && { MAX_LIVE_CALLS: process.env.MAX }),
  ...(process.env.PER_TENANT && { MAX_LIVE_CALLS_PER_TENANT: process.env.PER_TENANT }),
});
const s = await signup(t.app);
await t.deps.settings.putTenant(s.tenant.id, {
  greeting: 'Hello, thank you for calling the Sunrise clinic. How can I help you today? Our opening hours are seven to five.',
  ...(process.env.STT === 'deepgram' && { providers: { stt: { provider: 'deepgram' } }, provider_keys: { deepgram: deepgram.apiKey } }),
});
const requests: Record<number, number> = {};
const ids: string[] = [];
for (let i = 0; i < N; i++) {
  const r = await t.app.inject({ method: 'POST', url: '/api/v1/calls/web', headers: bearer(s.access_token), payload: {} });
  requests[r.statusCode] = (requests[r.statusCode] ?? 0) + 1;
  if (r.statusCode === 201) ids.push((r.json() as { call_id: string }).call_id);
}

/** This process's descendants now, by kind. */
function count() {
  const rows = execFileSync('ps', ['-e', '-o', 'pid=,ppid=,comm='], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((r) => r.length >= 3)
    .map(([pid, ppid, comm]) => ({ pid: Number(pid), ppid: Number(ppid), comm: comm! }));
  const mine = new Set([process.pid]);
  for (let grew = true; grew;) {
    grew = false;
    for (const r of rows) {
      if (!mine.has(r.ppid) || mine.has(r.pid)) continue;
      mine.add(r.pid);
      grew = true;
    }
  }
  const c = { espeak: 0, pocketsphinx: 0, all: 0 };
  for (const r of rows) {
    if (r.pid === process.pid || !mine.has(r.pid)) continue;
    c.all += 1;
    if (r.comm.startsWith('espeak')) c.espeak += 1;
    if (r.comm.startsWith('pocketsphinx')) c.pocketsphinx += 1;
  }
  return c;
}
const most = { espeak: 0, pocketsphinx: 0, all: 0 };
const sampler = setInterval(() => {
  const c = count();
  for (const k of Object.keys(most) as (keyof typeof most)[]) most[k] = Math.max(most[k], c[k]);
}, 20);
const transports = ids.map(() => new MemoryTransport(16000));
const runs = ids.map((id, i) => t.deps.voice.run(s.tenant.id, id, transports[i]!));
await new Promise((r) => setTimeout(r, 15_000));
for (const tr of transports) tr.hangup();
const outcomes: Record<string, number> = {};
for (const o of await Promise.all(runs)) outcomes[`${o.status}: ${o.reason}`] = (outcomes[`${o.status}: ${o.reason}`] ?? 0) + 1;
clearInterval(sampler);
console.log(JSON.stringify({ requested: N, responses: requests, connected: ids.length, outcomes, most_processes_at_once: most }));
await t.close();
await deepgram.close();
process.exit(0);
