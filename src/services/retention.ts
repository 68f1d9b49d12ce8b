// The tenants' retention (settings `retention`: calls_days, recordings_days): a scheduled job that deletes ended calls
// and recordings older than each tenant's limits. It runs once per period across all instances: the `scheduled_jobs`
// row is taken by one instance when due (a conditional UPDATE: the others see it held), under a lease renewed
// between batches, and its next time is stored, so a restart neither skips nor repeats a run and a crashed holder's
// run is taken over after the lease. Deletions go in bounded batches (CallDeletion), with a yield to the event loop
// between them, so a tenant with a million old calls never holds the loop or one transaction for long.
import { randomUUID } from 'node:crypto';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { and, eq, isNull, lt, or, sql } from 'drizzle-orm';
import type { FastifyBaseLogger } from 'fastify';
import type { Db } from '../db/client.js';
import { scheduledJobs, tenantConfigs } from '../db/schema.js';
import type { CallDeletion } from './call-deletion.js';

export const RETENTION_JOB = 'retention';
const DAY_MS = 86_400_000;

export interface RetentionOptions {
  /** How often a run is due. */
  everyMs: number;
  /** How often each instance checks whether a run is due. */
  pollMs: number;
  /** Calls (or recordings) deleted per batch: one short transaction each. */
  batchSize: number;
  /** A run not renewed for this long is taken over by another instance. */
  leaseMs: number;
  /** The time (tests give their own). */
  now?: () => Date;
}

export const RETENTION_DEFAULTS: RetentionOptions = { everyMs: 3_600_000, pollMs: 60_000, batchSize: 100, leaseMs: 300_000 };

export interface RetentionRun {
  tenants: number;
  calls: number;
  recordings: number;
}

export class RetentionJob {
  readonly workerId = `retention-${randomUUID()}`;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<RetentionRun | null> | undefined;
  private stopped = false;
  private readonly now: () => Date;

  constructor(
    private readonly db: Db,
    private readonly deletion: CallDeletion,
    private readonly log: FastifyBaseLogger,
    private readonly opts: RetentionOptions = RETENTION_DEFAULTS,
  ) {
    this.now = opts.now ?? (() => new Date());
  }

  start(): void {
    this.stopped = false;
    this.timer ??= setInterval(() => void this.tick(), this.opts.pollMs).unref();
    void this.tick();
  }

  /** Stops checking; a run in progress stops after its current batch (the next instance or start picks it up). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  private tick(): Promise<RetentionRun | null> {
    this.running ??= this.runIfDue()
      .catch((err: unknown) => {
        this.log.error({ err }, 'retention run failed');
        return null;
      })
      .finally(() => (this.running = undefined));
    return this.running;
  }

  /**
   * Runs the job if it is due and no other instance holds it; null when it was not this instance's to run. Throws
   * what a run throws (the lease then lapses and the run is tried again).
   */
  async runIfDue(): Promise<RetentionRun | null> {
    if (!(await this.claim())) return null;
    const result = await this.run();
    const now = this.now();
    await this.db
      .update(scheduledJobs)
      .set({
        nextRunAt: new Date(now.getTime() + this.opts.everyMs),
        lastRunAt: now,
        lockedBy: null,
        lockedUntil: null,
        lastResult: { ...result },
      })
      .where(and(eq(scheduledJobs.name, RETENTION_JOB), eq(scheduledJobs.lockedBy, this.workerId)));
    if (result.calls || result.recordings) this.log.info(result, 'retention run deleted old calls and recordings');
    return result;
  }

  /** Takes the job when it is due and not held: one conditional UPDATE, so one instance wins. */
  private async claim(): Promise<boolean> {
    const now = this.now();
    await this.db.insert(scheduledJobs).values({ name: RETENTION_JOB, nextRunAt: now }).onConflictDoNothing();
    const taken = await this.db
      .update(scheduledJobs)
      .set({ lockedBy: this.workerId, lockedUntil: new Date(now.getTime() + this.opts.leaseMs) })
      .where(
        and(
          eq(scheduledJobs.name, RETENTION_JOB),
          sql`${scheduledJobs.nextRunAt} <= ${now.toISOString()}::timestamptz`,
          or(isNull(scheduledJobs.lockedUntil), lt(scheduledJobs.lockedUntil, now)),
        ),
      )
      .returning({ name: scheduledJobs.name });
    return taken.length > 0;
  }

  /** Keeps the lease while working; false when it was lost (taken over after a stall) or the job is stopping. */
  private async renew(): Promise<boolean> {
    if (this.stopped) return false;
    const rows = await this.db
      .update(scheduledJobs)
      .set({ lockedUntil: new Date(this.now().getTime() + this.opts.leaseMs) })
      .where(and(eq(scheduledJobs.name, RETENTION_JOB), eq(scheduledJobs.lockedBy, this.workerId)))
      .returning({ name: scheduledJobs.name });
    return rows.length > 0;
  }

  private async run(): Promise<RetentionRun> {
    const tenants = await this.db
      .select({ tenantId: tenantConfigs.tenantId, retention: tenantConfigs.retention })
      .from(tenantConfigs)
      .where(
        sql`(${tenantConfigs.retention} ->> 'calls_days') is not null or (${tenantConfigs.retention} ->> 'recordings_days') is not null`,
      );
    const result: RetentionRun = { tenants: tenants.length, calls: 0, recordings: 0 };
    const now = this.now().getTime();
    for (const { tenantId, retention } of tenants) {
      const days = (n: unknown) => (typeof n === 'number' && Number.isInteger(n) && n > 0 ? n : null);
      const callsDays = days(retention.calls_days);
      const recordingsDays = days(retention.recordings_days);
      // Calls first: their recordings go with them, so the recordings pass has less to do.
      if (callsDays !== null)
        result.calls += await this.inBatches((n) => this.deletion.deleteCallsBefore(tenantId, new Date(now - callsDays * DAY_MS), n));
      if (recordingsDays !== null)
        result.recordings += await this.inBatches((n) =>
          this.deletion.deleteRecordingsBefore(tenantId, new Date(now - recordingsDays * DAY_MS), n),
        );
    }
    return result;
  }

  /** Batches until one comes back short; the lease renewed and the event loop given a turn between them. */
  private async inBatches(batch: (limit: number) => Promise<number>): Promise<number> {
    let total = 0;
    for (;;) {
      const n = await batch(this.opts.batchSize);
      total += n;
      if (n < this.opts.batchSize) return total;
      await yieldToLoop();
      if (!(await this.renew())) return total;
    }
  }
}
