-- Documents' files in parts (schema.ts documentParts): one statement storing or reading a 19 MB file held the
-- embedded database, and with it the main thread, for 0.8 to 1.6 s. Files already stored become one part each.
CREATE TABLE IF NOT EXISTS "document_parts" (
	"document_id" uuid NOT NULL,
	"part" integer NOT NULL,
	"bytes" "bytea" NOT NULL,
	CONSTRAINT "document_parts_document_id_part_pk" PRIMARY KEY("document_id","part")
);
--> statement-breakpoint
ALTER TABLE "document_parts" ADD CONSTRAINT "document_parts_document_id_documents_id_fk" FOREIGN KEY ("document_id") REFERENCES "public"."documents"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
INSERT INTO "document_parts" ("document_id", "part", "bytes") SELECT "id", 0, "source" FROM "documents" WHERE "source" IS NOT NULL;--> statement-breakpoint
ALTER TABLE "documents" DROP COLUMN "source";
