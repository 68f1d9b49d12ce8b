ALTER TABLE "calls" ADD COLUMN "ended_reason" text;--> statement-breakpoint
CREATE INDEX "call_transcripts_text_search_idx" ON "call_transcripts" USING gin (to_tsvector('english', "text"));