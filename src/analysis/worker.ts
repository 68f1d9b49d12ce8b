// The analysis worker: fills the queue from calls that ended (CallAnalysisService.enqueueEnded), claims jobs with
// FOR UPDATE SKIP LOCKED under a lease renewed while it works (any number of instances share the queue; a job whose
// worker died is taken over after the lease), runs the tenant's analyzer and stores the result together with its
// `call.analyzed` webhook event in one transaction. Never on a call's path: it reads only what the call stored.
import { randomUUID } from 'node:crypto';
import { and, eq, sql } from 'drizzle-orm';
import type { FastifyBaseLogger } from 'fastify';
import { type Db, rowsOf } from '../db/client.js';
import { callAnalyses } from '../db/schema.js';
import { AppError } from '../lib/errors.js';
import { ProviderError } from '../lib/provider-error.js';
import type { CallAnalysisService } from '../services/call-analyses.js';
import type { CallService } from '../services/calls.js';
import { publishEvent } from '../services/outbox.js';
import { DEFAULT_OUTCOMES } from '../services/settings-schema.js';
import { type AnalysisInput, type AnalysisResult, InvalidAnalysis } from './analyzer.js';
import type { AnalyzerSource } from './analyzers.js';
import { WorkerLoops } from '../lib/worker-loops.js';

export interface AnalysisWorkerOptions {
  /** Jobs run at once by this instance. */
  concurrency: number;
  /** A claim not renewed for this long is considered abandoned and may be taken over. */
  leaseMs: number;
  maxAttempts: number;
  /** How often an idle worker looks for work (and for calls that ended). */
  pollMs: number;
  /** Calls that ended this recently without an analysis are queued (older ones are not back-filled). */
  sweepWindowMs: number;
}

interface Claim {
  call_id: string;
  tenant_id: string;
  attempts: number;
}

/** The service's analysis worker: one job at a time per instance (a cloud model's answer takes seconds; nothing waits for it). */
export const ANALYSIS_WORKER_OPTIONS: AnalysisWorkerOptions = {
  concurrency: 1,
  leaseMs: 120_000,
  maxAttempts: 4,
  pollMs: 2_000,
  sweepWindowMs: 3_600_000,
};

const BACKOFF_BASE_MS = 5_000;
const BACKOFF_MAX_MS = 10 * 60_000;

export class AnalysisWorker {
  readonly workerId = `analysis-${randomUUID()}`;
  private abort = new AbortController();
  private readonly loops: WorkerLoops;

  constructor(
    private readonly db: Db,
    private readonly calls: CallService,
    private readonly analyses: CallAnalysisService,
    private readonly analyzers: AnalyzerSource,
    private readonly log: FastifyBaseLogger,
    private readonly opts: AnalysisWorkerOptions,
  ) {
    this.loops = new WorkerLoops(
      async () => {
        await this.analyses.enqueueEnded(this.opts.sweepWindowMs);
        return this.runOnce();
      },
      (err) => this.log.error({ err }, 'analysis loop error'),
      opts.pollMs,
    );
  }

  /** `reclaimAbandoned`: an embedded database is this process's alone, so a `running` job belongs to a process that is gone. */
  async start(opts: { reclaimAbandoned?: boolean } = {}): Promise<void> {
    if (opts.reclaimAbandoned) {
      await this.db
        .update(callAnalyses)
        .set({ status: 'queued', lockedBy: null, lockedAt: null, nextAttemptAt: new Date() })
        .where(eq(callAnalyses.status, 'running'));
    }
    if (this.loops.isRunning) return;
    this.abort = new AbortController();
    this.loops.start(this.opts.concurrency);
  }

  /** Starts nothing new; a job in flight is aborted and handed back to the queue. */
  async stop(): Promise<void> {
    const stopped = this.loops.stop(); // first, so that the aborted job's error is not logged as a failure
    this.abort.abort();
    await stopped;
  }

  wake(): void {
    this.loops.wake();
  }

  /** Claims and runs one job; false when nothing was due. */
  async runOnce(): Promise<boolean> {
    const claim = await this.claim();
    if (!claim) return false;
    const log = this.log.child({ tenantId: claim.tenant_id, callId: claim.call_id, attempt: claim.attempts });
    const heartbeat = setInterval(() => void this.renew(claim).catch(() => {}), Math.max(250, this.opts.leaseMs / 3));
    try {
      // Claims count attempts: a job whose worker dies every time must not come back forever.
      if (claim.attempts > this.opts.maxAttempts) {
        await this.fail(claim, `Gave up after ${claim.attempts - 1} attempts that never finished`, log);
        return true;
      }
      const result = await this.analyze(claim);
      const stored = await this.complete(claim, result);
      if (stored) log.info({ engine: result.engine, outcome: result.outcome, partial: result.partial }, 'call analysed');
      else log.info('analysis re-queued or taken over meanwhile; result dropped');
    } catch (err) {
      if (this.abort.signal.aborted) await this.release(claim, log);
      else await this.failOrRetry(claim, err, log);
    } finally {
      clearInterval(heartbeat);
    }
    return true;
  }

  private async claim(): Promise<Claim | undefined> {
    const leaseSeconds = this.opts.leaseMs / 1000;
    const rows = rowsOf<Claim>(
      await this.db.execute(sql`
        update call_analyses a
        set status = 'running', locked_by = ${this.workerId}, locked_at = now(), attempts = a.attempts + 1, updated_at = now()
        where a.call_id = (
          select call_id from call_analyses
          where (status = 'queued' and next_attempt_at <= now())
             or (status = 'running' and locked_at < now() - make_interval(secs => ${leaseSeconds}))
          order by next_attempt_at
          limit 1
          for update skip locked)
        returning a.call_id, a.tenant_id, a.attempts`),
    );
    return rows[0];
  }

  private mine(claim: Claim) {
    return and(eq(callAnalyses.callId, claim.call_id), eq(callAnalyses.lockedBy, this.workerId), eq(callAnalyses.status, 'running'));
  }

  private async renew(claim: Claim): Promise<void> {
    await this.db.update(callAnalyses).set({ lockedAt: new Date() }).where(this.mine(claim));
  }

  private async analyze(claim: Claim): Promise<AnalysisResult> {
    const tenantId = claim.tenant_id;
    const call = await this.calls.get(tenantId, claim.call_id);
    // The call was read for this tenant and id just now: not again for its turns and events.
    const [turns, events, tenant] = await Promise.all([
      this.calls.turns(tenantId, call.id),
      this.calls.eventsOf(tenantId, call.id),
      this.analyzers.forTenant(tenantId),
    ]);
    const ended = events.findLast((e) => e.type === 'call.ended');
    const input: AnalysisInput = {
      agentName: call.overrides.agent_name ?? tenant.agentName,
      direction: call.direction,
      status: call.status,
      endReason: typeof ended?.extraData.reason === 'string' ? ended.extraData.reason : null,
      turns: turns.map((t) => ({ speaker: t.speaker, text: t.text })),
      events: events.map((e) => e.type),
      outcomes: tenant.settings.outcomes ?? [...DEFAULT_OUTCOMES],
      rubric: tenant.settings.rubric,
      extractionSchema: tenant.settings.extraction_schema ?? null,
      signal: this.abort.signal,
    };
    return tenant.analyzer.analyze(input);
  }

  /** Stores the result and its webhook event in one transaction, if the claim is still this worker's. */
  private async complete(claim: Claim, result: AnalysisResult): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      const [row] = await tx
        .update(callAnalyses)
        .set({
          status: 'done',
          result: result as unknown as Record<string, unknown>,
          engine: result.engine,
          model: result.model,
          error: null,
          lockedBy: null,
          lockedAt: null,
          completedAt: new Date(),
        })
        .where(this.mine(claim))
        .returning({ callId: callAnalyses.callId });
      if (!row) return false;
      await publishEvent(
        tx,
        claim.tenant_id,
        'call.analyzed',
        {
          call_id: claim.call_id,
          summary: result.summary,
          outcome: result.outcome,
          success: result.success,
          extracted: result.extracted,
          engine: result.engine,
          partial: result.partial,
        },
        { callId: claim.call_id },
      );
      return true;
    });
  }

  /** Transient provider failures come back later (with backoff) until the attempts run out; anything else fails now. */
  private async failOrRetry(claim: Claim, err: unknown, log: FastifyBaseLogger): Promise<void> {
    const retryable = err instanceof ProviderError && err.retryable;
    const reason =
      err instanceof ProviderError
        ? err.publicMessage
        : err instanceof InvalidAnalysis
          ? err.message
          : err instanceof AppError && err.code === 'not_found'
            ? 'The call no longer exists'
            : 'Internal error';
    if (retryable && claim.attempts < this.opts.maxAttempts) {
      const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (claim.attempts - 1)) * (0.5 + Math.random() / 2);
      await this.db
        .update(callAnalyses)
        .set({ status: 'queued', lockedBy: null, lockedAt: null, error: reason, nextAttemptAt: new Date(Date.now() + delay) })
        .where(this.mine(claim));
      log.warn({ err, delayMs: Math.round(delay) }, 'analysis failed; will retry');
      return;
    }
    if (!(err instanceof ProviderError || err instanceof InvalidAnalysis)) log.error({ err }, 'analysis failed');
    await this.fail(claim, reason, log);
  }

  private async fail(claim: Claim, reason: string, log: FastifyBaseLogger): Promise<void> {
    await this.db
      .update(callAnalyses)
      .set({ status: 'failed', lockedBy: null, lockedAt: null, error: reason, completedAt: new Date() })
      .where(this.mine(claim));
    log.warn({ reason }, 'analysis failed');
  }

  /** Shutdown: the job goes back to the queue at once; the interrupted attempt does not count. */
  private async release(claim: Claim, log: FastifyBaseLogger): Promise<void> {
    await this.db
      .update(callAnalyses)
      .set({
        status: 'queued',
        lockedBy: null,
        lockedAt: null,
        attempts: sql`greatest(${callAnalyses.attempts} - 1, 0)`,
        nextAttemptAt: new Date(),
      })
      .where(this.mine(claim))
      .catch((err: unknown) => log.warn({ err }, 'could not release the analysis at shutdown'));
  }
}
