ALTER TABLE "calls" ADD COLUMN "overrides" jsonb DEFAULT '{}'::jsonb NOT NULL;--> statement-breakpoint
ALTER TABLE "calls" ADD COLUMN "recording_key" text;--> statement-breakpoint
ALTER TABLE "calls" ADD COLUMN "recording_ms" integer;--> statement-breakpoint
ALTER TABLE "phone_numbers" ADD COLUMN "mode" text;--> statement-breakpoint
ALTER TABLE "phone_numbers" ADD COLUMN "overrides" jsonb DEFAULT '{}'::jsonb NOT NULL;