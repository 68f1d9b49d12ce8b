// The webhook events the service publishes into the outbox (webhook_events), each in the transaction of the change that
// causes it: a chat session, a voice call and documents leave exactly the expected events, in order, valid against the
// catalog; a call ends (and publishes call.ended) once however often it is ended; a payload the catalog refuses rolls
// the change back with it; each tenant's events are about its own calls and documents only.
import { setTimeout as sleep } from 'node:timers/promises';
import { and, asc, eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { rowsOf } from '../src/db/client.js';
import { callEvents, calls, callTranscripts, documents, webhookEvents } from '../src/db/schema.js';
import { isWebhookEventType, webhookEventSchemas } from '../src/lib/webhook-events.js';
import { MemoryTransport } from '../src/voice/transports/memory.js';
import { bearer, buildTestApp, call, multipart, type Session, type TestApp, twoTenants, waitFor } from './helpers.js';

let t: TestApp;
let a: Session;
let b: Session;
beforeAll(async () => {
  t = await buildTestApp();
  ({ a, b } = await twoTenants(t.app));
  for (const s of [a, b]) {
    const put = await call(t.app, 'PUT', '/api/v1/settings/tenant', s.access_token, {
      greeting: 'Hello, Sunrise clinic.',
      call: { transfer_number: '+14155550100' },
    });
    expect(put.statusCode, put.body).toBe(200);
  }
});
afterAll(() => t.close());

type Row = typeof webhookEvents.$inferSelect;

/** The tenant's outbox in the order the events were stored. */
async function outbox(tenantId: string, callId?: string): Promise<Row[]> {
  const rows = await t.deps.database.db
    .select()
    .from(webhookEvents)
    .where(and(eq(webhookEvents.tenantId, tenantId), callId ? eq(webhookEvents.callId, callId) : undefined))
    .orderBy(asc(webhookEvents.createdAt));
  for (const r of rows) {
    expect(isWebhookEventType(r.type), r.type).toBe(true);
    if (isWebhookEventType(r.type)) {
      const parsed = webhookEventSchemas[r.type].safeParse(r.data);
      expect(parsed.success, `${r.type}: ${JSON.stringify(parsed.error?.issues)}`).toBe(true);
    }
    if (r.callId) expect((r.data as { call_id?: string }).call_id).toBe(r.callId);
  }
  return rows;
}

const chat = (s: Session, body: object) => call(t.app, 'POST', '/api/v1/chat', s.access_token, body);

describe('a chat session', () => {
  it('publishes call.started, one transcript.turn per stored turn, transfer.started and call.ended, in order', async () => {
    const first = (await chat(a, { message: 'Do you sell eSIM plans for Japan?' })).json();
    const id = first.session_id as string;
    const human = (await chat(a, { session_id: id, message: 'Can I speak to someone please?' })).json();
    expect(human).toMatchObject({ action: { type: 'transfer_call' } });
    const bye = (await chat(a, { session_id: id, message: 'Great, thanks. Goodbye!' })).json();
    expect(bye.ended).toBe(true);

    const events = await outbox(a.tenant.id, id);
    expect(events.map((e) => e.type)).toEqual([
      'call.started',
      'transcript.turn',
      'transcript.turn',
      'transcript.turn',
      'transcript.turn',
      'transcript.turn',
      'transfer.started',
      'transcript.turn',
      'transcript.turn',
      'call.ended',
    ]);
    expect(events[0]!.data).toEqual({ call_id: id, direction: 'chat', status: 'in_progress', from: null, to: null, metadata: {} });
    const transcript = await t.deps.calls.transcript(a.tenant.id, id);
    expect(events.filter((e) => e.type === 'transcript.turn').map((e) => e.data)).toEqual(
      transcript.map((turn) => ({
        call_id: id,
        seq: turn.seq,
        speaker: turn.speaker,
        text: turn.text,
        interrupted: turn.interrupted,
        truncated: turn.truncated,
        start_ms: turn.startMs,
        end_ms: turn.endMs,
        citations: turn.citations.map((c) => c.chunk_id),
        citation_details: turn.citations,
      })),
    );
    expect(events.find((e) => e.type === 'transfer.started')!.data).toMatchObject({ call_id: id, to: '+14155550100' });
    const row = await t.deps.calls.get(a.tenant.id, id);
    expect(events.at(-1)!.data).toEqual({
      call_id: id,
      direction: 'chat',
      status: 'completed',
      reason: expect.any(String),
      from: null,
      to: null,
      started_at: row.startedAt!.toISOString(),
      answered_at: row.answeredAt!.toISOString(),
      ended_at: row.endedAt!.toISOString(),
      duration_ms: row.durationMs,
      turn_count: transcript.length,
      metrics: row.metrics,
      recording_available: false,
      metadata: {},
      // The local engines' usage, at price 0 (test/usage.test.ts checks a priced call's).
      cost: (await t.deps.usage.callCost(a.tenant.id, id)).cost,
    });

    // Ended again (a late end from anywhere, the sweeper): nothing changes and nothing more is published.
    expect(await t.deps.calls.end(a.tenant.id, id, 'failed', 'late end')).toBeUndefined();
    await t.deps.calls.endStale({ connectTimeoutMs: 0, lostAfterMs: 0, chatIdleMs: 0 }, new Date(Date.now() + 60_000));
    expect((await outbox(a.tenant.id, id)).filter((e) => e.type === 'call.ended')).toHaveLength(1);
  });

  it('ended by the sweeper (idle): call.ended once, with the reason and why', async () => {
    const id = (await chat(b, { message: 'Hello?' })).json().session_id as string;
    const ended = await t.deps.calls.endStale({ connectTimeoutMs: 1e9, lostAfterMs: 1e9, chatIdleMs: 0 }, new Date(Date.now() + 60_000));
    expect(ended).toContainEqual({ id, tenantId: b.tenant.id, reason: 'idle' });
    await t.deps.calls.endStale({ connectTimeoutMs: 1e9, lostAfterMs: 1e9, chatIdleMs: 0 }, new Date(Date.now() + 120_000));
    const events = await outbox(b.tenant.id, id);
    expect(events.map((e) => e.type)).toEqual(['call.started', 'transcript.turn', 'transcript.turn', 'transcript.turn', 'call.ended']);
    expect(events.at(-1)!.data).toMatchObject({
      status: 'completed',
      reason: 'idle',
      detail: 'the chat session was idle',
      turn_count: 3,
      recording_available: false,
    });
  });

  it('a session whose first message fails leaves no events behind', async () => {
    const before = (await outbox(b.tenant.id)).length;
    // The greeting's write fails after the session was made (and its call.started stored): both go.
    const spy = vi.spyOn(t.deps.calls, 'addTurn').mockRejectedValueOnce(new Error('disk full'));
    try {
      expect((await chat(b, { message: 'When do you open?' })).statusCode).toBe(500);
    } finally {
      spy.mockRestore();
    }
    expect(await outbox(b.tenant.id)).toHaveLength(before);
  });
});

describe('a voice call', () => {
  it('publishes call.started, its turns, recording.ready and call.ended (recording available), call.ended once', async () => {
    const transport = new MemoryTransport(16000, 0);
    const row = await t.deps.calls.start(a.tenant.id, { direction: 'web' });
    const outcome = t.deps.voice.run(a.tenant.id, row.id, transport);
    await waitFor('the greeting', async () => ((await t.deps.calls.transcript(a.tenant.id, row.id)).length ? true : undefined));
    await sleep(100);
    transport.hangup();
    expect(await outcome).toMatchObject({ status: 'completed' });

    const events = await outbox(a.tenant.id, row.id);
    const turns = await t.deps.calls.transcript(a.tenant.id, row.id);
    expect(events.map((e) => e.type)).toEqual(['call.started', ...turns.map(() => 'transcript.turn'), 'recording.ready', 'call.ended']);
    const ended = await t.deps.calls.get(a.tenant.id, row.id);
    expect(events.find((e) => e.type === 'recording.ready')!.data).toEqual({ call_id: row.id, duration_ms: ended.recordingMs });
    expect(events.at(-1)!.data).toMatchObject({
      call_id: row.id,
      direction: 'web',
      status: 'completed',
      reason: 'caller hung up',
      turn_count: turns.length,
      duration_ms: ended.durationMs,
      recording_available: true,
    });

    expect(await t.deps.calls.end(a.tenant.id, row.id, 'failed', 'twice')).toBeUndefined();
    expect((await outbox(a.tenant.id, row.id)).filter((e) => e.type === 'call.ended')).toHaveLength(1);
  }, 60_000);

  it('maps the transfer events of the audit trail onto transfer.started / completed / failed; other events publish nothing', async () => {
    const row = await t.deps.calls.start(a.tenant.id, { direction: 'web' });
    await t.deps.calls.event(a.tenant.id, row.id, 'transfer.requested', { to: '+14155550100', reason: 'asked for a person' });
    await t.deps.calls.event(a.tenant.id, row.id, 'dtmf.received', { digit: '1' });
    await t.deps.calls.event(a.tenant.id, row.id, 'transfer.connected', { to: '+14155550100' });
    await t.deps.calls.event(a.tenant.id, row.id, 'transfer.failed', { to: '+14155550101', error: 'twilio: 400' });
    const events = await outbox(a.tenant.id, row.id);
    expect(events.map((e) => [e.type, e.data])).toEqual([
      ['call.started', { call_id: row.id, direction: 'web', status: 'in_progress', from: null, to: null, metadata: {} }],
      ['transfer.started', { call_id: row.id, to: '+14155550100', reason: 'asked for a person' }],
      ['transfer.completed', { call_id: row.id, to: '+14155550100' }],
      ['transfer.failed', { call_id: row.id, to: '+14155550101', error: 'twilio: 400' }],
    ]);
  });
});

describe('one transaction', () => {
  it('a call.ended the catalog refuses leaves the call not ended, with no audit entry and no event', async () => {
    // A direction the catalog does not know (a row written by something else): the payload fails inside end().
    const [row] = await t.deps.database.db
      .insert(calls)
      .values({ tenantId: a.tenant.id, direction: 'fax' as never, status: 'in_progress', startedAt: new Date() })
      .returning();
    await expect(t.deps.calls.end(a.tenant.id, row!.id, 'completed', 'done')).rejects.toThrow();
    const after = await t.deps.calls.get(a.tenant.id, row!.id);
    expect([after.endedAt, after.status]).toEqual([null, 'in_progress']);
    expect(await t.deps.database.db.select().from(callEvents).where(eq(callEvents.callId, row!.id))).toEqual([]);
    expect(await outbox(a.tenant.id, row!.id)).toEqual([]);
    // The sweeper must not meet it later in this file.
    await t.deps.database.db.delete(calls).where(eq(calls.id, row!.id));
  });

  it('a turn whose event the catalog refuses is not stored; the sweeper’s end rolls back the same way', async () => {
    const row = await t.deps.calls.start(b.tenant.id, { direction: 'web' });
    await expect(t.deps.calls.addTurn(b.tenant.id, row.id, { speaker: 'narrator' as never, text: 'hi' })).rejects.toThrow();
    expect(await t.deps.database.db.select().from(callTranscripts).where(eq(callTranscripts.callId, row.id))).toEqual([]);

    // A stale voice call with a direction the catalog refuses: the sweep fails as a whole, nothing is ended.
    const [odd] = await t.deps.database.db
      .insert(calls)
      .values({ tenantId: b.tenant.id, direction: 'fax' as never, status: 'in_progress' })
      .returning();
    await expect(
      t.deps.calls.endStale({ connectTimeoutMs: 0, lostAfterMs: 0, chatIdleMs: 1e9 }, new Date(Date.now() + 60_000)),
    ).rejects.toThrow();
    expect((await t.deps.calls.get(b.tenant.id, odd!.id)).endedAt).toBeNull();
    expect((await t.deps.calls.get(b.tenant.id, row.id)).endedAt).toBeNull();
    expect((await outbox(b.tenant.id)).filter((e) => e.type === 'call.ended' && e.callId === row.id)).toEqual([]);
    // Once the odd row is gone, the sweep ends the stale call, with its event.
    await t.deps.database.db.delete(calls).where(eq(calls.id, odd!.id));
    await t.deps.calls.endStale({ connectTimeoutMs: 0, lostAfterMs: 0, chatIdleMs: 1e9 }, new Date(Date.now() + 60_000));
    expect((await outbox(b.tenant.id, row.id)).map((e) => [e.type, (e.data as { reason?: string }).reason])).toEqual([
      ['call.started', undefined],
      ['call.ended', 'no_media'],
    ]);
  });
});

describe('documents', () => {
  const upload = (s: Session, body: object) => call(t.app, 'POST', '/api/v1/documents', s.access_token, body);
  const settled = (s: Session, id: string) =>
    waitFor('document settled', async () => {
      const d = (await call(t.app, 'GET', `/api/v1/documents/${id}`, s.access_token)).json();
      return d.status === 'ready' || d.status === 'failed' ? d : undefined;
    });

  it('publishes document.ready when a version goes live, and document.failed once when it fails', async () => {
    const before = await outbox(b.tenant.id);
    const doc = (await upload(b, { title: 'Hours', content: '# Opening hours\n\nWe open at nine on weekdays.' })).json();
    const ready = await settled(b, doc.id);
    expect(ready.status).toBe('ready');
    const replaced = await call(t.app, 'PUT', `/api/v1/documents/${doc.id}`, b.access_token, {
      content: '# Opening hours\n\nWe open at eight on weekdays.',
    });
    expect(replaced.statusCode, replaced.body).toBeLessThan(300);
    await waitFor('version 2 live', async () => {
      const [d] = await t.deps.database.db.select().from(documents).where(eq(documents.id, doc.id));
      return d!.liveVersion === 2 && d!.status === 'ready' ? true : undefined;
    });
    // A file only extraction finds empty: it fails, not retried.
    const form = multipart([{ name: 'file', value: '<html><body><script>only();</script></body></html>', filename: 'empty.html' }]);
    const bad = await t.app.inject({
      method: 'POST',
      url: '/api/v1/documents',
      headers: { ...form.headers, ...bearer(b.access_token) },
      payload: form.payload,
    });
    expect(bad.statusCode, bad.body).toBe(202);
    const failed = await settled(b, bad.json().id);
    expect(failed.status).toBe('failed');

    const events = (await outbox(b.tenant.id)).slice(before.length).filter((e) => e.type.startsWith('document.'));
    const [latest] = await t.deps.database.db.select().from(documents).where(eq(documents.id, doc.id));
    expect(events.map((e) => [e.type, e.callId])).toEqual([
      ['document.ready', null],
      ['document.ready', null],
      ['document.failed', null],
    ]);
    expect(events[0]!.data).toMatchObject({ document_id: doc.id, name: 'Hours', version: 1, chunks: ready.chunk_count });
    expect(events[1]!.data).toMatchObject({
      document_id: doc.id,
      version: 2,
      chunks: latest!.chunkCount,
      embedding_model: latest!.embeddingModel,
    });
    expect(events[2]!.data).toMatchObject({ document_id: failed.id, error: failed.error, version: 1, attempts: 1, filename: 'empty.html' });
    expect((events[2]!.data as { error: string }).error).toMatch(/^empty_document: /);
  });
});

describe('tenants', () => {
  it('each tenant’s events are about its own calls and documents only', async () => {
    for (const [s, other] of [
      [a, b],
      [b, a],
    ] as const) {
      const rows = await outbox(s.tenant.id);
      expect(rows.length).toBeGreaterThan(0);
      for (const r of rows) {
        const data = r.data as { call_id?: string; document_id?: string };
        if (r.callId) {
          const [owner] = await t.deps.database.db.select({ tenantId: calls.tenantId }).from(calls).where(eq(calls.id, r.callId));
          expect(owner?.tenantId, r.type).toBe(s.tenant.id);
        }
        if (data.document_id) {
          const [owner] = await t.deps.database.db
            .select({ tenantId: documents.tenantId })
            .from(documents)
            .where(eq(documents.id, data.document_id));
          expect(owner?.tenantId, r.type).toBe(s.tenant.id);
        }
      }
      // Nothing of the other tenant is in this tenant's outbox.
      const mentions = rowsOf<{ n: number }>(
        await t.deps.database.db.execute(
          sql`select count(*)::int as n from webhook_events w join calls c on c.id = w.call_id
              where w.tenant_id = ${s.tenant.id} and c.tenant_id = ${other.tenant.id}`,
        ),
      );
      expect(mentions[0]!.n).toBe(0);
    }
  });
});
