// The ingestion queue step by step: the app runs no background worker here (INGEST_CONCURRENCY=0); each test
// drives workers by hand so it can stop them at the moment that matters.
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'drizzle-orm';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rowsOf } from '../src/db/client.js';
import { ProviderError } from '../src/lib/provider-error.js';
import type { Embedder } from '../src/rag/embedders/embedder.js';
import { LOCAL_EMBEDDING_MODEL, LocalEmbedder } from '../src/rag/embedders/local-embedder.js';
import { OpenAIEmbedder } from '../src/rag/embedders/openai-embedder.js';
import { DocumentPool } from '../src/rag/document-pool.js';
import { DEFAULT_EXTRACT_LIMITS } from '../src/rag/extract.js';
import { type EmbedderSource, IngestionWorker } from '../src/rag/ingestion.js';
import { FakeOpenAI } from './fakes/openai.js';
import { buildTestApp, call, type Session, signup, type TestApp } from './helpers.js';

let t: TestApp;
let fake: FakeOpenAI;
beforeAll(async () => {
  fake = await new FakeOpenAI().start();
  t = await buildTestApp({ INGEST_CONCURRENCY: '0', OPENAI_BASE_URL: fake.baseURL });
});
afterAll(async () => {
  await t.close();
  await fake.stop();
});

const quiet = pino({ level: 'silent' });
const worker = (embedders: EmbedderSource = t.deps.embedders, opts: Partial<{ leaseMs: number; maxAttempts: number }> = {}) =>
  new IngestionWorker(t.deps.database.db, embedders, t.deps.documentPool, quiet, {
    concurrency: 0,
    leaseMs: 60_000,
    maxAttempts: 6,
    ...opts,
  });
const source = (e: Embedder): EmbedderSource => ({ forTenant: async () => e });

/** Many short sections: one chunk each, so batch boundaries are easy to reason about. */
const sections = (n: number, tag: string) =>
  Array.from({ length: n }, (_, i) => `# Section ${i}\n\nParagraph ${i} of the ${tag} handbook mentions item ${tag}${i}.`).join('\n\n');

const db = () => t.deps.database.db;
async function docRow(id: string) {
  return rowsOf<{
    status: string;
    version: number;
    live_version: number | null;
    chunks_done: number;
    chunks_total: number | null;
    chunk_count: number;
    error: string | null;
    attempts: number;
    next_attempt_at: string | Date;
    locked_by: string | null;
  }>(await db().execute(sql`select * from documents where id = ${id}`))[0]!;
}
async function chunkStats(id: string) {
  return rowsOf<{ total: number; distinct_idx: number; versions: number[] | string }>(
    await db().execute(sql`select count(*)::int as total, count(distinct (version, chunk_index))::int as distinct_idx,
                              coalesce(array_agg(distinct version), '{}') as versions from document_chunks where document_id = ${id}`),
  )[0]!;
}
const versionsOf = (v: number[] | string) => (typeof v === 'string' ? v.replace(/[{}]/g, '').split(',').filter(Boolean).map(Number) : v);
const makeDue = (id: string) => db().execute(sql`update documents set next_attempt_at = now() where id = ${id}`);
const post = async (s: Session, title: string, content: string) => {
  const res = await call(t.app, 'POST', '/api/v1/documents', s.access_token, { title, content });
  expect(res.statusCode, res.body).toBe(202);
  return res.json().id as string;
};
const searchTexts = async (s: Session, query: string) =>
  (
    (await call(t.app, 'POST', '/api/v1/knowledge/search', s.access_token, { query, min_score: 0 })).json().results as { text: string }[]
  ).map((r) => r.text);

/** An embedder that fails (or waits) on chosen calls, counting every text it embeds. */
class ScriptedEmbedder implements Embedder {
  readonly model = LOCAL_EMBEDDING_MODEL;
  readonly dimensions = 384;
  readonly maxBatchSize = 4;
  calls = 0;
  embedded = 0;
  constructor(private readonly onCall: (n: number) => Promise<void> | void = () => {}) {}
  async embed(texts: string[]) {
    this.calls++;
    await this.onCall(this.calls);
    this.embedded += texts.length;
    return new LocalEmbedder().embed(texts);
  }
}

describe('ingestion queue', () => {
  it('replacing a document keeps the old chunks serving until the new version is complete', async () => {
    const s = await signup(t.app);
    const id = await post(s, 'Menu', 'The cafeteria serves lentil soup on Mondays.');
    expect(await worker().runOnce()).toBe(true);
    expect(await docRow(id)).toMatchObject({ status: 'ready', live_version: 1 });

    const put = await call(t.app, 'PUT', `/api/v1/documents/${id}`, s.access_token, { content: sections(10, 'pumpkin') });
    expect(put.statusCode, put.body).toBe(202);
    expect(put.json()).toMatchObject({ status: 'pending', version: 2, live_version: 1, chunk_count: 1, title: 'Menu' });
    expect(await searchTexts(s, 'lentil soup')).toEqual(['The cafeteria serves lentil soup on Mondays.']);

    // Half-way through version 2 the provider fails: what was stored so far stays invisible.
    const failing = new ScriptedEmbedder((n) => {
      if (n === 2) throw new ProviderError('test', 'upstream hiccup', true, 503);
    });
    await worker(source(failing)).runOnce();
    const mid = await docRow(id);
    expect(mid).toMatchObject({ status: 'pending', version: 2, live_version: 1, chunks_done: 4, chunks_total: 10, locked_by: null });
    expect(mid.error).toMatch(/Attempt 1 of 6 failed, retrying: test: upstream hiccup/);
    expect(new Date(mid.next_attempt_at).getTime()).toBeGreaterThan(Date.now() + 1000);
    expect(await searchTexts(s, 'lentil soup')).toEqual(['The cafeteria serves lentil soup on Mondays.']);
    expect((await searchTexts(s, 'pumpkin handbook')).filter((x) => x.includes('pumpkin'))).toEqual([]);
    expect(await worker().runOnce()).toBe(false); // not due yet: backoff

    await makeDue(id);
    const resumed = new ScriptedEmbedder();
    await worker(source(resumed)).runOnce();
    expect(resumed.embedded).toBe(6); // only what was missing
    expect(await docRow(id)).toMatchObject({
      status: 'ready',
      live_version: 2,
      chunk_count: 10,
      chunks_done: 10,
      error: null,
      attempts: 0,
    });
    const stats = await chunkStats(id);
    expect([stats.total, stats.distinct_idx, versionsOf(stats.versions)]).toEqual([10, 10, [2]]);
    expect((await searchTexts(s, 'lentil soup')).filter((x) => x.includes('lentil'))).toEqual([]);
    expect((await searchTexts(s, 'pumpkin7 handbook'))[0]).toContain('pumpkin7');
  });

  it('a provider error that is not transient, or the last allowed attempt, marks the document failed', async () => {
    const s = await signup(t.app);
    const id = await post(s, 'Doc', sections(3, 'walnut'));
    const denied = new OpenAIEmbedder({ apiKey: 'sk-wrong', baseURL: fake.baseURL, maxRetries: 0 });
    await worker(source(denied)).runOnce();
    const row = await docRow(id);
    expect(row.status).toBe('failed');
    expect(row.error).toMatch(/openai: 401 .*Incorrect API key/);
    expect((await chunkStats(id)).total).toBe(0);

    const id2 = await post(s, 'Doc 2', sections(3, 'hazel'));
    const flaky = new OpenAIEmbedder({ apiKey: fake.apiKey, baseURL: fake.baseURL, maxRetries: 0 });
    fake.failNext({ status: 500 }, { status: 500 });
    await worker(source(flaky), { maxAttempts: 2 }).runOnce();
    expect(await docRow(id2)).toMatchObject({ status: 'pending', attempts: 1 });
    await makeDue(id2);
    await worker(source(flaky), { maxAttempts: 2 }).runOnce();
    const failed = await docRow(id2);
    expect(failed).toMatchObject({ status: 'failed', attempts: 2 });
    expect(failed.error).toMatch(/openai: 500/);
    // The API reports it the same way.
    expect((await call(t.app, 'GET', `/api/v1/documents/${id2}`, s.access_token)).json()).toMatchObject({
      status: 'failed',
      error: failed.error,
    });
  });

  it('a poison document (its worker killed past the time budget) fails once with the reason, is not retried, and is logged readably', async () => {
    const s = await signup(t.app);
    // ~5 MB of text: chunking it takes far longer than the 200 ms this pool allows a job.
    const id = await post(s, 'Poison', 'Sentence one is here. Another sentence follows it.\n\n'.repeat(100_000));
    const pool = new DocumentPool({
      size: 1,
      maxOldGenerationSizeMb: 256,
      jobTimeoutMs: 200,
      limits: DEFAULT_EXTRACT_LIMITS,
      maxChunks: 100_000,
    });
    const lines: string[] = [];
    const log = pino({ level: 'warn' }, { write: (line: string) => void lines.push(line) });
    try {
      await new IngestionWorker(db(), t.deps.embedders, pool, log, { concurrency: 0, leaseMs: 60_000, maxAttempts: 6 }).runOnce();
    } finally {
      await pool.close();
    }
    const row = await docRow(id);
    // Before, any failure that was not an ExtractError counted as transient: 6 attempts, each stalling the service.
    expect(row).toMatchObject({ status: 'failed', attempts: 1 });
    expect(row.error).toMatch(/^document_too_complex: Processing took longer than/);
    const logged = lines.map((l) => JSON.parse(l) as { msg: string; err?: { message: string } }).find((l) => l.msg === 'ingestion failed');
    expect(logged?.err?.message).toMatch(/took longer than/);
    expect(lines.join('')).not.toMatch(/unable to serialize/);
  });

  it('waits at least as long as the provider’s Retry-After before the next attempt', async () => {
    const s = await signup(t.app);
    const id = await post(s, 'Doc', sections(2, 'cedar'));
    const limited = new OpenAIEmbedder({ apiKey: fake.apiKey, baseURL: fake.baseURL, maxRetries: 0 });
    fake.failNext({ status: 429, retryAfterS: 90 });
    // The next attempt is measured from either side of the attempt, so a slow attempt (a loaded machine) moves
    // neither bound.
    const attemptStarted = Date.now();
    await worker(source(limited)).runOnce();
    const attemptEnded = Date.now();
    const row = await docRow(id);
    expect(row.status).toBe('pending');
    expect(row.error).toMatch(/429/);
    const nextAttempt = new Date(row.next_attempt_at).getTime();
    expect(nextAttempt - attemptStarted).toBeGreaterThan(85_000);
    expect(nextAttempt - attemptEnded).toBeLessThan(95_000);
  });

  it('workers share the queue: a claimed document is skipped by others until its lease runs out', async () => {
    const s = await signup(t.app);
    const first = await post(s, 'First', sections(2, 'maple'));
    const second = await post(s, 'Second', sections(2, 'birch'));
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slow = new ScriptedEmbedder(() => gate);
    const a = worker(source(slow));
    const busy = a.runOnce(); // claims `first` and waits inside the embedder
    await waitForClaim(first);
    const b = worker();
    expect(await b.runOnce()).toBe(true); // takes `second`, never `first`
    expect(await docRow(second)).toMatchObject({ status: 'ready' });
    expect(await b.runOnce()).toBe(false); // `first` is leased by a live worker
    expect(await docRow(first)).toMatchObject({ status: 'processing', locked_by: a.workerId });

    // Worker a stalls past its lease (its heartbeats stopped reaching the database): another takes over.
    await db().execute(sql`update documents set locked_at = now() - interval '10 minutes' where id = ${first}`);
    const c = worker();
    expect(await c.runOnce()).toBe(true);
    expect(await docRow(first)).toMatchObject({ status: 'ready', chunk_count: 2, locked_by: null });
    // The stalled worker comes back: its writes are refused, nothing is duplicated.
    release();
    await busy;
    const stats = await chunkStats(first);
    expect([stats.total, stats.distinct_idx]).toEqual([2, 2]);
    expect(await docRow(first)).toMatchObject({ status: 'ready', live_version: 1 });
  });

  it('a worker stopped mid-document (graceful shutdown) hands it back to the queue at once', async () => {
    const s = await signup(t.app);
    const id = await post(s, 'Long', sections(12, 'oak'));
    let release!: () => void;
    let entered!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const inFirstBatch = new Promise<void>((r) => (entered = r));
    const embedder = new ScriptedEmbedder((n) => {
      if (n !== 1) return;
      entered();
      return gate;
    });
    const w = new IngestionWorker(db(), source(embedder), t.deps.documentPool, quiet, {
      concurrency: 1,
      leaseMs: 60_000,
      maxAttempts: 6,
      pollMs: 20,
    });
    await w.start();
    await inFirstBatch;
    const stopping = w.stop();
    release();
    await stopping;
    expect(embedder.calls).toBe(1);
    expect(await docRow(id)).toMatchObject({ status: 'pending', locked_by: null, chunks_done: 4, attempts: 0 });
    expect(await worker().runOnce()).toBe(true); // no lease to wait for
    expect(await docRow(id)).toMatchObject({ status: 'ready', chunk_count: 12 });
  });

  it('a document whose every claim dies (the worker crashed each time) is given up after the allowed attempts', async () => {
    const s = await signup(t.app);
    const id = await post(s, 'Crasher', sections(2, 'yew'));
    await db().execute(
      sql`update documents set status = 'processing', locked_by = 'dead', locked_at = now() - interval '1 hour', attempts = 6 where id = ${id}`,
    );
    expect(await worker().runOnce()).toBe(true);
    const row = await docRow(id);
    expect(row).toMatchObject({ status: 'failed', attempts: 7 });
    expect(row.error).toMatch(/Gave up after 6 attempts/);
  });

  it('a document deleted while it is being ingested stops the worker cleanly', async () => {
    const s = await signup(t.app);
    const id = await post(s, 'Doomed', sections(8, 'elm'));
    const embedder = new ScriptedEmbedder(async (n) => {
      if (n === 1) expect((await call(t.app, 'DELETE', `/api/v1/documents/${id}`, s.access_token)).statusCode).toBe(204);
    });
    expect(await worker(source(embedder)).runOnce()).toBe(true);
    expect(embedder.calls).toBe(1);
    expect((await chunkStats(id)).total).toBe(0);
  });

  it('changing the tenant’s embedding model re-embeds every document with it', async () => {
    const s = await signup(t.app);
    const id = await post(s, 'Hours', 'The pharmacy counter opens at nine and closes at six.');
    await worker().runOnce();
    expect(await docRow(id)).toMatchObject({ status: 'ready', live_version: 1 });

    const before = fake.requests.length;
    const put = await call(t.app, 'PUT', '/api/v1/settings/tenant', s.access_token, {
      providers: { embeddings: { provider: 'openai', model: 'text-embedding-3-small', dimensions: 512 } },
      provider_keys: { openai: fake.apiKey },
    });
    expect(put.statusCode, put.body).toBe(200);
    expect(await docRow(id)).toMatchObject({ status: 'pending', version: 2, live_version: 1 });
    await worker().runOnce();
    const doc = (await call(t.app, 'GET', `/api/v1/documents/${id}`, s.access_token)).json();
    expect(doc).toMatchObject({ status: 'ready', live_version: 2, embedding_model: 'text-embedding-3-small', embedding_dimensions: 512 });
    expect(fake.requests.length).toBeGreaterThan(before);
    expect(fake.requests.at(-1)).toMatchObject({ model: 'text-embedding-3-small', dimensions: 512 });
    // Queries are embedded by the same model: vector search alone finds it.
    const hits = (
      await call(t.app, 'POST', '/api/v1/knowledge/search', s.access_token, { query: 'when does the pharmacy open', mode: 'vector' })
    ).json().results;
    expect(hits[0]?.document_id).toBe(id);

    // Settings that do not touch the embedding model do not re-embed.
    await call(t.app, 'PUT', '/api/v1/settings/tenant', s.access_token, { agent_name: 'Nora' });
    expect(await docRow(id)).toMatchObject({ status: 'ready', version: 2 });
  });

  it('documents embedded by an older local embedder are re-queued at start-up', async () => {
    const s = await signup(t.app);
    const id = await post(s, 'Old', 'Embedded long ago by a previous release.');
    await worker().runOnce();
    await db().execute(sql`update documents set embedding_model = 'local-hash-v1' where id = ${id}`);
    expect(await t.deps.documents.requeueRetiredLocalModels(LOCAL_EMBEDDING_MODEL)).toBe(1);
    expect(await docRow(id)).toMatchObject({ status: 'pending', version: 2, live_version: 1 });
    await worker().runOnce();
    expect(await docRow(id)).toMatchObject({ status: 'ready', live_version: 2 });
    expect(await t.deps.documents.requeueRetiredLocalModels(LOCAL_EMBEDDING_MODEL)).toBe(0);
  });

  it('search reports a provider failure as 502 provider_error, not a crash', async () => {
    const s = await signup(t.app);
    await call(t.app, 'PUT', '/api/v1/settings/tenant', s.access_token, {
      providers: { embeddings: { provider: 'openai' } },
      provider_keys: { openai: 'sk-not-the-right-key' },
    });
    const res = await call(t.app, 'POST', '/api/v1/knowledge/search', s.access_token, { query: 'anything' });
    expect(res.statusCode).toBe(502);
    expect(res.json().error).toMatchObject({ code: 'provider_error' });
    expect(res.json().error.message).toMatch(/401/);
  });
});

async function waitForClaim(id: string) {
  for (let i = 0; i < 200; i++) {
    if ((await docRow(id)).status === 'processing') return;
    await sleep(10);
  }
  throw new Error('document never claimed');
}
