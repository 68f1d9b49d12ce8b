// GET /api/v1/calls: filters (status, direction, channel, dates, phone number, transcript words), cursor pages,
// and the fields each call carries (channel, ended_reason, phone_number_id, recording); another tenant's calls are
// never listed nor found.
import { eq } from 'drizzle-orm';
import { beforeAll, describe, expect, it } from 'vitest';
import { calls as callsTable } from '../src/db/schema.js';
import { call, type Session, twoTenants, useTestApp } from './helpers.js';

const t = useTestApp();
let a: Session;
let b: Session;
const ids: Record<string, string> = {};

beforeAll(async () => {
  ({ a, b } = await twoTenants(t.app));
  const db = t.deps.database.db;
  const [number] = await call(t.app, 'POST', '/api/v1/phone-numbers', a.access_token, { number: '+15550001111' }).then((r) => [
    r.json() as { id: string },
  ]);
  const calls = t.deps.calls;
  const at = (iso: string) => new Date(iso);
  const made = async (name: string, createdAt: string, input: Parameters<typeof calls.start>[1], turns: string[] = []) => {
    const c = await calls.start(a.tenant.id, input);
    await db
      .update(callsTable)
      .set({ createdAt: at(createdAt) })
      .where(eq(callsTable.id, c.id));
    for (const text of turns) await calls.addTurn(a.tenant.id, c.id, { speaker: 'caller', text });
    ids[name] = c.id;
    return c;
  };
  await made(
    'inbound',
    '2026-03-01T10:00:00Z',
    { direction: 'inbound', fromNumber: '+14155550100', toNumber: '+15550001111', phoneNumberId: number!.id },
    ['Where is the free parking for the clinic?'],
  );
  await made(
    'outbound',
    '2026-03-02T10:00:00Z',
    { direction: 'outbound', fromNumber: '+15550001111', toNumber: '+14155550199', phoneNumberId: number!.id },
    ['I would like to cancel my appointment on Friday.'],
  );
  await made('web', '2026-03-03T10:00:00Z', { direction: 'web' }, ['Do you take Medicaid?']);
  await made('chat', '2026-03-04T10:00:00Z', { direction: 'chat' }, ['What are your opening hours?']);
  await calls.end(a.tenant.id, ids.inbound!, 'completed', 'caller hung up');
  await calls.end(a.tenant.id, ids.web!, 'failed', 'no_media');
  await calls.setRecording(a.tenant.id, ids.inbound!, `${a.tenant.id}/${ids.inbound}.wav`, 4200);
  // Tenant B: the same words and the same number, never in A's results.
  const other = await calls.start(b.tenant.id, { direction: 'inbound', fromNumber: '+14155550100', toNumber: '+15550002222' });
  await calls.addTurn(b.tenant.id, other.id, { speaker: 'caller', text: 'Where is the free parking?' });
  ids.other = other.id;
});

const list = async (token: string, query: string) => {
  const res = await call(t.app, 'GET', `/api/v1/calls?${query}`, token);
  expect(res.statusCode, res.body).toBe(200);
  return res.json() as { items: { id: string }[]; total: number; next_cursor: string | null };
};
const idsOf = (page: { items: { id: string }[] }) => page.items.map((c) => c.id);

describe('GET /api/v1/calls', () => {
  it('each call carries its channel, ended reason, number and recording', async () => {
    const page = await list(a.access_token, 'limit=10');
    const byId = new Map(page.items.map((c) => [c.id, c as Record<string, unknown>]));
    expect(byId.get(ids.inbound!)).toMatchObject({
      direction: 'inbound',
      channel: 'phone',
      status: 'completed',
      ended_reason: 'caller hung up',
      phone_number_id: expect.any(String),
      recording_available: true,
      recording_duration_ms: 4200,
    });
    expect(byId.get(ids.outbound!)).toMatchObject({ channel: 'phone', ended_reason: null, recording_available: false });
    expect(byId.get(ids.web!)).toMatchObject({ channel: 'web', ended_reason: 'no_media', phone_number_id: null });
    expect(byId.get(ids.chat!)).toMatchObject({ channel: 'chat' });
    expect(page.items.map((c) => c.id)).not.toContain(ids.other);
  });

  it('filters by status, direction, channel, dates and phone number', async () => {
    expect(idsOf(await list(a.access_token, 'status=completed'))).toEqual([ids.inbound]);
    expect(idsOf(await list(a.access_token, 'status=in_progress'))).toEqual([ids.chat, ids.outbound]);
    expect(idsOf(await list(a.access_token, 'direction=outbound'))).toEqual([ids.outbound]);
    expect(idsOf(await list(a.access_token, 'channel=phone'))).toEqual([ids.outbound, ids.inbound]);
    expect(idsOf(await list(a.access_token, 'created_after=2026-03-02&created_before=2026-03-04'))).toEqual([ids.web, ids.outbound]);
    expect(idsOf(await list(a.access_token, 'created_after=2026-03-03T09:00:00%2B00:00'))).toEqual([ids.chat, ids.web]);
    // From or to.
    expect(idsOf(await list(a.access_token, 'phone_number=%2B14155550100'))).toEqual([ids.inbound]);
    expect(idsOf(await list(a.access_token, 'phone_number=%2B15550001111'))).toEqual([ids.outbound, ids.inbound]);
    const number = (await call(t.app, 'GET', `/api/v1/calls/${ids.inbound}`, a.access_token)).json().phone_number_id;
    expect(idsOf(await list(a.access_token, `phone_number_id=${number}&direction=inbound`))).toEqual([ids.inbound]);
    const page = await list(a.access_token, 'status=in_progress&channel=phone');
    expect([page.total, idsOf(page)]).toEqual([1, [ids.outbound]]);
  });

  it('finds calls by words in their transcript (stemmed, any order), only the tenant’s own', async () => {
    expect(idsOf(await list(a.access_token, 'q=parking'))).toEqual([ids.inbound]);
    expect(idsOf(await list(a.access_token, 'q=cancelled%20appointments'))).toEqual([ids.outbound]);
    expect(idsOf(await list(a.access_token, 'q=medicaid'))).toEqual([ids.web]);
    expect(idsOf(await list(a.access_token, 'q=helicopter'))).toEqual([]);
    // Operators are plain text, not query syntax.
    expect(idsOf(await list(a.access_token, 'q=parking%20%26%20!%7C(:*'))).toEqual([ids.inbound]);
    expect(idsOf(await list(b.access_token, 'q=parking'))).toEqual([ids.other]);
    expect((await call(t.app, 'GET', `/api/v1/calls?q=${'x'.repeat(201)}`, a.access_token)).statusCode).toBe(422);
  });

  it('pages with a cursor in a stable order, newest first, unaffected by calls made meanwhile', async () => {
    const first = await list(a.access_token, 'limit=3');
    expect(idsOf(first)).toEqual([ids.chat, ids.web, ids.outbound]);
    expect(first.next_cursor).toEqual(expect.any(String));
    // A newer call arrives: an offset page would shift, the cursor does not.
    const newer = await t.deps.calls.start(a.tenant.id, { direction: 'chat' });
    const second = await list(a.access_token, `limit=3&cursor=${first.next_cursor}`);
    expect([idsOf(second), second.next_cursor]).toEqual([[ids.inbound], null]);
    expect(idsOf(await list(a.access_token, 'limit=1'))).toEqual([newer.id]);
    // Calls made in the same microsecond are ordered by id, and neither repeats nor is skipped.
    await t.deps.database.db
      .update(callsTable)
      .set({ createdAt: new Date('2026-03-04T10:00:00Z') })
      .where(eq(callsTable.id, newer.id));
    const seen: string[] = [];
    let cursor: string | null = '';
    while (cursor !== null) {
      const p = await list(a.access_token, `limit=1${cursor ? `&cursor=${cursor}` : ''}`);
      seen.push(...idsOf(p));
      cursor = p.next_cursor;
    }
    expect(seen.sort()).toEqual([ids.inbound, ids.outbound, ids.web, ids.chat, newer.id].sort());
    await t.deps.calls.discard(a.tenant.id, newer.id);
  });

  it('refuses a cursor it did not give, or a cursor with an offset', async () => {
    for (const q of ['cursor=abc', `cursor=${Buffer.from('["x","y"]').toString('base64url')}`]) {
      const res = await call(t.app, 'GET', `/api/v1/calls?${q}`, a.access_token);
      expect([res.statusCode, res.json().error.code]).toEqual([422, 'validation_error']);
    }
    const { next_cursor } = await list(a.access_token, 'limit=1');
    expect((await call(t.app, 'GET', `/api/v1/calls?limit=1&offset=1&cursor=${next_cursor}`, a.access_token)).statusCode).toBe(422);
  });
});
