// Knowledge-base benchmark (not a test): retrieval quality on SQuAD and behaviour at scale, on the embedded
// database and over the Postgres wire (PGlite behind pglite-socket, the `pg` driver), through the real
// ingestion worker and Retriever.
//
//   npm run bench:rag                         # quality and the gate, search latency at 10k (1 tenant) and 100k (50)
//   npm run bench:rag -- --latency '' --dbs embedded                   # quality and the gate only
//   npm run bench:rag -- --latency 10000:1 --queries 100               # latency at 10k chunks only
//   npm run bench:rag -- --latency 10000:1 --warmup 20                  # fewer searches before the timed ones (default 200)
//   npm run bench:rag -- --scales 10000,100000                          # also ingestion through the worker at scale
//
// 1. Quality: the 55 SQuAD passages (bench/data/squad-notre-dame.json, CC BY-SA 4.0) are one tenant's
//    documents; five other tenants hold identical copies as decoys, so any leak across tenants shows up as a
//    miss. Every one of the 269 questions is asked in vector (local embedder), full-text and hybrid mode:
//    hit@1/3/5 (the source passage is among the first k results), MRR@5, latency p50/p95: ranking alone (gate
//    off), then at the default settings (the answerability gate on). Beside them: a plain BM25 over the passages
//    computed here (k1 1.2, b 0.75, the local embedder's light stemming and stop words), and "before": ts_rank
//    full text with the cosine min_score, as search ranked and filtered until BM25.
//    The gate's trade-off: for each min_relevance, the questions that keep their passage in the top 5 (and first) vs
//    the off-topic questions answered with nothing, in all, per group, and per half of each set (even and odd
//    positions: choose a threshold on one half, check it on the other) (bench/data/off-topic-questions.json, "domains":
//    122 across clinic, travel, eSIM, retail, banking...; bench/data/off-topic-squad.json, "squad_other_articles": 150 SQuAD questions
//    of five other articles); and the same for the old cosine min_score.
// 2. Latency (--latency chunks:tenants,...): a synthetic corpus of SQuAD sentences (sections of four random
//    sentences, each tagged) written straight into the tables as ingestion leaves them (vectors, BM25, term
//    statistics; no extraction or worker, to keep 100k quick) for the first tenant and copied inside the database to
//    the others (each tenant holds the same chunks: 2,000 each at 100k over 50), then the production search at the default settings
//    (hybrid, top_k, the gate) for random SQuAD questions on random tenants (the embedder resolved once per tenant and
//    passed, as a call does): p50/p95 on the embedded database (the
//    default: PGlite in its own thread) and over the wire (the same data folder served by bench/pg-server.ts in a
//    process of its own, the `pg` driver over TCP). The load average is printed with the figures. The 384-d HNSW
//    index is dropped before the write (the default search with the local embedder does not read it; --keep-hnsw 1 keeps it).
// 3. Scale (--scales): N chunks over 50 tenants, ingested as documents through the worker (chunks/s). Then queries on
//    random tenants: latency p50/p95 of the production vector and hybrid search, and recall@10 of the filtered
//    ANN search against an exact scan; the same for a forced HNSW scan with and without iterative scanning,
//    which shows what post-filtering alone would cost.
// Results: a table on stdout and JSON in bench/results/rag.json (or --out).
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { sql } from 'drizzle-orm';
import pino from 'pino';
import { loadConfig } from '../src/config.js';
import { PGLITE_EXTENSIONS, rowsOf } from '../src/db/client.js';
import { documentChunks, documents, tenants } from '../src/db/schema.js';
import { buildDeps, closeDeps, type Deps } from '../src/deps.js';
import { LOCAL_EMBEDDING_MODEL, LocalEmbedder, terms } from '../src/rag/embedders/local-embedder.js';
import { IngestionWorker } from '../src/rag/ingestion.js';
import type { Embedder } from '../src/rag/embedders/embedder.js';
import { progress, SQUAD_FILE } from './data.js';
import { orQuery, type SearchMode } from '../src/rag/retriever.js';
import { BM25_ANALYZER, chunkTerms, chunkVector } from '../src/rag/bm25.js';
import { analyzeKnowledgeIfStale, replaceInTermStats } from '../src/rag/term-stats.js';
import { ragSchema } from '../src/services/settings-schema.js';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1] ?? '');
const SCALES = (args.get('scales') ?? '').split(',').filter(Boolean).map(Number);
const LATENCY = (args.get('latency') ?? '10000:1,100000:50')
  .split(',')
  .filter(Boolean)
  .map((s) => s.split(':').map(Number) as [number, number]);
const DBS = (args.get('dbs') ?? 'embedded,wire').split(',').filter(Boolean) as ('embedded' | 'wire')[];
const QUERIES = Number(args.get('queries') ?? 200);
const KEEP_HNSW = args.has('keep-hnsw');
/** Chunks the latency part writes from the client at most; the rest are copies made in the database. */
const WRITE_MAX = Number(args.get('write-max') ?? 1000);
/** Off-topic question files, one group each (comma-separated). */
const OFF_TOPIC_PATHS = (args.get('off-topic') ?? 'bench/data/off-topic-questions.json,bench/data/off-topic-squad.json').split(',');
const DEFAULTS = ragSchema.parse({});
const OUT = args.get('out') ?? 'bench/results/rag.json';
const SQUAD = args.get('squad') ?? process.env.SQUAD_PATH ?? SQUAD_FILE;
const TENANTS = 50;
const CHUNKS_PER_DOC = 100;

interface Qa {
  question: string;
  passage: number;
}
const squad = JSON.parse(readFileSync(SQUAD, 'utf8')) as { data: { paragraphs: { context: string; qas: { question: string }[] }[] }[] };
const passages = squad.data.flatMap((a) => a.paragraphs.map((p) => p.context));
const questions: Qa[] = squad.data.flatMap((a) => a.paragraphs).flatMap((p, i) => p.qas.map((q) => ({ question: q.question, passage: i })));

const pct = (xs: number[], p: number) =>
  xs.length ? [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]! : NaN;
const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;
let seed = 42;
const random = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
const pick = <T>(xs: T[]) => xs[Math.floor(random() * xs.length)]!;

/** A fresh service stack on a throw-away database; no background worker (the bench drives ingestion). */
async function openStack(db: 'embedded' | 'wire', wireUrl?: string) {
  const dir = mkdtempSync(path.join(tmpdir(), 'va-bench-rag-'));
  let stopWire = async () => {};
  let url = wireUrl;
  if (db === 'wire' && !url) {
    const pglite = await PGlite.create({ dataDir: path.join(dir, 'wire'), extensions: PGLITE_EXTENSIONS });
    const server = new PGLiteSocketServer({ db: pglite, port: 0, host: '127.0.0.1' });
    await server.start();
    url = `postgres://postgres:postgres@${server.getServerConn()}/postgres`;
    stopWire = async () => {
      await server.stop();
      await pglite.close();
    };
  }
  const config = loadConfig({
    NODE_ENV: 'test',
    DATA_DIR: dir,
    SECRET_KEY: 'bench-secret-key-that-is-long-enough-0123456789',
    INGEST_CONCURRENCY: '0',
    DATABASE_POOL_MAX: '1',
    DOCUMENT_MAX_BYTES: String(64 * 1024 * 1024),
    ...(url && { DATABASE_URL: url }),
  });
  const deps = await buildDeps(config, pino({ level: 'silent' }));
  const worker = new IngestionWorker(deps.database.db, deps.embedders, deps.documentPool, pino({ level: 'silent' }), {
    concurrency: 0,
    leaseMs: 600_000,
    maxAttempts: 1,
  });
  return {
    deps,
    worker,
    /** The embedded database's folder (PGlite's data). */
    pgliteDir: path.join(dir, 'pglite'),
    close: async (keep = false) => {
      await closeDeps(deps);
      await stopWire();
      if (!keep) rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function makeTenants(deps: Deps, n: number, prefix: string): Promise<string[]> {
  const rows = await deps.database.db
    .insert(tenants)
    .values(Array.from({ length: n }, (_, i) => ({ name: `${prefix} ${i}` })))
    .returning({ id: tenants.id });
  return rows.map((r) => r.id);
}

/** Uploads through the document service (validation included) and drains the queue with the worker. */
async function ingest(stack: Awaited<ReturnType<typeof openStack>>, docs: { tenantId: string; title: string; text: string }[]) {
  const t0 = performance.now();
  const ids: string[] = [];
  const uploading = progress('  uploaded', docs.length);
  for (const d of docs) {
    ids.push((await stack.deps.documents.create(d.tenantId, { title: d.title, bytes: Buffer.from(d.text) })).id);
    uploading.tick();
  }
  const uploadMs = performance.now() - t0;
  const ingesting = progress('  ingested', docs.length);
  while (await stack.worker.runOnce()) ingesting.tick();
  const totalMs = performance.now() - t0;
  const [{ n } = { n: 0 }] = rowsOf<{ n: number }>(
    await stack.deps.database.db.execute(sql`select count(*)::int as n from document_chunks`),
  );
  const [{ failed } = { failed: 0 }] = rowsOf<{ failed: number }>(
    await stack.deps.database.db.execute(sql`select count(*)::int as failed from documents where status <> 'ready'`),
  );
  if (failed) throw new Error(`${failed} documents did not become ready`);
  return { ids, chunks: n, uploadMs, totalMs };
}

/** Ranks of a question's passage among results (several chunks of a passage count once, at its first). */
function passageRank(documentIds: string[], passageId: string): number {
  return [...new Set(documentIds)].indexOf(passageId) + 1;
}

function qualityRow(db: string, mode: string, ranks: number[], ms: number[], leaks: number | string) {
  const n = ranks.length;
  const within = (k: number) => round(ranks.filter((r) => r >= 1 && r <= k).length / n, 3);
  return {
    db,
    mode,
    questions: n,
    hit_at_1: within(1),
    hit_at_3: within(3),
    hit_at_5: within(5),
    mrr_at_5: round(ranks.reduce((a, r) => a + (r >= 1 && r <= 5 ? 1 / r : 0), 0) / n, 3),
    p50_ms: ms.length ? round(pct(ms, 50)) : '',
    p95_ms: ms.length ? round(pct(ms, 95)) : '',
    cross_tenant_results: leaks,
  };
}

/** Plain BM25 over the passages, in memory: the baseline the search must match (k1 1.2, b 0.75). */
function bm25Baseline(): number[] {
  const k1 = 1.2;
  const b = 0.75;
  const docs = passages.map((p) => {
    const words = terms(p);
    const tf = new Map<string, number>();
    for (const w of words) tf.set(w, (tf.get(w) ?? 0) + 1);
    return { tf, len: words.length };
  });
  const avg = docs.reduce((a, d) => a + d.len, 0) / docs.length;
  const df = new Map<string, number>();
  for (const d of docs) for (const w of d.tf.keys()) df.set(w, (df.get(w) ?? 0) + 1);
  const idf = (w: string) => Math.log(1 + (docs.length - (df.get(w) ?? 0) + 0.5) / ((df.get(w) ?? 0) + 0.5));
  return questions.map((q) => {
    const qt = [...new Set(terms(q.question))];
    const scores = docs.map((d, i) => {
      let s = 0;
      for (const w of qt) {
        const f = d.tf.get(w) ?? 0;
        if (f) s += (idf(w) * f * (k1 + 1)) / (f + k1 * (1 - b + (b * d.len) / avg));
      }
      return [s, i] as const;
    });
    const order = scores.filter(([s]) => s > 0).sort((x, y) => y[0] - x[0] || x[1] - y[1]);
    return order.findIndex(([, i]) => i === q.passage) + 1;
  });
}

/** Search as it ranked and filtered before BM25: ts_rank full text (hybrid fused it with a 0.01 vector weight), cosine >= minScore. */
async function searchBefore(deps: Deps, tenantId: string, question: string, minScore: number): Promise<string[]> {
  const tsquery = orQuery(question);
  if (!tsquery) return [];
  const literal = `[${Array.from(new LocalEmbedder().embedOne(question)).join(',')}]`;
  const rows = rowsOf<{ document_id: string; similarity: number }>(
    await deps.database.db.execute(sql`
      select c.document_id, 1 - (c.embedding::vector(384) <=> ${literal}::vector(384)) as similarity
      from document_chunks c, to_tsquery('english', ${tsquery}) q
      where c.tenant_id = ${tenantId} and c.tsv @@ q and c.version = (select d.live_version from documents d where d.id = c.document_id)
      order by ts_rank(c.tsv, q, 1) desc, c.id
      limit 5`),
  );
  return rows.filter((r) => Number(r.similarity) >= minScore).map((r) => r.document_id);
}

async function quality(db: 'embedded' | 'wire') {
  const stack = await openStack(db);
  try {
    const [owner, ...decoys] = await makeTenants(stack.deps, 6, 'squad');
    const docs = passages.map((text, i) => ({ tenantId: owner!, title: `Passage ${i}`, text }));
    const { ids } = await ingest(stack, [
      ...docs,
      ...decoys.flatMap((t) => passages.map((text, i) => ({ tenantId: t, title: `Decoy ${i}`, text }))),
    ]);
    const ownIds = ids.slice(0, passages.length);
    const own = new Set(ownIds);
    const out: Record<string, unknown>[] = [qualityRow(db, 'baseline: plain BM25 (in memory)', bm25Baseline(), [], '')];
    {
      const ranks: number[] = [];
      const ms: number[] = [];
      for (const q of questions) {
        const t0 = performance.now();
        const found = await searchBefore(stack.deps, owner!, q.question, 0);
        ms.push(performance.now() - t0);
        ranks.push(passageRank(found, ownIds[q.passage]!));
      }
      out.push(qualityRow(db, 'before: ts_rank full text', ranks, ms, ''));
    }
    const gated = { label: `default settings (min_relevance ${DEFAULTS.min_relevance})`, minRelevance: DEFAULTS.min_relevance };
    for (const gate of [{ label: 'gate off', minRelevance: 0 }, gated]) {
      for (const mode of ['vector', 'fulltext', 'hybrid'] as SearchMode[]) {
        let leaks = 0;
        const ms: number[] = [];
        const ranks: number[] = [];
        for (const q of questions) {
          const t0 = performance.now();
          const results = await stack.deps.retriever.search(owner!, q.question, {
            topK: 5,
            minScore: gate.minRelevance ? DEFAULTS.min_score : 0,
            minRelevance: gate.minRelevance,
            mode,
          });
          ms.push(performance.now() - t0);
          leaks += results.filter((r) => !own.has(r.documentId)).length;
          ranks.push(
            passageRank(
              results.map((r) => r.documentId),
              ownIds[q.passage]!,
            ),
          );
        }
        out.push(qualityRow(db, `${mode === 'vector' ? 'vector (local embedder)' : mode}, ${gate.label}`, ranks, ms, leaks));
      }
    }
    // The gate: on-topic questions should keep their answer, off-topic ones should find nothing.
    // Each set is also split in halves (even and odd positions in its file), so a threshold chosen on one half can be
    // checked on the other.
    const curve = async (label: string, values: number[], search: (q: string, v: number) => Promise<string[]>) => {
      const share = (xs: boolean[], half?: 0 | 1) => {
        const part = half === undefined ? xs : xs.filter((_, i) => i % 2 === half);
        return round(part.filter(Boolean).length / part.length, 3);
      };
      for (const v of values) {
        const top5: boolean[] = [];
        const top1: boolean[] = [];
        for (const q of questions) {
          const found = await search(q.question, v);
          top5.push(found.slice(0, 5).includes(ownIds[q.passage]!));
          top1.push(found[0] === ownIds[q.passage]);
        }
        const silent: Record<string, boolean[]> = {};
        for (const [group, qs] of Object.entries(OFF_TOPIC)) {
          silent[group] = [];
          for (const q of qs) silent[group].push((await search(q, v)).length === 0);
        }
        const halves = ([0, 1] as const).map((h) =>
          [share(top5, h), share(top1, h), ...Object.values(silent).map((xs) => share(xs, h))].join(' '),
        );
        gates.push({
          db,
          gate: label,
          threshold: v,
          default: v === (label === 'min_relevance' ? DEFAULTS.min_relevance : 0.2) ? 'yes' : '',
          hit_at_5: share(top5),
          hit_at_1: share(top1),
          off_topic_with_no_result: share(Object.values(silent).flat()),
          ...Object.fromEntries(Object.entries(silent).map(([group, xs]) => [`no_result: ${group}`, share(xs)])),
          'halves, even / odd: hit@5 hit@1, no result per group': halves.join(' / '),
        });
      }
    };
    await curve('min_relevance', [0, 0.2, 0.3, 0.35, 0.4, 0.42, 0.44, 0.45, 0.46, 0.48, 0.5, 0.6], async (q, v) =>
      (await stack.deps.retriever.search(owner!, q, { topK: 5, minScore: DEFAULTS.min_score, minRelevance: v })).map((r) => r.documentId),
    );
    await curve('before: cosine min_score', [0, 0.1, 0.2, 0.3], (q, v) => searchBefore(stack.deps, owner!, q, v));
    return out;
  } finally {
    await stack.close();
  }
}

/**
 * Off-topic questions by group, none answerable from the Notre Dame article: what callers of the businesses we serve
 * ask (clinic, travel, eSIM, retail, banking...), and SQuAD questions of other articles (the same style as the
 * on-topic ones, so the gate cannot tell them apart by form).
 */
const OFF_TOPIC: Record<string, string[]> = Object.fromEntries(
  OFF_TOPIC_PATHS.map((p) => {
    const file = JSON.parse(readFileSync(p, 'utf8')) as { group?: string; questions: Record<string, string[]> };
    return [file.group ?? path.basename(p, '.json'), Object.values(file.questions).flat()];
  }),
);
const gates: Record<string, unknown>[] = [];

/** Synthetic but natural text: sections of SQuAD sentences recombined, each tagged so no two are identical. */
function syntheticDocument(sentences: string[], docNo: number): string {
  const sections: string[] = [];
  for (let s = 0; s < CHUNKS_PER_DOC; s++) {
    const body = Array.from({ length: 4 }, () => pick(sentences)).join(' ');
    sections.push(`# Record ${docNo}-${s}\n\n${body} Reference code R${docNo}x${s}.`);
  }
  return sections.join('\n\n');
}

async function scale(db: 'embedded' | 'wire', total: number) {
  const stack = await openStack(db);
  try {
    const tenantIds = await makeTenants(stack.deps, TENANTS, 'scale');
    const sentences = passages.flatMap((p) => p.match(/[^.!?]+[.!?]+/g) ?? []).map((s) => s.trim());
    const docCount = Math.ceil(total / CHUNKS_PER_DOC);
    const docs = Array.from({ length: docCount }, (_, i) => ({
      tenantId: tenantIds[i % TENANTS]!,
      title: `Doc ${i}`,
      text: syntheticDocument(sentences, i),
    }));
    const ing = await ingest(stack, docs);
    const db_ = stack.deps.database.db;
    const embedder = new LocalEmbedder();

    // The production plan of the tenant-filtered vector query (does it use the HNSW index?).
    const vec = sql.raw('vector(384)');
    const probe = `[${Array.from(embedder.embedOne(questions[0]!.question)).join(',')}]`;
    const plan = rowsOf<Record<string, string>>(
      await db_.execute(sql`explain select c.id from document_chunks c where c.tenant_id = ${tenantIds[0]} and c.embedding_dimensions = 384
        and c.embedding_model = ${LOCAL_EMBEDDING_MODEL} and c.version = (select d.live_version from documents d where d.id = c.document_id)
        order by c.embedding::${vec} <=> ${probe}::${vec} limit 40`),
    )
      .map((r) => Object.values(r)[0])
      .join('\n');
    const planUses = /embedding_384_idx/.test(plan)
      ? 'hnsw'
      : /tenant_id_idx/.test(plan)
        ? 'tenant index + exact sort'
        : 'seq scan + exact sort';

    const topIds = async (tenantId: string, literal: string, settings: string[]) =>
      db_.transaction(async (tx) => {
        for (const s of settings) await tx.execute(sql.raw(s));
        return rowsOf<{ id: string }>(
          await tx.execute(sql`select c.id from document_chunks c where c.tenant_id = ${tenantId} and c.embedding_dimensions = 384
            order by c.embedding::${vec} <=> ${literal}::${vec} limit 10`),
        ).map((r) => r.id);
      });
    const forced = ['set local enable_seqscan = off', 'set local enable_bitmapscan = off', 'set local enable_sort = off'];
    const variants = {
      production_vector: { ms: [] as number[], recall: [] as number[] },
      production_hybrid: { ms: [] as number[], recall: [] as number[] },
      exact: { ms: [] as number[], recall: [] as number[] },
      hnsw_iterative_ef40: { ms: [] as number[], recall: [] as number[] },
      hnsw_iterative_ef100: { ms: [] as number[], recall: [] as number[] },
      hnsw_no_iterative: { ms: [] as number[], recall: [] as number[] },
    };
    const querying = progress('  queries', QUERIES);
    for (let i = 0; i < QUERIES; i++) {
      querying.tick();
      const tenantId = pick(tenantIds);
      const question = pick(questions).question;
      const literal = `[${Array.from(embedder.embedOne(question)).join(',')}]`;
      let t0 = performance.now();
      const exact = await topIds(tenantId, literal, ['set local enable_indexscan = off']);
      variants.exact.ms.push(performance.now() - t0);
      variants.exact.recall.push(1);
      if (exact.length === 0) continue; // a tenant without chunks (only at toy scales) says nothing about recall
      const recall = (ids: string[]) => ids.filter((id) => exact.includes(id)).length / Math.min(10, exact.length);

      t0 = performance.now();
      const prod = await stack.deps.retriever.search(tenantId, question, { topK: 10, minScore: 0, minRelevance: 0, mode: 'vector' });
      variants.production_vector.ms.push(performance.now() - t0);
      variants.production_vector.recall.push(recall(prod.map((h) => h.chunkId)));

      t0 = performance.now();
      await stack.deps.retriever.search(tenantId, question, { topK: 10, minScore: 0, mode: 'hybrid' });
      variants.production_hybrid.ms.push(performance.now() - t0);

      t0 = performance.now();
      const it40 = await topIds(tenantId, literal, [
        ...forced,
        'set local hnsw.iterative_scan = relaxed_order',
        'set local hnsw.ef_search = 40',
      ]);
      variants.hnsw_iterative_ef40.ms.push(performance.now() - t0);
      variants.hnsw_iterative_ef40.recall.push(recall(it40));

      t0 = performance.now();
      const it100 = await topIds(tenantId, literal, [
        ...forced,
        'set local hnsw.iterative_scan = relaxed_order',
        'set local hnsw.ef_search = 100',
      ]);
      variants.hnsw_iterative_ef100.ms.push(performance.now() - t0);
      variants.hnsw_iterative_ef100.recall.push(recall(it100));

      t0 = performance.now();
      const plain = await topIds(tenantId, literal, [...forced, 'set local hnsw.iterative_scan = off', 'set local hnsw.ef_search = 40']);
      variants.hnsw_no_iterative.ms.push(performance.now() - t0);
      variants.hnsw_no_iterative.recall.push(recall(plain));
    }
    const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
    return {
      db,
      chunks: ing.chunks,
      tenants: TENANTS,
      documents: docCount,
      ingest_chunks_per_s: round(ing.chunks / (ing.totalMs / 1000), 1),
      ingest_total_s: round(ing.totalMs / 1000, 1),
      upload_validation_s: round(ing.uploadMs / 1000, 1),
      production_plan: planUses,
      queries: QUERIES,
      searches: Object.fromEntries(
        Object.entries(variants).map(([name, v]) => [
          name,
          {
            p50_ms: round(pct(v.ms, 50)),
            p95_ms: round(pct(v.ms, 95)),
            ...(v.recall.length && { recall_at_10: round(mean(v.recall), 3) }),
          },
        ]),
      ),
    };
  } finally {
    await stack.close();
  }
}

/**
 * Writes `total` chunks over the tenants as ingestion would leave them (a document per 100 sections, live, with its
 * vectors, BM25 vector and the tenant's term statistics), without the extraction and worker round trips.
 */
async function directFill(deps: Deps, tenantIds: string[], total: number): Promise<{ chunks: number; ms: number }> {
  const embedder = new LocalEmbedder();
  const sentences = passages.flatMap((p) => p.match(/[^.!?]+[.!?]+/g) ?? []).map((s) => s.trim());
  // At most WRITE_MAX chunks are written for the first tenant; they are repeated inside the database to fill its share
  // and the other tenants get copies of that (quick: the machine is shared).
  const share = Math.ceil(total / tenantIds.length);
  const docs = Math.ceil(Math.min(share, WRITE_MAX) / CHUNKS_PER_DOC);
  const repeats = Math.max(1, Math.round(share / (docs * CHUNKS_PER_DOC)));
  const filling = progress('  written documents', docs);
  // The local embedder's hybrid search reads no vector index (BM25 alone, retriever.ts); without it the write is
  // several times quicker (--keep-hnsw 1 keeps it).
  if (!KEEP_HNSW) await deps.database.db.execute(sql`drop index if exists document_chunks_embedding_384_idx`);
  const t0 = performance.now();
  for (let d = 0; d < docs; d++) {
    const tenantId = tenantIds[0]!;
    const rows = Array.from({ length: CHUNKS_PER_DOC }, (_, s) => {
      const headingPath = [`Record ${d}-${s}`];
      const content = `${Array.from({ length: 4 }, () => pick(sentences)).join(' ')} Reference code R${d}x${s}.`;
      const bm25 = chunkVector(chunkTerms(content, headingPath));
      return {
        chunkIndex: s,
        content,
        headingPath,
        tokenCount: 0,
        embedding: Array.from(embedder.embedOne(`${headingPath.join(' > ')}\n${content}`)),
        embeddingModel: embedder.model,
        embeddingDimensions: embedder.dimensions,
        bm25: bm25.literal,
        termIds: bm25.termIds,
        extraData: { bm25: BM25_ANALYZER },
      };
    });
    await deps.database.db.transaction(async (tx) => {
      const [doc] = await tx
        .insert(documents)
        .values({ tenantId, title: `Doc ${d}`, status: 'ready', liveVersion: 1, chunkCount: rows.length, chunksDone: rows.length })
        .returning({ id: documents.id });
      for (let i = 0; i < rows.length; i += 25) {
        await tx.insert(documentChunks).values(rows.slice(i, i + 25).map((r) => ({ ...r, tenantId, documentId: doc!.id, version: 1 })));
      }
      await replaceInTermStats(tx, tenantId, doc!.id, null, 1);
    });
    filling.tick();
  }
  const db = deps.database.db;
  for (let r = 1; r < repeats; r++) {
    await db.transaction(async (tx) => {
      const from = tenantIds[0]!;
      await tx.execute(sql`insert into documents (id, tenant_id, title, status, live_version, chunk_count, chunks_done)
        select md5(d.id::text || ${r})::uuid, ${from}, 'Copy ' || d.title, d.status, d.live_version, d.chunk_count, d.chunks_done
        from documents d where d.tenant_id = ${from} and d.title like 'Doc %'`);
      await tx.execute(sql`insert into document_chunks (tenant_id, document_id, version, chunk_index, content, heading_path,
          token_count, embedding, embedding_model, embedding_dimensions, bm25, term_ids, extra_data)
        select ${from}, md5(c.document_id::text || ${r})::uuid, c.version, c.chunk_index, c.content, c.heading_path,
          c.token_count, c.embedding, c.embedding_model, c.embedding_dimensions, c.bm25, c.term_ids, c.extra_data
        from document_chunks c join documents d on d.id = c.document_id where c.tenant_id = ${from} and d.title like 'Doc %'`);
    });
  }
  if (repeats > 1) {
    await db.execute(sql`update knowledge_term_stats set df = df * ${repeats} where tenant_id = ${tenantIds[0]!}`);
    await db.execute(sql`update knowledge_corpus_stats set chunks = chunks * ${repeats} where tenant_id = ${tenantIds[0]!}`);
  }
  const copying = progress('  copied to tenants', tenantIds.length - 1);
  for (const to of tenantIds.slice(1)) {
    await db.transaction(async (tx) => {
      const from = tenantIds[0]!;
      // Document ids derived from the source's and the tenant's, so the chunks find their copy.
      await tx.execute(sql`insert into documents (id, tenant_id, title, status, live_version, chunk_count, chunks_done)
        select md5(d.id::text || ${to})::uuid, ${to}, d.title, d.status, d.live_version, d.chunk_count, d.chunks_done
        from documents d where d.tenant_id = ${from}`);
      await tx.execute(sql`insert into document_chunks (tenant_id, document_id, version, chunk_index, content, heading_path,
          token_count, embedding, embedding_model, embedding_dimensions, bm25, term_ids, extra_data)
        select ${to}, md5(c.document_id::text || ${to})::uuid, c.version, c.chunk_index, c.content, c.heading_path,
          c.token_count, c.embedding, c.embedding_model, c.embedding_dimensions, c.bm25, c.term_ids, c.extra_data
        from document_chunks c where c.tenant_id = ${from}`);
      await tx.execute(
        sql`insert into knowledge_corpus_stats (tenant_id, chunks) select ${to}, chunks from knowledge_corpus_stats where tenant_id = ${from}`,
      );
      await tx.execute(
        sql`insert into knowledge_term_stats (tenant_id, term, df) select ${to}, term, df from knowledge_term_stats where tenant_id = ${from}`,
      );
    });
    copying.tick();
  }
  // What the ingestion worker does after a document goes live (the copies above bypass it).
  await analyzeKnowledgeIfStale(db);
  const [{ n } = { n: 0 }] = rowsOf<{ n: number }>(await deps.database.db.execute(sql`select count(*)::int as n from document_chunks`));
  return { chunks: n, ms: performance.now() - t0 };
}

/** The production search at the default settings, QUERIES random SQuAD questions on random tenants. */
/**
 * Searches before the timed ones, on random tenants: a running service has its tenants' pages in memory, and the wire
 * run's database has just been opened from disk (with 20, its 10k-chunk p50 was twice the embedded one's).
 */
const WARMUP = Number(args.get('warmup') ?? 200);

async function searchLatency(deps: Deps, tenantIds: string[]) {
  const ms: Record<'hybrid' | 'fulltext', number[]> = { hybrid: [], fulltext: [] };
  let empty = 0;
  const opts = { topK: DEFAULTS.top_k, minScore: DEFAULTS.min_score, minRelevance: DEFAULTS.min_relevance };
  // As a call does: the tenant's embedder is resolved once (a call's first search) and passed to each search.
  const embedders = new Map<string, Embedder>();
  const embedderOf = async (tenantId: string) => {
    if (!embedders.has(tenantId)) embedders.set(tenantId, await deps.retriever.embedderFor(tenantId));
    return embedders.get(tenantId)!;
  };
  for (let i = 0; i < WARMUP; i++) {
    const tenantId = pick(tenantIds);
    await deps.retriever.search(tenantId, pick(questions).question, { ...opts, embedder: await embedderOf(tenantId) }); // warm-up
  }
  const querying = progress('  queries', QUERIES);
  for (let i = 0; i < QUERIES; i++) {
    querying.tick();
    const tenantId = pick(tenantIds);
    const question = pick(questions).question;
    const embedder = await embedderOf(tenantId);
    for (const mode of ['hybrid', 'fulltext'] as const) {
      const t0 = performance.now();
      const hits = await deps.retriever.search(tenantId, question, { ...opts, mode, embedder });
      ms[mode].push(performance.now() - t0);
      if (mode === 'hybrid' && !hits.length) empty++;
    }
  }
  return { ms, empty };
}

async function latency(total: number, tenantCount: number) {
  const rows: Record<string, unknown>[] = [];
  const embedded = await openStack('embedded');
  let fill: { chunks: number; ms: number };
  let tenantIds: string[];
  try {
    tenantIds = await makeTenants(embedded.deps, tenantCount, 'latency');
    fill = await directFill(embedded.deps, tenantIds, total);
    const r = await searchLatency(embedded.deps, tenantIds);
    rows.push(latencyRow('embedded', fill, tenantCount, r));
  } finally {
    await embedded.close(true);
  }
  // The same data over the wire: the folder served by a database server process of its own.
  const server = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(import.meta.dirname, 'pg-server.ts'), '--data-dir', embedded.pgliteDir],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  try {
    const url = await new Promise<string>((resolve, reject) => {
      server.stdout.setEncoding('utf8').once('data', (line: string) => resolve(line.split('\n')[0]!.trim()));
      server.once('exit', (code) => reject(new Error(`pg-server exited (${code})`)));
    });
    const wire = await openStack('wire', url);
    try {
      rows.push(latencyRow('wire', fill, tenantCount, await searchLatency(wire.deps, tenantIds)));
    } finally {
      await wire.close();
    }
  } finally {
    server.kill();
    rmSync(path.dirname(embedded.pgliteDir), { recursive: true, force: true });
  }
  return rows;
}

function latencyRow(db: string, fill: { chunks: number; ms: number }, tenantCount: number, r: Awaited<ReturnType<typeof searchLatency>>) {
  return {
    db,
    chunks: fill.chunks,
    tenants: tenantCount,
    'written chunks/s': db === 'embedded' ? round(fill.chunks / (fill.ms / 1000), 0) : '',
    'hybrid p50 ms': round(pct(r.ms.hybrid, 50)),
    'hybrid p95 ms': round(pct(r.ms.hybrid, 95)),
    'fulltext p50 ms': round(pct(r.ms.fulltext, 50)),
    'fulltext p95 ms': round(pct(r.ms.fulltext, 95)),
    'gated (no result)': round(r.empty / QUERIES, 3),
    'load avg (1 5 15 min)': loadavg()
      .map((x) => x.toFixed(2))
      .join(' '),
  };
}

function table(rows: Record<string, unknown>[]): string {
  const cols = Object.keys(rows[0] ?? {});
  const cell = (v: unknown) => String(v ?? '');
  const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]) => `| ${vals.map((v, i) => v.padEnd(width[i]!)).join(' | ')} |`;
  return [line(cols), `|${width.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map((r) => line(cols.map((c) => cell(r[c]))))].join(
    '\n',
  );
}

/**
 * Why the fusion with a semantic embedder (OpenAI) is not in these figures: this machine has no semantic model and no
 * network to OpenAI, and the local fake OpenAI server's vectors are the local embedder's word hashes (test/fakes/openai.ts),
 * so fusing them would measure a lexical copy of BM25 again (which lowered hit@5 at every weight we tried), not
 * semantic fusion. Run the quality part against the real API to measure it.
 */
const DENSE_FUSION =
  'Dense fusion (OpenAI embedder, weight 1, reciprocal rank): not measured. No semantic embedder runs on this machine and the ' +
  "fake OpenAI server returns the local embedder's word-hash vectors, so fusing them would measure BM25 with a noisy copy of itself.";
const results: {
  quality: Record<string, unknown>[];
  gate?: Record<string, unknown>[];
  latency: Record<string, unknown>[];
  scale: Awaited<ReturnType<typeof scale>>[];
  environment: Record<string, unknown>;
  dense_fusion: string;
} = {
  dense_fusion: DENSE_FUSION,
  quality: [],
  latency: [],
  scale: [],
  environment: { node: process.version, cpus: (await import('node:os')).cpus().length, date: new Date().toISOString(), queries: QUERIES },
};
for (const db of DBS) {
  console.error(`quality on ${db}...`);
  results.quality.push(...(await quality(db)));
}
console.log(
  `\nRetrieval quality: SQuAD Notre Dame, ${passages.length} passages, ${questions.length} questions, top 5, decoy copies in 5 other tenants\n`,
);
console.log(table(results.quality));
console.log(
  `\nAnswerability gate (hybrid, top 5): questions that keep their passage vs off-topic questions answered with nothing (${Object.entries(
    OFF_TOPIC,
  )
    .map(([g, qs]) => `${g}: ${qs.length}`)
    .join(', ')})\n`,
);
console.log(table(gates));
results.gate = gates;
console.log(`\n${DENSE_FUSION}`);
for (const [total, tenantCount] of LATENCY) {
  console.error(`latency at ${total} chunks, ${tenantCount} tenants...`);
  results.latency.push(...(await latency(total, tenantCount)));
  console.error(table(results.latency));
}
if (results.latency.length) {
  console.log(
    `\nSearch latency at the default settings (${QUERIES} random SQuAD questions on random tenants, the tenant's embedder resolved once per tenant and passed, as a call does; synthetic corpus written directly)\n`,
  );
  console.log(table(results.latency));
}
for (const total of SCALES) {
  for (const db of DBS) {
    console.error(`scale ${total} on ${db}...`);
    results.scale.push(await scale(db, total));
  }
}
if (results.scale.length) {
  console.log(`\nScale: chunks over ${TENANTS} tenants, ${QUERIES} queries on random tenants; recall@10 against an exact scan\n`);
  console.log(
    table(
      results.scale.flatMap((s) =>
        Object.entries(s.searches).map(([name, v]) => ({
          db: s.db,
          chunks: s.chunks,
          'ingest chunks/s': s.ingest_chunks_per_s,
          search: name,
          'p50 ms': v.p50_ms,
          'p95 ms': v.p95_ms,
          'recall@10': 'recall_at_10' in v ? v.recall_at_10 : '',
          'production plan': name.startsWith('production') ? s.production_plan : '',
        })),
      ),
    ),
  );
}
mkdirSync(path.dirname(OUT), { recursive: true });
writeFileSync(OUT, `${JSON.stringify(results, null, 2)}\n`);
console.log(`\nJSON: ${OUT}`);
