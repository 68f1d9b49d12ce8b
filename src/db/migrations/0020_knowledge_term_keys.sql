-- BM25's candidates by tenant (rag/retriever.ts): each of a chunk's word ids (term_ids) XOR 32 bits of an md5 of
-- its tenant, so one GIN index over the keys reads only this tenant's chunks holding a word (the (tenant_id, tsv)
-- index read the tenant's whole posting list each search). Within a tenant the XOR keeps words apart; two tenants'
-- keys can meet, so search still filters by tenant_id. Immutable: a generated column's expression.
CREATE FUNCTION knowledge_term_keys(tenant uuid, terms integer[]) RETURNS integer[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ select array_agg(('x' || substr(md5(tenant::text), 1, 8))::bit(32)::int # t) from unnest(terms) t $$;--> statement-breakpoint
ALTER TABLE "document_chunks" ADD COLUMN "term_keys" integer[] GENERATED ALWAYS AS (knowledge_term_keys(tenant_id, term_ids)) STORED;--> statement-breakpoint
CREATE INDEX "document_chunks_term_keys_idx" ON "document_chunks" USING gin ("term_keys") WITH (fastupdate=false);