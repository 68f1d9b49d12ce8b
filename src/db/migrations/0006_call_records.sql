ALTER TABLE "call_transcripts" ADD COLUMN "citations" jsonb DEFAULT '[]'::jsonb NOT NULL;--> statement-breakpoint
ALTER TABLE "call_transcripts" ADD COLUMN "metrics" jsonb DEFAULT '{}'::jsonb NOT NULL;--> statement-breakpoint
ALTER TABLE "tenant_configs" ADD COLUMN "call" jsonb DEFAULT '{}'::jsonb NOT NULL;