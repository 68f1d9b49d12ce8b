// Tenant-scoped hybrid retrieval: pgvector HNSW (cosine) and PostgreSQL full text, fused by reciprocal rank.
// Every query filters by tenant; pgvector applies that filter after the index scan, so iterative scans keep
// walking the graph until enough of the tenant's rows are found instead of silently returning fewer.
import { type SQL, sql } from 'drizzle-orm';
import { type Db, HNSW_EF_SEARCH, rowsOf } from '../db/client.js';
import type { Embedder } from './embedders/embedder.js';
import { terms } from './embedders/local-embedder.js';
import { withWrittenForms } from './spoken-forms.js';
import type { EmbedderSource } from './ingestion.js';

export type SearchMode = 'hybrid' | 'vector' | 'fulltext';

export interface SearchOptions {
  topK: number;
  /** Results whose cosine similarity to the query is below this are dropped (0 keeps everything). */
  minScore: number;
  mode?: SearchMode;
  /** The tenant's embedder when the caller already has it (embedderFor); otherwise it is looked up. */
  embedder?: Embedder;
}

export interface SearchHit {
  chunkId: string;
  documentId: string;
  documentTitle: string;
  text: string;
  headingPath: string[];
  page: number | null;
  /** Cosine similarity between query and chunk embeddings, 0..1: what minScore is compared with. */
  score: number;
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
 * Only the chunks of a document's live version answer; a version being ingested stays invisible. A correlated
 * lookup rather than a join keeps the vector query a single-table index scan that pgvector can iterate.
 */
const LIVE = sql`c.version = (select d.live_version from documents d where d.id = c.document_id)`;

export class Retriever {
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
    const tsquery = orQuery(query);

    // Each ranking is numbered in its own order (equal distances keep the index scan's order, as the exact scan's
    // own ties would); the fusion adds weight / (RRF_K + rank) per ranking.
    const ranked: SQL[] = [];
    if (mode !== 'fulltext') {
      ranked.push(sql`select id, ${vectorWeight(embedder)}::float8 / (${RRF_K} + row_number() over (order by distance)) as part from (
          select c.id, c.embedding::${vec} <=> ${literal}::${vec} as distance from document_chunks c
          where c.tenant_id = ${tenantId} and c.embedding_dimensions = ${dims} and c.embedding_model = ${embedder.model}
            and ${LIVE}
          order by c.embedding::${vec} <=> ${literal}::${vec}
          limit ${candidates}) v`);
    }
    if (mode !== 'vector' && tsquery) {
      ranked.push(sql`select id, 1::float8 / (${RRF_K} + row_number() over (order by rank desc, id)) as part from (
          select c.id, ts_rank(c.tsv, q, 1) as rank from document_chunks c, to_tsquery('english', ${tsquery}) q
          where c.tenant_id = ${tenantId} and c.tsv @@ q and ${LIVE}
          order by ts_rank(c.tsv, q, 1) desc, c.id
          limit ${candidates}) f`);
    }
    if (!ranked.length) return [];
    const rows = rowsOf<{
      id: string;
      document_id: string;
      title: string;
      content: string;
      heading_path: string[] | string;
      page: number | null;
      similarity: number | null;
      fused: number | string;
    }>(
      await this.db.execute(sql`
        with fused as (select id, sum(part) as fused from (${sql.join(ranked, sql` union all `)}) r group by id)
        select c.id, c.document_id, d.title, c.content, c.heading_path, c.page, f.fused,
               case when c.embedding_dimensions = ${dims} and c.embedding_model = ${embedder.model}
                    then 1 - (c.embedding::${vec} <=> ${literal}::${vec}) end as similarity
        from fused f
        join document_chunks c on c.id = f.id
        join documents d on d.id = c.document_id and d.tenant_id = c.tenant_id
        where c.tenant_id = ${tenantId} and c.version = d.live_version`),
    );
    return rows
      .map((r) => ({
        chunkId: r.id,
        documentId: r.document_id,
        documentTitle: r.title,
        text: r.content,
        headingPath: typeof r.heading_path === 'string' ? JSON.parse(r.heading_path) : r.heading_path,
        page: r.page,
        score: Math.max(0, Number(r.similarity ?? 0)),
        fusedScore: Number(r.fused),
      }))
      .filter((h) => h.score >= opts.minScore)
      .sort((a, b) => b.fusedScore - a.fusedScore || b.score - a.score)
      .slice(0, opts.topK);
  }
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
