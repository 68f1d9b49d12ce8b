-- Full text per tenant: one GIN index over (tenant_id, tsv) (btree_gin lets GIN index the uuid) answers
-- "this tenant's chunks matching these words" from the index alone, instead of intersecting a tenant-wide bitmap
-- with a platform-wide one. Measured on 100k chunks over 50 tenants: p95 19.8 ms -> 7.9 ms.
-- btree_gin is a trusted contrib extension (PostgreSQL 13+); PGlite ships it.
CREATE EXTENSION IF NOT EXISTS btree_gin;--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "document_chunks_tenant_tsv_idx" ON "document_chunks" USING gin ("tenant_id", "tsv");--> statement-breakpoint
DROP INDEX IF EXISTS "document_chunks_tsv_idx";
