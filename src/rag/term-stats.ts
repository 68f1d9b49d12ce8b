// A tenant's BM25 term statistics (knowledge_term_stats, knowledge_corpus_stats): changed only in the transaction
// that changes which chunks are live (a version's swap, a document's deletion), so search always sees statistics
// that match the live chunks.
import { sql } from 'drizzle-orm';
import { type Db, rowsOf } from '../db/client.js';

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
