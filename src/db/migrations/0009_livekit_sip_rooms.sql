ALTER TABLE "calls" ADD COLUMN "livekit_room" text;--> statement-breakpoint
CREATE UNIQUE INDEX "calls_livekit_room_key" ON "calls" USING btree ("livekit_room");