// Tenant-scoped hybrid retrieval: pgvector HNSW (cosine) and BM25 (a sparse dot product weighed by the tenant's
// term statistics, rag/bm25.ts), fused by reciprocal rank (BM25 alone with the local embedder), then an
// answerability gate: the best result must carry enough of the question's words (relevance >= minRelevance) or the
// tenant's knowledge answers with nothing.
// Every query filters by tenant; pgvector applies that filter after the index scan, so iterative scans keep
// walking the graph until enough of the tenant's rows are found instead of silently returning fewer.
import { type SQL, sql } from 'drizzle-orm';
import { type Db, HNSW_EF_SEARCH, rowsOf } from '../db/client.js';
import { CUSTOM_PLAN } from '../db/statement-cache.js';
import {
  analyzedWords,
  BM25_DIMENSIONS,
  DEFAULT_MIN_RELEVANCE,
  GATE_PRIOR_CHUNKS,
  GATE_UNSEEN_WEIGHT,
  PAIR_WEIGHT,
  queryTerms,
  stem,
  termId,
} from './bm25.js';
import type { Embedder } from './embedders/embedder.js';
import { terms } from './embedders/local-embedder.js';
import { withWrittenForms } from './spoken-forms.js';
import type { EmbedderSource } from './ingestion.js';
import { intArray } from './term-stats.js';

export type SearchMode = 'hybrid' | 'vector' | 'fulltext';

export interface SearchOptions {
  topK: number;
  /**
   * The answerability gate, 0..1 (default DEFAULT_MIN_RELEVANCE; 0 turns it off): when no result reaches this
   * relevance, the search returns nothing. Results are then not filtered one by one: the top k are the best the
   * tenant has for a question its knowledge answers.
   */
  minRelevance?: number;
  /**
   * Deprecated (the tenant setting `rag.min_score`): a cosine floor, now applied only to results that matched no
   * word of the question (found by the vectors alone); before BM25 it dropped full-text matches too (issue 22).
   */
  minScore: number;
  mode?: SearchMode;
  /** The tenant's embedder when the caller already has it (a call's agent, embedderFor); otherwise it is looked up. */
  embedder?: Embedder;
}

export interface SearchHit {
  chunkId: string;
  documentId: string;
  documentTitle: string;
  text: string;
  headingPath: string[];
  page: number | null;
  /**
   * Relevance, 0..1: the chunk's BM25 score over the question's total IDF (what a chunk holding each word of the
   * question once, at the average length, would score), capped at 1, both with the gate's IDF (GATE_PRIOR_CHUNKS);
   * in the total, a word none of the tenant's chunks holds counts GATE_UNSEEN_WEIGHT times. What minRelevance is
   * compared with.
   */
  score: number;
  /** Cosine similarity between query and chunk embeddings, 0..1 (0 for another model's vectors). */
  similarity: number;
  /** Reciprocal-rank-fusion value that ordered the results. */
  fusedScore: number;
}

// Dimensions with an HNSW index (migration 0003): 384 and 1536. Others still work, by an exact scan.
const RRF_K = 60;
/**
 * Weight of the vector ranking in the fusion. Semantic embeddings and full text complement each other: equal
 * weights. Lexical (local) vectors are a noisier copy of full text: on the SQuAD benchmark any real weight made
 * hybrid worse than full text alone (hit@5 0.80 full text; 0.75-0.77 fused at weights 0.1-1), so their
 * weight is small enough never to lift a vector-only result above a full-text one.
 */
const vectorWeight = (e: Embedder) => (e.lexical ? 0.01 : 1);
/**
 * BM25's candidates are the chunks holding a word of the question found in at most this many of the tenant's chunks
 * (or, when every word is commoner, the rarest words): a chunk holding only common words ("Notre Dame" in a tenant
 * all about it) cannot outscore one holding the question's rare words by much, and scoring every such chunk made
 * search grow with the tenant (at 10k chunks of one tenant, 6,400 of them matched a question). Tenants of up to this
 * many chunks are ranked exactly.
 */
export const CANDIDATE_MAX_DF = 300;
/**
 * Only the chunks of a document's live version answer; a version being ingested stays invisible. A correlated
 * lookup rather than a join keeps the vector query a single-table index scan that pgvector can iterate.
 */
const LIVE = sql`c.version = (select d.live_version from documents d where d.id = c.document_id)`;

export class Retriever {
  /**
   * Each tenant's live chunks as its last search saw them. A search by BM25 alone (no vector ranking) of a tenant
   * known to hold at most CANDIDATE_MAX_DF chunks is planned once for all such searches (a generic plan; every
   * other search is planned for its tenant at every run, CUSTOM_PLAN): whichever index that plan reads by, it reads
   * at most those few chunks, and planning was most of such a search's time (a tenant of 3 chunks: 1.85 ms a search
   * over the wire planned at every run, 0.64 ms planned once). A tenant grown since is planned for again at its next
   * search.
   */
  private readonly tenantChunks = new Map<string, number>();

  constructor(
    private readonly db: Db,
    /** The tenant's current embedder: queries are embedded with the model its chunks were embedded with. */
    private readonly embedders: EmbedderSource,
  ) {}

  /**
   * The tenant's live knowledge as one text (documents oldest first, chunks in order), at most `maxChars`, and a
   * version that changes whenever a document's live version does: what the local STT's domain language model is
   * built from, and what it is cached by. `text` is left out when the version is still `knownVersion`.
   */
  async corpus(tenantId: string, maxChars: number, knownVersion?: string): Promise<{ version: string; text?: string }> {
    const docs = rowsOf<{ id: string; live_version: number }>(
      await this.db.execute(
        sql`select id, live_version from documents where tenant_id = ${tenantId} and live_version is not null order by created_at, id`,
      ),
    );
    const version = docs.map((d) => `${d.id}:${d.live_version}`).join(',');
    if (version === knownVersion) return { version };
    if (!docs.length) return { version, text: '' };
    const chunks = rowsOf<{ content: string }>(
      await this.db.execute(sql`
        select c.content from document_chunks c join documents d on d.id = c.document_id and d.tenant_id = c.tenant_id
        where c.tenant_id = ${tenantId} and c.version = d.live_version
        order by d.created_at, d.id, c.chunk_index`),
    );
    let text = '';
    for (const c of chunks) {
      if (text.length + c.content.length + 1 > maxChars) break;
      text += `${c.content}\n`;
    }
    return { version, text };
  }

  /** The embedder the tenant's chunks were embedded with; a call resolves it once and passes it to search(). */
  embedderFor(tenantId: string): Promise<Embedder> {
    return this.embedders.forTenant(tenantId);
  }

  /**
   * One statement, one round trip and no transaction: at a few hundred simultaneous calls the database connection
   * is shared by every call's writes, and a search that held it for seven round trips queued them all.
   */
  async search(tenantId: string, spoken: string, opts: SearchOptions): Promise<SearchHit[]> {
    // Callers' questions arrive transcribed ("the e sim with twenty gigabytes"); documents write "eSIM", "20 GB".
    const query = withWrittenForms(spoken);
    const mode = opts.mode ?? 'hybrid';
    const candidates = Math.min(Math.max(opts.topK * 4, 20), HNSW_EF_SEARCH);
    const embedder = opts.embedder ?? (await this.embedders.forTenant(tenantId));
    const dims = embedder.dimensions;
    if (!Number.isInteger(dims) || dims < 1 || dims > 16_000) throw new Error(`bad embedding dimension ${dims}`);
    const [queryVector] = await embedder.embed([query]);
    const literal = `[${Array.from(queryVector!).join(',')}]`;
    // The cast's type modifier cannot be a bind parameter; dims is a checked integer.
    const vec = sql.raw(`vector(${dims})`);
    const terms = queryTerms(query);
    const words = candidateWords(query);
    const sparseDims = sql.raw(String(BM25_DIMENSIONS));

    // The query's BM25 vectors, built in the statement from the tenant's statistics: each word weighs its IDF
    // (ln(1 + (N - df + 0.5) / (df + 0.5)), N the tenant's live chunks), each adjacent pair PAIR_WEIGHT x the smaller
    // IDF of its two words. `v` ranks; `g` is the gate's, with GATE_PRIOR_CHUNKS added to N, and `total` (its words'
    // IDF summed, a word none of the tenant's chunks holds counted GATE_UNSEEN_WEIGHT times) is what a relevance of 1
    // means.
    const q = sql`
      n as (select coalesce((select chunks from knowledge_corpus_stats where tenant_id = ${tenantId}), 0)::float8 as chunks),
      qt as (
        select u.term,
               ln(1 + (n.chunks - coalesce(s.df, 0) + 0.5) / (coalesce(s.df, 0) + 0.5)) as idf,
               ln(1 + (n.chunks + ${GATE_PRIOR_CHUNKS} - coalesce(s.df, 0) + 0.5) / (coalesce(s.df, 0) + 0.5)) as gidf,
               coalesce(s.df, 0) as df
        from unnest(${intArray(terms.termIds)}::int[]) u(term)
        cross join n
        left join knowledge_term_stats s on s.tenant_id = ${tenantId} and s.term = u.term),
      qw as (
        select term, idf as w, gidf as gw from qt
        union all
        select p.term, ${PAIR_WEIGHT}::float8 * least(a.idf, b.idf), ${PAIR_WEIGHT}::float8 * least(a.gidf, b.gidf)
        from unnest(${intArray(terms.pairIds)}::int[], ${intArray(terms.pairLeft)}::int[], ${intArray(terms.pairRight)}::int[]) p(term, l, r)
        join qt a on a.term = p.l join qt b on b.term = p.r),
      qs as (select term, sum(w) as w, sum(gw) as gw from qw group by term),
      q as (
        select (select ('{' || coalesce(string_agg(term || ':' || w, ',' order by term), '') || '}/${sparseDims}')::sparsevec from qs) as v,
               (select ('{' || coalesce(string_agg(term || ':' || gw, ',' order by term), '') || '}/${sparseDims}')::sparsevec from qs) as g,
               (select coalesce(sum(gidf * case when df = 0 then ${GATE_UNSEEN_WEIGHT}::float8 else 1 end), 0) from qt)::float8 as total,
               (select chunks from n)::int as chunks),
      cw as (
        select w.term, coalesce(t.df, 0) as df
        from unnest(${intArray(words.map((w) => w.term))}::int[]) w(term)
        left join qt t on t.term = w.term),
      tk as (
        select knowledge_term_keys(${tenantId}::uuid, array_agg(term)) as keys from cw
        where df <= greatest(${CANDIDATE_MAX_DF}, (select min(df) from cw)))`;

    // Each ranking is numbered in its own order (equal distances keep the index scan's order, as the exact scan's
    // own ties would); the fusion adds weight / (RRF_K + rank) per ranking.
    const ranked: SQL[] = [];
    const vectorRanked = mode === 'vector' || (mode === 'hybrid' && !embedder.lexical);
    // The local embedder's vectors are a noisier copy of the words BM25 already weighs (hybrid and full text found the
    // same passages on SQuAD), and at 10k chunks in one tenant their exact scan was most of the search's time: with
    // them, hybrid is BM25 alone. Semantic vectors are fused.
    if (vectorRanked) {
      ranked.push(sql`select id, ${vectorWeight(embedder)}::float8 / (${RRF_K} + row_number() over (order by distance)) as part from (
          select c.id, c.embedding::${vec} <=> ${literal}::${vec} as distance from document_chunks c
          where c.tenant_id = ${tenantId} and c.embedding_dimensions = ${dims} and c.embedding_model = ${embedder.model}
            and ${LIVE}
          order by c.embedding::${vec} <=> ${literal}::${vec}
          limit ${candidates}) v`);
    }
    if (mode !== 'vector' && words.length) {
      // Candidates are the chunks sharing a rare enough word with the question (see CANDIDATE_MAX_DF), found by the
      // GIN index on term_keys (the words keyed by tenant: only this tenant's postings of these words are read; the
      // tenant_id filter stays, since two tenants' keys can meet), ranked by exact BM25. Chunks stored before BM25
      // have no keys (re-queued at start-up). The live version by a join: the candidates can be many, and a lookup
      // per row cost as much as BM25.
      ranked.push(sql`select id, 1::float8 / (${RRF_K} + row_number() over (order by distance nulls last, id)) as part from (
          select c.id, c.bm25 <#> q.v as distance
          from document_chunks c join documents d on d.id = c.document_id and d.live_version = c.version, q
          where c.tenant_id = ${tenantId} and d.tenant_id = ${tenantId} and c.term_keys && (select tk.keys from tk)
          order by c.bm25 <#> q.v nulls last, c.id
          limit ${candidates}) f`);
    }
    if (!ranked.length) return [];
    const small = !vectorRanked && (this.tenantChunks.get(tenantId) ?? Infinity) <= CANDIDATE_MAX_DF;
    const rows = rowsOf<{
      id: string;
      document_id: string;
      title: string;
      content: string;
      heading_path: string[] | string;
      page: number | null;
      similarity: number | null;
      relevance: number | string | null;
      fused: number | string;
      chunks: number;
    }>(
      await this.db.execute(sql`${small ? sql`` : sql.raw(CUSTOM_PLAN)}
        with ${q},
        fused as (select id, sum(part) as fused from (${sql.join(ranked, sql` union all `)}) r group by id)
        select c.id, c.document_id, d.title, c.content, c.heading_path, c.page, f.fused, q.chunks,
               case when c.embedding_dimensions = ${dims} and c.embedding_model = ${embedder.model}
                    then 1 - (c.embedding::${vec} <=> ${literal}::${vec}) end as similarity,
               case when q.total > 0 then least(1, greatest(0, -(c.bm25 <#> q.g)) / q.total) end as relevance
        from fused f
        cross join q
        join document_chunks c on c.id = f.id
        join documents d on d.id = c.document_id and d.tenant_id = c.tenant_id
        where c.tenant_id = ${tenantId} and c.version = d.live_version`),
    );
    if (rows[0]) this.tenantChunks.set(tenantId, Number(rows[0].chunks));
    const hits = rows
      .map((r) => ({
        chunkId: r.id,
        documentId: r.document_id,
        documentTitle: r.title,
        text: r.content,
        headingPath: typeof r.heading_path === 'string' ? JSON.parse(r.heading_path) : r.heading_path,
        page: r.page,
        score: Number(r.relevance ?? 0),
        similarity: Math.max(0, Number(r.similarity ?? 0)),
        fusedScore: Number(r.fused),
      }))
      // The deprecated cosine floor: only for what matched no word of the question.
      .filter((h) => h.score > 0 || h.similarity >= opts.minScore);
    // The gate: a question the tenant's knowledge does not answer gets nothing, rather than its nearest passages.
    const minRelevance = opts.minRelevance ?? DEFAULT_MIN_RELEVANCE;
    if (!hits.some((h) => h.score >= minRelevance)) return [];
    return hits.sort((a, b) => b.fusedScore - a.fusedScore || b.score - a.score).slice(0, opts.topK);
  }
}

/**
 * The question's words that can find candidates (at least two letters or digits; a single letter matches nearly
 * everything) with their BM25 word ids: the ids decide by their document frequency and find the chunks (term_keys).
 */
export function candidateWords(query: string): { word: string; term: number }[] {
  const out = new Map<string, number>();
  for (const w of analyzedWords(query)) {
    const word = (terms(w)[0] ?? '').replace(/[^\p{L}\p{N}]/gu, '');
    // Single letters match nearly everything and carry no meaning.
    if (word.length >= 2 && !out.has(word)) out.set(word, termId(stem(w)));
  }
  return [...out].map(([word, term]) => ({ word, term }));
}

/** Questions match passages that share any of their words: OR of the stemmed terms, sanitized for to_tsquery. */
export function orQuery(query: string): string {
  // Single letters (the s of what's) match nearly everything and carry no meaning.
  const words = [
    ...new Set(
      terms(query)
        .map((w) => w.replace(/[^\p{L}\p{N}]/gu, ''))
        .filter((w) => w.length >= 2),
    ),
  ];
  return words.join(' | ');
}
