// Deleting calls and recordings: one call through the API (DELETE /api/v1/calls/{id}), and the tenant's retention
// in bounded batches (services/retention.ts). What goes with a call: its row, transcript turns, audit events and
// analysis (foreign keys, on delete cascade), its webhook events with their deliveries and attempts, and its
// recording in storage. What stays: the usage ledger's rows (the usage happened and was billed; they keep the call
// id, and no content). The recording file is deleted first and the rows after: a storage failure leaves everything
// as it was (the request, or the next retention run, tries again), never rows gone with a file left behind.
import { and, eq, inArray, isNotNull, lt } from 'drizzle-orm';
import type { FastifyBaseLogger } from 'fastify';
import type { Db } from '../db/client.js';
import { callEvents, calls, webhookEvents } from '../db/schema.js';
import { AppError, notFound } from '../lib/errors.js';
import type { RecordingStore } from '../storage/recording-store.js';

export class CallDeletion {
  constructor(
    private readonly db: Db,
    private readonly recordings: RecordingStore,
    private readonly log: FastifyBaseLogger,
  ) {}

  /**
   * Deletes an ended call with everything it left (above). Another tenant's call, or none: 404. A live call: 409
   * `call_active` (hang it up first; a chat session ends by itself after its idle timeout).
   */
  async delete(tenantId: string, callId: string): Promise<void> {
    const [call] = await this.db
      .select({ endedAt: calls.endedAt, direction: calls.direction, recordingKey: calls.recordingKey })
      .from(calls)
      .where(and(eq(calls.tenantId, tenantId), eq(calls.id, callId)));
    if (!call) throw notFound('Call');
    if (!call.endedAt) throw liveCall(call.direction);
    if (call.recordingKey) await this.recordings.delete(call.recordingKey);
    const deleted = await this.deleteRows(tenantId, [callId]);
    // Only a call that ended can be deleted, and an ended call does not come back to life: this is a race with a
    // second DELETE, which has deleted it.
    if (!deleted) throw notFound('Call');
  }

  /**
   * Retention: deletes up to `limit` of the tenant's ended calls made before `before`, recordings first. Returns
   * how many were deleted (fewer than `limit`: none are left).
   */
  async deleteCallsBefore(tenantId: string, before: Date, limit: number): Promise<number> {
    const rows = await this.db
      .select({ id: calls.id, recordingKey: calls.recordingKey })
      .from(calls)
      .where(and(eq(calls.tenantId, tenantId), lt(calls.createdAt, before), isNotNull(calls.endedAt)))
      .orderBy(calls.createdAt)
      .limit(limit);
    if (!rows.length) return 0;
    for (const r of rows) if (r.recordingKey) await this.recordings.delete(r.recordingKey);
    await this.deleteRows(
      tenantId,
      rows.map((r) => r.id),
    );
    return rows.length;
  }

  /**
   * Retention: deletes up to `limit` recordings of the tenant's ended calls made before `before`; the calls stay,
   * without a recording, with a `recording.deleted` audit event. Returns how many were deleted.
   */
  async deleteRecordingsBefore(tenantId: string, before: Date, limit: number): Promise<number> {
    const rows = await this.db
      .select({ id: calls.id, recordingKey: calls.recordingKey })
      .from(calls)
      .where(and(eq(calls.tenantId, tenantId), lt(calls.createdAt, before), isNotNull(calls.endedAt), isNotNull(calls.recordingKey)))
      .orderBy(calls.createdAt)
      .limit(limit);
    for (const r of rows) {
      await this.recordings.delete(r.recordingKey!);
      await this.db.transaction(async (tx) => {
        // Only if it still points at the file just deleted (a recording stored meanwhile is another file).
        const cleared = await tx
          .update(calls)
          .set({ recordingKey: null, recordingMs: null })
          .where(and(eq(calls.id, r.id), eq(calls.recordingKey, r.recordingKey!)))
          .returning({ id: calls.id });
        if (cleared.length)
          await tx.insert(callEvents).values({ tenantId, callId: r.id, type: 'recording.deleted', extraData: { reason: 'retention' } });
      });
    }
    if (rows.length) this.log.info({ tenantId, recordings: rows.length }, 'recordings deleted by retention');
    return rows.length;
  }

  /** The rows of ended calls and their webhook events, in one transaction; how many calls were deleted. */
  private async deleteRows(tenantId: string, callIds: string[]): Promise<number> {
    return this.db.transaction(async (tx) => {
      const deleted = await tx
        .delete(calls)
        .where(and(eq(calls.tenantId, tenantId), inArray(calls.id, callIds), isNotNull(calls.endedAt)))
        .returning({ id: calls.id });
      if (!deleted.length) return 0;
      // The call's webhook events go with it, their deliveries and attempts too (on delete cascade): they carry its
      // content (transcript turns, analysis), and a pending one must not reach the tenant's endpoint after the call
      // is gone. A delivery in flight at this moment is sent, and its outcome is not logged (its row is gone).
      await tx.delete(webhookEvents).where(
        and(
          eq(webhookEvents.tenantId, tenantId),
          inArray(
            webhookEvents.callId,
            deleted.map((d) => d.id),
          ),
        ),
      );
      return deleted.length;
    });
  }
}

/** A live call cannot be deleted: what to do about it depends on its kind. */
function liveCall(direction: string): AppError {
  return direction === 'chat'
    ? new AppError('call_active', 'The chat session is live: it ends after its idle timeout (or when the agent says goodbye)')
    : new AppError('call_active', 'The call is live: hang it up first (POST /api/v1/calls/{id}/hangup)');
}
