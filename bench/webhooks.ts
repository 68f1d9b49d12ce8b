// Webhook delivery throughput and latency: events published as a state change would publish them (one transaction
// each), delivered by the service's own worker to a local receiver that checks every signature. Two phases per
// database: a burst (N events at once: deliveries per second), a paced stream (publish-to-receipt p50/p99 while the
// worker is busy) and a sparse one (2 events a second: each finds the worker idle, so its latency is the worker's
// wake-up: the NOTIFY at commit, or its poll interval where nothing notifies it). The database embedded (PGlite in process) and over the wire
// (bench/pg-server.ts in its own process, the `pg` driver).
//   npm run bench:webhooks                     # quick: both databases, < 1 min
//   npm run bench:webhooks -- --full           # 10x the events
//   npm run bench:webhooks -- --db embedded    # or: server
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { loadConfig } from '../src/config.js';
import { tenants } from '../src/db/schema.js';
import { buildDeps, closeDeps } from '../src/deps.js';
import { verifyWebhook } from '../src/lib/webhook-signature.js';
import { publishEvent } from '../src/services/outbox.js';

const args = process.argv.slice(2);
const FULL = args.includes('--full');
const DB = args.includes('--db') ? args[args.indexOf('--db') + 1] : 'both';
const BURST = FULL ? 2000 : 200;
const PACED = FULL ? 1000 : 50;
const PACED_PER_S = 50;
const SPARSE = FULL ? 100 : 20;
const SPARSE_PER_S = 2;
const CALLS = 20;
let CONCURRENCY = 0;

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

async function databaseServer(): Promise<{ url: string; stop(): void }> {
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'pg-server.ts');
  const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['pipe', 'pipe', 'inherit'] });
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

async function run(db: 'embedded' | 'server') {
  const server = db === 'server' ? await databaseServer() : undefined;
  const config = loadConfig({
    NODE_ENV: 'test',
    DATA_DIR: 'memory://',
    SECRET_KEY: 'bench-secret-key-that-is-long-enough-0123456789',
    INGEST_CONCURRENCY: '0',
    ...(server && { DATABASE_URL: server.url }),
  });
  CONCURRENCY = config.webhooks.concurrency;
  const deps = await buildDeps(config, pino({ level: 'silent' }));
  const received = new Map<string, number>();
  let bad = 0;
  let secret = '';
  const receiver = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    if (!verifyWebhook(secret, req.headers, body)) bad++;
    const id = String(req.headers['webhook-id']);
    if (!received.has(id)) received.set(id, performance.now());
    res.writeHead(204).end();
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
  try {
    const [tenant] = await deps.database.db.insert(tenants).values({ name: 'Bench' }).returning();
    const created = await deps.webhooks.create(tenant!.id, { url, events: ['*'] });
    secret = created.secret;
    const calls = Array.from({ length: CALLS }, () => randomUUID());
    const published = new Map<string, number>();
    const publish = async (i: number) => {
      const callId = calls[i % CALLS]!;
      const id = await deps.database.db.transaction((tx) =>
        i % 2
          ? publishEvent(tx, tenant!.id, 'transfer.started', { call_id: callId, to: '+15550100', reason: 'test' }, { callId })
          : publishEvent(tx, tenant!.id, 'document.ready', {
              document_id: randomUUID(),
              name: `doc ${i}`,
              chunks: i,
              version: 1,
              filename: null,
              embedding_model: 'local',
            }),
      );
      published.set(id, performance.now());
    };
    const waitAll = async (n: number) => {
      const deadline = performance.now() + 120_000;
      while (received.size < n && performance.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    };

    // Burst: everything published first; deliveries per second from the first receipt to the last.
    const t0 = performance.now();
    for (let i = 0; i < BURST; i++) await publish(i);
    const publishedIn = performance.now() - t0;
    await waitAll(BURST);
    const burstTimes = [...received.values()];
    const burstRate = (received.size / (Math.max(...burstTimes) - Math.min(...burstTimes))) * 1000;

    // Paced: a steady stream; latency from the commit of the publishing transaction to the receiver.
    received.clear();
    published.clear();
    const start = performance.now();
    for (let i = 0; i < PACED; i++) {
      const due = start + (i * 1000) / PACED_PER_S;
      if (due > performance.now()) await new Promise((r) => setTimeout(r, due - performance.now()));
      await publish(BURST + i);
    }
    await waitAll(PACED);
    const latencies = [...published].flatMap(([id, at]) => (received.has(id) ? [received.get(id)! - at] : []));

    // Sparse: the worker is idle when each event comes.
    received.clear();
    published.clear();
    const sparseStart = performance.now();
    for (let i = 0; i < SPARSE; i++) {
      const due = sparseStart + (i * 1000) / SPARSE_PER_S;
      if (due > performance.now()) await new Promise((r) => setTimeout(r, due - performance.now()));
      await publish(BURST + PACED + i);
    }
    await waitAll(SPARSE);
    const sparse = [...published].flatMap(([id, at]) => (received.has(id) ? [received.get(id)! - at] : []));
    return {
      db,
      burst: { events: BURST, delivered: burstTimes.length, publish_ms: Math.round(publishedIn), deliveries_per_s: Math.round(burstRate) },
      paced: {
        events: PACED,
        per_s: PACED_PER_S,
        delivered: latencies.length,
        p50_ms: Math.round(pct(latencies, 50)),
        p99_ms: Math.round(pct(latencies, 99)),
        max_ms: Math.round(Math.max(...latencies)),
      },
      sparse: {
        events: SPARSE,
        per_s: SPARSE_PER_S,
        delivered: sparse.length,
        p50_ms: Math.round(pct(sparse, 50)),
        p99_ms: Math.round(pct(sparse, 99)),
        max_ms: Math.round(Math.max(...sparse)),
      },
      bad_signatures: bad,
    };
  } finally {
    receiver.close();
    await closeDeps(deps);
    server?.stop();
  }
}

const results = [];
for (const db of DB === 'both' ? (['embedded', 'server'] as const) : [DB as 'embedded' | 'server']) results.push(await run(db));
console.log(`webhook delivery (${FULL ? 'full' : 'quick'}; concurrency ${CONCURRENCY})`);
for (const r of results) {
  console.log(
    `${r.db.padEnd(9)} burst ${r.burst.delivered}/${r.burst.events}: ${r.burst.deliveries_per_s} deliveries/s ` +
      `(published in ${r.burst.publish_ms} ms) | paced ${r.paced.per_s}/s: p50 ${r.paced.p50_ms} ms, p99 ${r.paced.p99_ms} ms, ` +
      `max ${r.paced.max_ms} ms (${r.paced.delivered}/${r.paced.events}) | sparse ${r.sparse.per_s}/s: p50 ${r.sparse.p50_ms} ms, ` +
      `p99 ${r.sparse.p99_ms} ms (${r.sparse.delivered}/${r.sparse.events}) | bad signatures ${r.bad_signatures}`,
  );
}
console.log(JSON.stringify(results));
process.exit(0);
