CREATE TABLE "knowledge_corpus_stats" (
	"tenant_id" uuid PRIMARY KEY NOT NULL,
	"chunks" integer DEFAULT 0 NOT NULL
);
--> statement-breakpoint
CREATE TABLE "knowledge_term_stats" (
	"tenant_id" uuid NOT NULL,
	"term" integer NOT NULL,
	"df" integer NOT NULL,
	CONSTRAINT "knowledge_term_stats_tenant_id_term_pk" PRIMARY KEY("tenant_id","term")
);
--> statement-breakpoint
ALTER TABLE "document_chunks" ADD COLUMN "bm25" sparsevec;--> statement-breakpoint
ALTER TABLE "document_chunks" ADD COLUMN "term_ids" integer[];--> statement-breakpoint
ALTER TABLE "knowledge_corpus_stats" ADD CONSTRAINT "knowledge_corpus_stats_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "knowledge_term_stats" ADD CONSTRAINT "knowledge_term_stats_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE cascade ON UPDATE no action;