-- Search finds BM25 candidates through document_chunks.term_keys (0020) and no longer reads the (tenant_id, tsv)
-- full-text index; it only cost every chunk written (and on the embedded database, which has no autovacuum, kept a
-- pending list that was never merged). The generated tsv column stays: bench:rag's old-search baseline reads it.
DROP INDEX IF EXISTS "document_chunks_tenant_tsv_idx";
