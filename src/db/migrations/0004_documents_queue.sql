DROP INDEX "document_chunks_document_index_key";--> statement-breakpoint
ALTER TABLE "document_chunks" ADD COLUMN "version" integer DEFAULT 1 NOT NULL;--> statement-breakpoint
ALTER TABLE "documents" ADD COLUMN "filename" text;--> statement-breakpoint
ALTER TABLE "documents" ADD COLUMN "format" text DEFAULT 'text' NOT NULL;--> statement-breakpoint
ALTER TABLE "documents" ADD COLUMN "size_bytes" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "documents" ADD COLUMN "content_sha256" text;--> statement-breakpoint
ALTER TABLE "documents" ADD COLUMN "source" "bytea";--> statement-breakpoint
ALTER TABLE "documents" ADD COLUMN "version" integer DEFAULT 1 NOT NULL;--> statement-breakpoint
ALTER TABLE "documents" ADD COLUMN "live_version" integer;--> statement-breakpoint
ALTER TABLE "documents" ADD COLUMN "attempts" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "documents" ADD COLUMN "next_attempt_at" timestamp with time zone DEFAULT now() NOT NULL;--> statement-breakpoint
ALTER TABLE "documents" ADD COLUMN "locked_by" text;--> statement-breakpoint
ALTER TABLE "documents" ADD COLUMN "locked_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "documents" ADD COLUMN "chunks_total" integer;--> statement-breakpoint
ALTER TABLE "documents" ADD COLUMN "chunks_done" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "documents" ADD COLUMN "embedding_model" text;--> statement-breakpoint
ALTER TABLE "documents" ADD COLUMN "embedding_dimensions" integer;--> statement-breakpoint
ALTER TABLE "documents" ADD COLUMN "ready_at" timestamp with time zone;--> statement-breakpoint
CREATE UNIQUE INDEX "document_chunks_document_version_index_key" ON "document_chunks" USING btree ("document_id","version","chunk_index");--> statement-breakpoint
CREATE INDEX "documents_queue_idx" ON "documents" USING btree ("status","next_attempt_at");--> statement-breakpoint
-- Documents that were ready before versioning serve their chunks as version 1.
UPDATE "documents" SET "live_version" = "version" WHERE "status" = 'ready';
