// DELETE /api/v1/calls/{id}: an ended call goes with its transcript, events, analysis, webhook events (deliveries
// and attempts) and its recording in storage; the usage ledger keeps its rows. A live call is refused (409), another
// tenant's call is 404 and deletes nothing.
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { beforeAll, describe, expect, it } from 'vitest';
import { callAnalyses, callEvents, callTranscripts, calls, usageRecords, webhookDeliveries, webhookEvents } from '../src/db/schema.js';
import { recordingKey } from '../src/storage/recording-store.js';
import { call, type Session, twoTenants, useTestApp } from './helpers.js';

// No delivery worker: the deliveries stay pending, as a backlog would.
const t = useTestApp({ WEBHOOK_DELIVERY_CONCURRENCY: '0' });
let a: Session;
let b: Session;
beforeAll(async () => {
  ({ a, b } = await twoTenants(t.app));
  for (const s of [a, b]) {
    const res = await call(t.app, 'POST', '/api/v1/webhooks', s.access_token, {
      url: 'http://127.0.0.1:9/hook',
      events: ['*', 'transcript.turn'],
    });
    expect(res.statusCode, res.body).toBe(201);
  }
});

/** An ended call of the tenant with a turn, an analysis queued, a stored recording and a usage row. */
async function endedCall(s: Session) {
  const { calls: svc, recordings, database, analyses } = t.deps;
  const c = await svc.start(s.tenant.id, { direction: 'web' });
  await svc.addTurn(s.tenant.id, c.id, { speaker: 'caller', text: 'My date of birth is the first of May.' });
  const file = path.join(tmpdir(), `${randomUUID()}.wav`);
  await writeFile(file, Buffer.alloc(64, 1));
  const key = recordingKey(s.tenant.id, c.id);
  await recordings.put(key, file, 'audio/wav');
  await svc.setRecording(s.tenant.id, c.id, key, 1000);
  await svc.end(s.tenant.id, c.id, 'completed', 'caller hung up');
  await analyses.rerun(s.tenant.id, c.id);
  await database.db.insert(usageRecords).values({
    tenantId: s.tenant.id,
    callId: c.id,
    component: 'telephony',
    provider: 'browser',
    unit: 'seconds',
    quantity: 1,
    unitPriceUsd: 0,
    costUsd: 0,
    billedTo: 'platform',
  });
  return { id: c.id, key };
}

async function rowsOf(callId: string) {
  const db = t.deps.database.db;
  const n = async (q: Promise<unknown[]>) => (await q).length;
  return {
    calls: await n(db.select().from(calls).where(eq(calls.id, callId))),
    turns: await n(db.select().from(callTranscripts).where(eq(callTranscripts.callId, callId))),
    events: await n(db.select().from(callEvents).where(eq(callEvents.callId, callId))),
    analyses: await n(db.select().from(callAnalyses).where(eq(callAnalyses.callId, callId))),
    webhookEvents: await n(db.select().from(webhookEvents).where(eq(webhookEvents.callId, callId))),
    deliveries: await n(db.select().from(webhookDeliveries).where(eq(webhookDeliveries.callId, callId))),
    usage: await n(db.select().from(usageRecords).where(eq(usageRecords.callId, callId))),
  };
}

describe('DELETE /api/v1/calls/{id}', () => {
  it('deletes the call, its transcript, events, analysis, webhook events and recording; keeps the usage', async () => {
    const c = await endedCall(a);
    const before = await rowsOf(c.id);
    expect(before).toMatchObject({ calls: 1, turns: 1, analyses: 1, usage: 1 });
    expect(before.events).toBeGreaterThan(0);
    // call.started, transcript.turn, recording.ready, call.ended (call.analyzed once the analysis ran): each pending
    // for the endpoint.
    expect(before.webhookEvents).toBeGreaterThanOrEqual(4);
    expect(before.deliveries).toBe(before.webhookEvents);
    expect(await t.deps.recordings.get(c.key)).not.toBeNull();

    const res = await call(t.app, 'DELETE', `/api/v1/calls/${c.id}`, a.access_token);
    expect(res.statusCode, res.body).toBe(204);
    expect(await rowsOf(c.id)).toEqual({ calls: 0, turns: 0, events: 0, analyses: 0, webhookEvents: 0, deliveries: 0, usage: 1 });
    expect(await t.deps.recordings.get(c.key)).toBeNull();
    for (const url of [`/api/v1/calls/${c.id}`, `/api/v1/calls/${c.id}/transcript`, `/api/v1/calls/${c.id}/recording`])
      expect((await call(t.app, 'GET', url, a.access_token)).statusCode).toBe(404);
    expect((await call(t.app, 'DELETE', `/api/v1/calls/${c.id}`, a.access_token)).statusCode).toBe(404);
  });

  it('another tenant’s call is 404 and nothing of it is deleted', async () => {
    const c = await endedCall(b);
    const before = await rowsOf(c.id);
    const res = await call(t.app, 'DELETE', `/api/v1/calls/${c.id}`, a.access_token);
    expect([res.statusCode, res.json().error.code]).toEqual([404, 'not_found']);
    expect(await rowsOf(c.id)).toEqual(before);
    expect(await t.deps.recordings.get(c.key)).not.toBeNull();
  });

  it('refuses a live call (409 call_active) and keeps it', async () => {
    const live = await t.deps.calls.start(a.tenant.id, { direction: 'web' });
    const res = await call(t.app, 'DELETE', `/api/v1/calls/${live.id}`, a.access_token);
    expect([res.statusCode, res.json().error.code]).toEqual([409, 'call_active']);
    expect((await rowsOf(live.id)).calls).toBe(1);
    await t.deps.calls.end(a.tenant.id, live.id, 'completed', 'test');
    expect((await call(t.app, 'DELETE', `/api/v1/calls/${live.id}`, a.access_token)).statusCode).toBe(204);
  });

  it('leaves the other calls’ webhook events alone', async () => {
    const keep = await endedCall(a);
    const gone = await endedCall(a);
    const before = await rowsOf(keep.id);
    expect((await call(t.app, 'DELETE', `/api/v1/calls/${gone.id}`, a.access_token)).statusCode).toBe(204);
    expect(await rowsOf(keep.id)).toEqual(before);
  });
});
