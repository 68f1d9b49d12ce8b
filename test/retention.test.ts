// Retention (issue 22): a tenant's `retention` setting deletes ended calls (with their recordings) and recordings
// older than N days; the job runs once across instances (two instances at once: one runs), keeps its schedule in the
// database (a restarted instance does not run it again before it is due), is taken over when its holder stopped
// (lease), and deletes in bounded batches. Time is each job's clock: nothing waits.
import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { eq } from 'drizzle-orm';
import { beforeAll, describe, expect, it } from 'vitest';
import { calls as callsTable, scheduledJobs } from '../src/db/schema.js';
import { RETENTION_JOB, RetentionJob } from '../src/services/retention.js';
import { recordingKey } from '../src/storage/recording-store.js';
import { call, type Session, twoTenants, useTestApp } from './helpers.js';

const t = useTestApp();
let a: Session;
let b: Session;
const DAY = 86_400_000;
const T0 = Date.now();

beforeAll(async () => {
  ({ a, b } = await twoTenants(t.app));
  // The app's own job stays out of the way: the test's jobs run when it says, at the time it gives.
  await t.deps.retention.stop();
  // Its first run (at start-up) scheduled the next one an hour from then: start from a clean schedule.
  await t.deps.database.db.delete(scheduledJobs).where(eq(scheduledJobs.name, RETENTION_JOB));
});

/** A call of the tenant made `daysAgo` days before T0, ended unless `live`, with a stored recording. */
async function oldCall(s: Session, daysAgo: number, opts: { live?: boolean } = {}) {
  const c = await t.deps.calls.start(s.tenant.id, { direction: 'web' });
  const file = path.join(tmpdir(), `${randomUUID()}.wav`);
  await writeFile(file, Buffer.alloc(64, 1));
  const key = recordingKey(s.tenant.id, c.id);
  await t.deps.recordings.put(key, file, 'audio/wav');
  await t.deps.calls.setRecording(s.tenant.id, c.id, key, 1000);
  if (!opts.live) await t.deps.calls.end(s.tenant.id, c.id, 'completed', 'test');
  await t.deps.database.db
    .update(callsTable)
    .set({ createdAt: new Date(T0 - daysAgo * DAY) })
    .where(eq(callsTable.id, c.id));
  return { id: c.id, key };
}

const job = (at: () => number, batchSize = 100) =>
  new RetentionJob(t.deps.database.db, t.deps.callDeletion, t.deps.log, {
    everyMs: 3_600_000,
    pollMs: 60_000,
    batchSize,
    leaseMs: 300_000,
    now: () => new Date(at()),
  });
const row = async (id: string) => (await t.deps.database.db.select().from(callsTable).where(eq(callsTable.id, id)))[0];
const stored = async (key: string) => (await t.deps.recordings.get(key)) !== null;

describe('retention', () => {
  it('is a tenant setting: two numbers of days, null keeps forever, bounded', async () => {
    const get = await call(t.app, 'GET', '/api/v1/settings/tenant', a.access_token);
    expect(get.json().retention).toEqual({ calls_days: null, recordings_days: null });
    for (const bad of [{ calls_days: 0 }, { recordings_days: 1.5 }, { calls_days: 100_000 }, { keep: 1 }]) {
      const res = await call(t.app, 'PUT', '/api/v1/settings/tenant', a.access_token, { retention: bad });
      expect(res.statusCode, JSON.stringify(bad)).toBe(422);
    }
    const put = await call(t.app, 'PUT', '/api/v1/settings/tenant', a.access_token, { retention: { calls_days: 30, recordings_days: 7 } });
    expect([put.statusCode, put.json().retention]).toEqual([200, { calls_days: 30, recordings_days: 7 }]);
  });

  it('deletes old calls with their recordings and old recordings, once across two instances; others are kept', async () => {
    const old = await oldCall(a, 40);
    const liveOld = await oldCall(a, 40, { live: true });
    const mid = await oldCall(a, 10);
    const recent = await oldCall(a, 1);
    const otherTenant = await oldCall(b, 400);

    let now = T0;
    const [one, two] = [job(() => now), job(() => now)];
    const runs = await Promise.all([one.runIfDue(), two.runIfDue()]);
    expect(runs.filter((r) => r !== null)).toEqual([{ tenants: 1, calls: 1, recordings: 1 }]);

    expect(await row(old.id)).toBeUndefined();
    expect(await stored(old.key)).toBe(false);
    // A live call is never deleted, however old.
    expect(await row(liveOld.id)).toBeDefined();
    // Older than recordings_days: the recording goes, the call stays and says so.
    expect(await row(mid.id)).toMatchObject({ recordingKey: null, recordingMs: null });
    expect(await stored(mid.key)).toBe(false);
    expect((await t.deps.calls.events(a.tenant.id, mid.id)).map((e) => e.type)).toContain('recording.deleted');
    const view = (await call(t.app, 'GET', `/api/v1/calls/${mid.id}`, a.access_token)).json();
    expect(view.recording_available).toBe(false);
    expect(await row(recent.id)).toMatchObject({ recordingKey: recent.key });
    expect(await stored(recent.key)).toBe(true);
    // A tenant without retention keeps everything.
    expect(await row(otherTenant.id)).toMatchObject({ recordingKey: otherTenant.key });

    // Not due again until the period has passed, also for an instance started after (the schedule is stored).
    now = T0 + 30 * 60_000;
    expect(await job(() => now).runIfDue()).toBeNull();
    now = T0 + 61 * 60_000;
    expect(await job(() => now).runIfDue()).toEqual({ tenants: 1, calls: 0, recordings: 0 });
  });

  it('a run whose holder stopped is taken over after its lease; a held one is not', async () => {
    const db = t.deps.database.db;
    const at = T0 + 10 * 3_600_000;
    await db
      .update(scheduledJobs)
      .set({ nextRunAt: new Date(at - 1000), lockedBy: 'a-stopped-instance', lockedUntil: new Date(at + 60_000) })
      .where(eq(scheduledJobs.name, RETENTION_JOB));
    expect(await job(() => at).runIfDue()).toBeNull();
    expect(await job(() => at + 61_000).runIfDue()).not.toBeNull();
    const [state] = await db.select().from(scheduledJobs).where(eq(scheduledJobs.name, RETENTION_JOB));
    expect(state).toMatchObject({ lockedBy: null, lockedUntil: null, nextRunAt: new Date(at + 61_000 + 3_600_000) });
  });

  it('deletes in bounded batches until none is left', async () => {
    const many = await Promise.all(Array.from({ length: 5 }, () => oldCall(a, 50)));
    const at = T0 + 100 * 3_600_000;
    const spy = t.deps.callDeletion.deleteCallsBefore.bind(t.deps.callDeletion);
    const batches: number[] = [];
    t.deps.callDeletion.deleteCallsBefore = async (tenantId, before, limit) => {
      const n = await spy(tenantId, before, limit);
      batches.push(n);
      return n;
    };
    try {
      expect(await job(() => at, 2).runIfDue()).toMatchObject({ calls: 5 });
    } finally {
      t.deps.callDeletion.deleteCallsBefore = spy;
    }
    expect(batches).toEqual([2, 2, 1]);
    for (const c of many) expect(await row(c.id)).toBeUndefined();
  });
});
