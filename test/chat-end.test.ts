// Chat sessions end (issue 22): hang-up and transfer of a chat say what it is (409 not_a_phone_call), not 404; a
// session left without a message for CHAT_IDLE_TIMEOUT_MINUTES is ended by the sweeper (completed, `idle`) with its
// call.ended event and its analysis, like any call. Time is the sweep's argument: nothing waits.
import { and, eq } from 'drizzle-orm';
import { beforeAll, describe, expect, it } from 'vitest';
import { webhookEvents } from '../src/db/schema.js';
import { call, type Session, twoTenants, useTestApp } from './helpers.js';

const t = useTestApp({ CHAT_IDLE_TIMEOUT_MINUTES: '15' });
let a: Session;
let b: Session;
beforeAll(async () => {
  ({ a, b } = await twoTenants(t.app));
  // Sweeps run when the test says, at the time it gives.
  await t.deps.sweeper.stop();
  await t.deps.settings.putTenant(a.tenant.id, { analysis: { enabled: true } });
});

describe('chat sessions', () => {
  it('hang-up and transfer of a chat answer 409 not_a_phone_call; another tenant’s chat is 404', async () => {
    const chat = await t.deps.calls.start(a.tenant.id, { direction: 'chat' });
    for (const [path, body] of [
      ['hangup', undefined],
      ['transfer', { to: '+14155550100' }],
    ] as const) {
      const res = await call(t.app, 'POST', `/api/v1/calls/${chat.id}/${path}`, a.access_token, body);
      expect([res.statusCode, res.json().error.code], path).toEqual([409, 'not_a_phone_call']);
      expect((await call(t.app, 'POST', `/api/v1/calls/${chat.id}/${path}`, b.access_token, body)).statusCode).toBe(404);
    }
    expect((await t.deps.calls.get(a.tenant.id, chat.id)).endedAt).toBeNull();
  });

  it('a chat idle for the timeout ends completed (idle) with call.ended and its analysis; an active one stays', async () => {
    const idle = await t.deps.calls.start(a.tenant.id, { direction: 'chat' });
    const minutes = (m: number) => new Date(Date.now() + m * 60_000);
    await t.deps.sweeper.sweep(minutes(14));
    expect((await t.deps.calls.get(a.tenant.id, idle.id)).status).toBe('in_progress');
    // A message at minute 10 keeps the other one going.
    const active = await t.deps.calls.start(a.tenant.id, { direction: 'chat' });
    await t.deps.calls.touch([active.id], minutes(10));
    await t.deps.sweeper.sweep(minutes(16));
    const ended = (await call(t.app, 'GET', `/api/v1/calls/${idle.id}`, a.access_token)).json();
    expect(ended).toMatchObject({ status: 'completed', ended_reason: 'idle', channel: 'chat' });
    expect((await t.deps.calls.get(a.tenant.id, active.id)).status).toBe('in_progress');
    const published = await t.deps.database.db
      .select({ data: webhookEvents.data })
      .from(webhookEvents)
      .where(and(eq(webhookEvents.callId, idle.id), eq(webhookEvents.type, 'call.ended')));
    expect(published.map((p) => p.data)).toEqual([expect.objectContaining({ status: 'completed', reason: 'idle' })]);
    // Queued by the analysis worker's scan of ended calls, as for any call.
    await t.deps.analyses.enqueueEnded(3_600_000);
    expect(await t.deps.analyses.get(a.tenant.id, idle.id)).not.toBeNull();
  });
});
