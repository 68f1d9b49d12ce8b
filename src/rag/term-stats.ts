// A tenant's BM25 term statistics (knowledge_term_stats, knowledge_corpus_stats): changed only in the transaction
// that changes which chunks are live (a version's swap, a document's deletion), so search always sees statistics
// that match the live chunks.
import { sql } from 'drizzle-orm';
import { type Db, rowsOf } from '../db/client.js';
import { BM25_ANALYZER, chunkTerms, chunkVector } from './bm25.js';

type Tx = Pick<Db, 'execute'>;

/**
 * Version `to` of a document replaces version `from` (null: nothing was live) in the tenant's statistics. Call it
 * before the replaced version's chunks are deleted. The tenant's corpus row is written first: it row-locks, so two
 * documents of one tenant going live at once update the term rows one after the other (no deadlock).
 */
export async function replaceInTermStats(tx: Tx, tenantId: string, documentId: string, from: number | null, to: number | null) {
  if (from === to) return;
  // -1 for each chunk of the old version, +1 for each of the new (chunks stored before BM25 existed count for neither).
  const sign = sql`case when c.version = ${to ?? -1} then 1 else -1 end`;
  const scope = sql`c.document_id = ${documentId} and c.term_ids is not null and c.version in (${from ?? -1}, ${to ?? -1})`;
  const [{ delta } = { delta: 0 }] = rowsOf<{ delta: number }>(
    await tx.execute(sql`select coalesce(sum(${sign}), 0)::int as delta from document_chunks c where ${scope}`),
  );
  await tx.execute(sql`
    insert into knowledge_corpus_stats (tenant_id, chunks) values (${tenantId}, greatest(${delta}::int, 0))
    on conflict (tenant_id) do update set chunks = greatest(knowledge_corpus_stats.chunks + ${delta}::int, 0)`);
  const changed = rowsOf<{ term: number; df: number }>(
    await tx.execute(sql`
    insert into knowledge_term_stats (tenant_id, term, df)
    select ${tenantId}, t.term, sum(t.d)::int from (
      select unnest(c.term_ids) as term, ${sign} as d from document_chunks c where ${scope}) t
    group by t.term having sum(t.d) <> 0
    order by t.term
    on conflict (tenant_id, term) do update set df = knowledge_term_stats.df + excluded.df
    returning term, df`),
  );
  // Words no live chunk holds any more go (a word in no chunk has the same IDF as one never seen).
  const gone = changed.filter((r) => Number(r.df) <= 0).map((r) => Number(r.term));
  if (gone.length) {
    await tx.execute(
      sql`delete from knowledge_term_stats where tenant_id = ${tenantId} and term = any(${intArray(gone)}::int[]) and df <= 0`,
    );
  }
}

/** An int[] as one bind parameter (drizzle's template would expand a JS array into a list). */
export function intArray(ids: readonly number[]): string {
  return `{${ids.map((n) => Math.trunc(n)).join(',')}}`;
}

/**
 * Live chunks indexed by another analyzer version (BM25_ANALYZER) get their BM25 vectors again from their stored
 * text, a document per transaction, with the tenant's statistics moved from the old word ids to the new ones (the
 * document's row locked first, as ingestion's swap does). No re-embedding: a tenant on a paid embedder pays nothing.
 * Run at start-up; returns the documents re-indexed.
 */
export async function reindexTermVectors(db: Db): Promise<number> {
  const docs = rowsOf<{ id: string; tenant_id: string }>(
    await db.execute(sql`
      select d.id, d.tenant_id from documents d
      where d.live_version is not null and exists (
        select 1 from document_chunks c where c.document_id = d.id and c.version = d.live_version
          and c.term_ids is not null and c.extra_data->>'bm25' is distinct from ${BM25_ANALYZER})`),
  );
  let done = 0;
  for (const doc of docs) {
    await db.transaction(async (tx) => {
      const [row] = rowsOf<{ live_version: number | null }>(
        await tx.execute(sql`select live_version from documents where id = ${doc.id} for update`),
      );
      if (row?.live_version == null) return;
      const live = Number(row.live_version);
      const chunks = rowsOf<{ id: string; content: string; heading_path: string[] | string }>(
        await tx.execute(
          sql`select id, content, heading_path from document_chunks where document_id = ${doc.id} and version = ${live} and term_ids is not null`,
        ),
      );
      await replaceInTermStats(tx, doc.tenant_id, doc.id, live, null);
      for (const c of chunks) {
        const headings = typeof c.heading_path === 'string' ? (JSON.parse(c.heading_path) as string[]) : c.heading_path;
        const v = chunkVector(chunkTerms(c.content, headings));
        await tx.execute(sql`
          update document_chunks set bm25 = ${v.literal}::sparsevec, term_ids = ${intArray(v.termIds)}::int[],
            extra_data = extra_data || ${JSON.stringify({ bm25: BM25_ANALYZER })}::jsonb
          where id = ${c.id}`);
      }
      await replaceInTermStats(tx, doc.tenant_id, doc.id, null, live);
      done++;
    });
  }
  return done;
}

/**
 * document_chunks is analyzed again once it has this many times the pages it had at its last ANALYZE. The planner
 * scales the row counts it read then by the table's current size, so what goes stale is the shape (tenants, documents
 * per tenant), which changes slowly; doubling keeps the ANALYZEs of a knowledge base growing from nothing to N chunks
 * to about log2(N), and each reads a sample of at most 30,000 rows.
 */
export const ANALYZE_GROWTH = 2;

/**
 * ANALYZE the knowledge tables when document_chunks was never analyzed or has grown ANALYZE_GROWTH-fold since.
 * The embedded database (PGlite) has no autovacuum, so without this its tables are never analyzed: the planner then
 * takes a tenant's documents for one row and searches by walking every chunk of every document, filtering the
 * full-text match row by row instead of reading the GIN index (10k chunks in one tenant: 91 ms for one search,
 * 14 ms analyzed). On PostgreSQL autovacuum normally gets there first, and this finds nothing to do. Only the columns
 * the search's plan depends on are sampled (not the vectors nor the text): 0.3-1.6 s at 10k chunks.
 * Called after a document goes live and at start-up; returns whether it analyzed.
 */
export async function analyzeKnowledgeIfStale(db: Pick<Db, 'execute'>): Promise<boolean> {
  const [row] = rowsOf<{ pages: number | string; relpages: number | string; reltuples: number | string }>(
    await db.execute(sql`
      select pg_relation_size(c.oid) / current_setting('block_size')::int as pages, c.relpages, c.reltuples
      from pg_class c where c.oid = 'document_chunks'::regclass`),
  );
  if (!row || Number(row.pages) === 0) return false;
  const analyzed = Number(row.reltuples) >= 0;
  if (analyzed && Number(row.pages) < ANALYZE_GROWTH * Math.max(1, Number(row.relpages))) return false;
  await db.execute(
    sql`analyze document_chunks (tenant_id, document_id, version), documents (id, tenant_id, live_version), knowledge_term_stats, knowledge_corpus_stats`,
  );
  return true;
}
