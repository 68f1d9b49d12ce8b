-- Search indexes for document_chunks, written by hand because they are expressions drizzle-kit cannot describe.
-- Full text: GIN over the generated tsvector.
CREATE INDEX IF NOT EXISTS "document_chunks_tsv_idx" ON "document_chunks" USING gin ("tsv");--> statement-breakpoint
-- Vectors: one partial HNSW index (cosine) per embedding dimension in use; a query casts to the same vector(N)
-- and filters on embedding_dimensions = N so the planner can use it. 384 = the local embedder, 1536 =
-- text-embedding-3-small. HNSW indexes at most 2000 dimensions of `vector`; larger models need `dimensions`.
CREATE INDEX IF NOT EXISTS "document_chunks_embedding_384_idx" ON "document_chunks" USING hnsw (("embedding"::vector(384)) vector_cosine_ops) WHERE "embedding_dimensions" = 384;--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "document_chunks_embedding_1536_idx" ON "document_chunks" USING hnsw (("embedding"::vector(1536)) vector_cosine_ops) WHERE "embedding_dimensions" = 1536;
