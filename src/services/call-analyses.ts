// Post-call analyses as records: the job row of each call's analysis (queued, running, done, failed) with its result.
// The worker (analysis/worker.ts) claims and completes them; these are the queries around it.
import { and, count, eq, inArray, sql } from 'drizzle-orm';
import { type Db, rowsOf } from '../db/client.js';
import { callAnalyses, calls } from '../db/schema.js';
import { AppError, notFound } from '../lib/errors.js';
import type { Executor } from './outbox.js';

export type CallAnalysis = typeof callAnalyses.$inferSelect;

/**
 * Queues the analysis of an ended call, once: a call already queued or analysed keeps its row. Takes the caller's
 * executor, so it may ride in the transaction that ends the call.
 */
export async function enqueueAnalysis(db: Executor, tenantId: string, callId: string): Promise<void> {
  await db.insert(callAnalyses).values({ tenantId, callId }).onConflictDoNothing({ target: callAnalyses.callId });
}

export class CallAnalysisService {
  constructor(
    private readonly db: Db,
    /** Told when a job was queued, so an idle worker starts at once. */
    private readonly onQueued: () => void = () => {},
  ) {}

  /** The call's analysis, or null when none was queued; 404 when the call is not the tenant's. */
  async get(tenantId: string, callId: string): Promise<CallAnalysis | null> {
    const [row] = await this.db
      .select({ call: calls.id, analysis: callAnalyses })
      .from(calls)
      .leftJoin(callAnalyses, eq(callAnalyses.callId, calls.id))
      .where(and(eq(calls.tenantId, tenantId), eq(calls.id, callId)));
    if (!row) throw notFound('Call');
    return row.analysis;
  }

  /**
   * Runs the analysis again (after the tenant changed its rubric or schema): the row goes back to the queue with its
   * attempts reset; a run in flight loses its claim and its result is not stored. 409 while the call is live.
   */
  async rerun(tenantId: string, callId: string): Promise<CallAnalysis> {
    const [call] = await this.db
      .select({ endedAt: calls.endedAt })
      .from(calls)
      .where(and(eq(calls.tenantId, tenantId), eq(calls.id, callId)));
    if (!call) throw notFound('Call');
    if (!call.endedAt) throw new AppError('conflict', 'The call has not ended; it is analysed when it ends');
    const queued = { status: 'queued' as const, attempts: 0, lockedBy: null, lockedAt: null, nextAttemptAt: new Date(), error: null };
    const [row] = await this.db
      .insert(callAnalyses)
      .values({ tenantId, callId, ...queued })
      .onConflictDoUpdate({ target: callAnalyses.callId, set: { ...queued, updatedAt: new Date() } })
      .returning();
    this.onQueued();
    return row!;
  }

  /** Jobs waiting or running, all tenants (the operator's analysis queue depth). */
  async queueDepth(): Promise<number> {
    const [row] = await this.db
      .select({ n: count() })
      .from(callAnalyses)
      .where(inArray(callAnalyses.status, ['queued', 'running']));
    return row?.n ?? 0;
  }

  /**
   * Queues every call that ended in the last `windowMs` without an analysis, of tenants with analysis enabled: the
   * queue is filled from the calls themselves, so no path that ends a call can forget it and a crash between the
   * end and the queue loses nothing. Returns how many were queued.
   */
  async enqueueEnded(windowMs: number): Promise<number> {
    const rows = await this.db.execute(sql`
      insert into call_analyses (call_id, tenant_id)
      select c.id, c.tenant_id from calls c
      join tenant_configs tc on tc.tenant_id = c.tenant_id
      where c.ended_at is not null
        and c.ended_at > now() - make_interval(secs => ${windowMs / 1000})
        and (tc.analysis ->> 'enabled') = 'true'
        and not exists (select 1 from call_analyses a where a.call_id = c.id)
      on conflict (call_id) do nothing
      returning call_id`);
    const n = rowsOf(rows).length;
    if (n) this.onQueued();
    return n;
  }
}
