// Usage and cost (issue 18): the ledger after a chat session and after a voice call over the in-memory transport,
// with the OpenAI, Anthropic, Deepgram and ElevenLabs fakes reporting usage as their APIs do; cost per component
// from the price table (list prices, a tenant's override) and split by who pays (a tenant's own key: the tenant);
// GET /api/v1/usage grouped four ways and isolated per tenant; the monthly caps refusing new calls (402, or a
// spoken message for an inbound caller) and `usage.limit_reached` published once.
import { and, eq } from 'drizzle-orm';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { calls as callsTable, usageRecords, webhookEvents } from '../src/db/schema.js';
import { estimateTokens } from '../src/rag/chunking.js';
import { LIST_PRICES, unitPrice } from '../src/services/prices.js';
import { postSigned, SimulatedCall } from '../src/sim/simulated-call.js';
import { BUDGET_EXCEEDED_MESSAGE } from '../src/telephony/telephony.js';
import { MemoryTransport } from '../src/voice/transports/memory.js';
import { UsageTally } from '../src/voice/usage-meter.js';
import { anthropicUsage, FakeAnthropic } from './fakes/anthropic.js';
import { type FakeDeepgram, startFakeDeepgram } from './fakes/deepgram.js';
import { FakeElevenLabs } from './fakes/elevenlabs.js';
import { FakeOpenAI } from './fakes/openai.js';
import { speech } from './fixtures/speech.js';
import { bearer, buildTestApp, call, type Session, signup, type TestApp } from './helpers.js';

const ACCOUNT = { accountSid: `AC${'7'.repeat(32)}`, authToken: 'twilio-usage-auth-token' };
const ADMIN = { email: 'ops-usage@platform.example', password: 'platform admin password' };
const RATE = 16000;

let t: TestApp;
let openai: FakeOpenAI;
let anthropic: FakeAnthropic;
let elevenlabs: FakeElevenLabs;
let deepgram: FakeDeepgram;
let root = '';
let base = '';

beforeAll(async () => {
  openai = await new FakeOpenAI().start();
  anthropic = await new FakeAnthropic().start();
  elevenlabs = await new FakeElevenLabs().start();
  deepgram = await startFakeDeepgram({});
  t = await buildTestApp({
    // The platform's keys for OpenAI and ElevenLabs; Deepgram and Anthropic only by the tenant's own keys.
    OPENAI_API_KEY: openai.apiKey,
    OPENAI_BASE_URL: openai.baseURL,
    ANTHROPIC_BASE_URL: anthropic.baseURL,
    ELEVENLABS_API_KEY: elevenlabs.apiKey,
    ELEVENLABS_BASE_URL: elevenlabs.baseUrl,
    DEEPGRAM_BASE_URL: deepgram.url,
    TWILIO_ACCOUNT_SID: ACCOUNT.accountSid,
    TWILIO_AUTH_TOKEN: ACCOUNT.authToken,
    PLATFORM_ADMIN_EMAIL: ADMIN.email,
    PLATFORM_ADMIN_PASSWORD: ADMIN.password,
  });
  await t.app.listen({ port: 0, host: '127.0.0.1' });
  base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
  root = (await t.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: ADMIN })).json().access_token;
});
afterAll(async () => {
  await t.close();
  await Promise.all([openai.stop(), anthropic.stop(), elevenlabs.stop(), deepgram.close()]);
});

const chat = (s: Session, body: object) => call(t.app, 'POST', '/api/v1/chat', s.access_token, body);
const settings = async (s: Session, body: object) => {
  const res = await call(t.app, 'PUT', '/api/v1/settings/tenant', s.access_token, body);
  expect(res.statusCode, res.body).toBe(200);
};
const billing = (tenantId: string, body: object) => call(t.app, 'PATCH', `/api/v1/admin/tenants/${tenantId}/billing`, root, body);
const ledger = (tenantId: string) => t.deps.database.db.select().from(usageRecords).where(eq(usageRecords.tenantId, tenantId));
type Line = { component: string; provider: string; model: string; unit: string; quantity: number; billed_to: string; cost_usd: number };
const line = (lines: Line[], component: string, unit: string) => lines.find((l) => l.component === component && l.unit === unit);

/** What the OpenAI fake reported for the chat requests since `from`: prompt and completion tokens. */
function openaiUsage(from: number, replies: string[]) {
  const input = openai.chatRequests.slice(from).reduce((n, b) => n + estimateTokens(JSON.stringify(b.messages)), 0);
  return { input, output: replies.reduce((n, r) => n + estimateTokens(r), 0) };
}

describe('the price table and the meter', () => {
  it('a model’s price before its provider’s, a tenant override before the list price, local engines free', () => {
    const line = { component: 'llm', provider: 'openai', model: 'gpt-4o', unit: 'input_tokens' } as const;
    expect(unitPrice(line)).toBe(LIST_PRICES['llm:openai:gpt-4o:input_tokens']);
    expect(unitPrice({ ...line, model: 'some-new-model' })).toBe(LIST_PRICES['llm:openai:input_tokens']);
    expect(unitPrice(line, { 'llm:openai:input_tokens': 0.5 })).toBe(0.5);
    expect(unitPrice({ component: 'tts', provider: 'local', model: '', unit: 'characters' })).toBe(0);
  });

  it('drains only what was used since the last drain; counters stay live', () => {
    const m = new UsageTally();
    const key = { component: 'stt', provider: 'deepgram', model: '', unit: 'seconds', billedTo: 'tenant' } as const;
    const c = m.counter(key);
    c.quantity += 1.5;
    m.add(key, 0.5);
    expect(m.drain()).toEqual([{ ...key, quantity: 2 }]);
    expect(m.drain()).toEqual([]);
    c.quantity += 1;
    expect(m.drain()).toEqual([{ ...key, quantity: 1 }]);
  });
});

describe('the ledger', () => {
  it('a chat session on the platform’s OpenAI key: tokens as OpenAI reported them, cost billed by the platform', async () => {
    const s = await signup(t.app);
    await settings(s, { providers: { llm: { provider: 'openai', model: 'gpt-4o-mini' } }, rag: { enabled: false } });
    const from = openai.chatRequests.length;
    const first = await chat(s, { message: 'What are your opening hours?' });
    expect(first.statusCode, first.body).toBe(200);
    const second = await chat(s, { session_id: first.json().session_id, message: 'And on Sundays?' });
    expect(second.statusCode, second.body).toBe(200);
    const { input, output } = openaiUsage(from, [first.json().reply, second.json().reply]);
    expect(input).toBeGreaterThan(0);

    const record = (await call(t.app, 'GET', `/api/v1/calls/${first.json().session_id}`, s.access_token)).json();
    expect(line(record.usage, 'llm', 'input_tokens')).toMatchObject({
      provider: 'openai',
      model: 'gpt-4o-mini',
      quantity: input,
      billed_to: 'platform',
    });
    expect(line(record.usage, 'llm', 'output_tokens')).toMatchObject({ quantity: output, billed_to: 'platform' });
    const expected =
      input * LIST_PRICES['llm:openai:gpt-4o-mini:input_tokens']! + output * LIST_PRICES['llm:openai:gpt-4o-mini:output_tokens']!;
    expect(record.cost.components.llm.platform_usd).toBeCloseTo(expected, 5); // costs are rounded to 6 places (and quantities to 3): precision 5 throughout, not 6
    expect(record.cost.components.llm.tenant_usd).toBe(0);
    expect(record.cost.total_usd).toBeCloseTo(
      record.usage.reduce((n: number, l: Line) => n + l.cost_usd, 0),
      6,
    );
    // One row per line and turn, never more: written per turn, not per token.
    expect((await ledger(s.tenant.id)).filter((r) => r.component === 'llm')).toHaveLength(4);
  });

  it('a chat session on the tenant’s own Anthropic key: billed to the tenant, priced at the tenant’s override', async () => {
    const s = await signup(t.app);
    await settings(s, {
      providers: { llm: { provider: 'anthropic', model: 'claude-haiku-4-5' } },
      provider_keys: { anthropic: anthropic.apiKey },
      rag: { enabled: false },
    });
    expect((await billing(s.tenant.id, { prices: { 'llm:anthropic:claude-haiku-4-5:output_tokens': 0.001 } })).statusCode).toBe(200);
    const from = anthropic.requests.length;
    const res = await chat(s, { message: 'Hello there' });
    expect(res.statusCode, res.body).toBe(200);
    const sent = anthropic.requests.slice(from);
    expect(sent).toHaveLength(1);
    // The fake reports input_tokens in message_start and output_tokens in message_delta, like the API.
    const usage = anthropicUsage(sent[0]!, res.json().reply, 0);
    expect(usage.input_tokens).toBeGreaterThan(0);
    const record = (await call(t.app, 'GET', `/api/v1/calls/${res.json().session_id}`, s.access_token)).json();
    expect(line(record.usage, 'llm', 'input_tokens')).toMatchObject({
      provider: 'anthropic',
      quantity: usage.input_tokens,
      billed_to: 'tenant',
    });
    expect(line(record.usage, 'llm', 'output_tokens')).toMatchObject({ quantity: usage.output_tokens, billed_to: 'tenant' });
    const llmUsd = usage.input_tokens * LIST_PRICES['llm:anthropic:claude-haiku-4-5:input_tokens']! + usage.output_tokens * 0.001;
    expect(record.cost.components.llm.platform_usd).toBe(0);
    expect(record.cost.components.llm.tenant_usd).toBeCloseTo(llmUsd, 5);
    expect(record.cost.platform_usd).toBe(0);
  });

  it('a voice call: line seconds, Deepgram seconds (tenant key), OpenAI tokens and ElevenLabs characters (platform)', async () => {
    const s = await signup(t.app);
    await settings(s, {
      greeting: 'Hello, Sunrise clinic.',
      providers: {
        stt: { provider: 'deepgram', model: 'nova-3' },
        llm: { provider: 'openai', model: 'gpt-4o-mini' },
        tts: { provider: 'elevenlabs', voice: elevenlabs.voiceId },
      },
      provider_keys: { deepgram: deepgram.apiKey },
      rag: { enabled: false },
    });
    openai.chatScript = () => ({ text: 'We open at nine.' });
    deepgram.transcripts = ['When do you open?'];
    const from = openai.chatRequests.length;
    const ttsFrom = elevenlabs.requests.length;
    const transport = new MemoryTransport(RATE);
    const row = await t.deps.calls.start(s.tenant.id, { direction: 'web' });
    const outcome = t.deps.voice.run(s.tenant.id, row.id, transport);
    const turns = async (n: number) => {
      for (let i = 0; i < 400; i++) {
        if ((await t.deps.calls.transcript(s.tenant.id, row.id)).length >= n) return;
        await sleep(50);
      }
      throw new Error('turns did not come');
    };
    await turns(1);
    const said = await speech('When do you open?', RATE);
    await transport.say(said);
    await turns(3);
    // The heartbeat writes a live call's usage so far (every 4th beat): an instance that stops loses little of it.
    for (let i = 0; i < 4; i++) await (t.deps.voice as unknown as { beat(): Promise<void> }).beat();
    const midCall = await ledger(s.tenant.id);
    expect(midCall.find((r) => r.component === 'llm' && r.unit === 'output_tokens')?.quantity).toBe(estimateTokens('We open at nine.'));
    expect(midCall.find((r) => r.component === 'telephony')!.quantity).toBeGreaterThan(0);
    transport.hangup();
    expect(await outcome).toMatchObject({ status: 'completed' });

    const record = (await call(t.app, 'GET', `/api/v1/calls/${row.id}`, s.access_token)).json();
    const lines = record.usage as Line[];
    expect(line(lines, 'telephony', 'seconds')).toMatchObject({ provider: 'memory', billed_to: 'platform' });
    expect(line(lines, 'telephony', 'seconds')!.quantity).toBeGreaterThan(0);
    const stt = line(lines, 'stt', 'seconds')!;
    expect(stt).toMatchObject({ provider: 'deepgram', billed_to: 'tenant' });
    // At least the question's audio went to Deepgram (and the silence around it).
    expect(stt.quantity).toBeGreaterThanOrEqual(said.length / RATE - 0.05);
    expect(stt.cost_usd).toBeCloseTo(stt.quantity * LIST_PRICES['stt:deepgram:seconds']!, 5);
    const { input, output } = openaiUsage(from, ['We open at nine.']);
    expect(line(lines, 'llm', 'input_tokens')).toMatchObject({ quantity: input, billed_to: 'platform' });
    expect(line(lines, 'llm', 'output_tokens')).toMatchObject({ quantity: output });
    const chars = elevenlabs.requests.slice(ttsFrom).reduce((n, r) => n + String(r.body.text).length, 0);
    expect(chars).toBe('Hello, Sunrise clinic.'.length + 'We open at nine.'.length);
    expect(line(lines, 'tts', 'characters')).toMatchObject({ provider: 'elevenlabs', quantity: chars, billed_to: 'platform' });
    expect(record.cost.components.tts.platform_usd).toBeCloseTo(chars * LIST_PRICES['tts:elevenlabs:characters']!, 5);
    expect(record.cost.components.stt).toMatchObject({ platform_usd: 0 });
    expect(record.cost.tenant_usd).toBeCloseTo(stt.cost_usd, 5);
    // The call.ended webhook carries the same cost, its total the sum of its components.
    const [ended] = await t.deps.database.db
      .select()
      .from(webhookEvents)
      .where(and(eq(webhookEvents.callId, row.id), eq(webhookEvents.type, 'call.ended')));
    const cost = (ended!.data as { cost: typeof record.cost }).cost;
    expect(cost).toEqual(record.cost);
    const parts = Object.values(cost.components as Record<string, { total_usd: number }>);
    expect(cost.total_usd).toBeCloseTo(
      parts.reduce((n, c) => n + c.total_usd, 0),
      5,
    ); // each rounded to 6 places
    expect(cost.total_usd).toBeGreaterThan(0);
    // Written during the call and at its end, never per frame: the lines again at most.
    const rows = await ledger(s.tenant.id);
    expect(rows.length).toBeLessThanOrEqual(2 * lines.length);
    expect(rows.filter((r) => r.component === 'telephony').reduce((n, r) => n + r.quantity, 0)).toBeCloseTo(
      line(lines, 'telephony', 'seconds')!.quantity,
      3,
    );
  }, 60_000);
});

describe('a simulated phone call (simulate:call’s Twilio leg)', () => {
  it('records the line’s seconds at Twilio’s price and the local engines’ use at price 0', async () => {
    const s = await signup(t.app);
    const number = '+15550107021';
    expect((await call(t.app, 'POST', '/api/v1/phone-numbers', s.access_token, { number })).statusCode).toBe(201);
    await settings(s, {
      greeting: 'Hello, Sunrise clinic.',
      providers: { stt: { provider: 'deepgram' }, llm: { provider: 'local' }, tts: { provider: 'local' } },
      provider_keys: { deepgram: deepgram.apiKey },
      rag: { enabled: false },
    });
    const sim = await SimulatedCall.inbound({ ...ACCOUNT, baseUrl: base, from: '+15557654321', to: number });
    await sim.agentDone({ quietMs: 300 });
    await sim.hangup();
    let record: { ended_at: string | null; usage: Line[]; cost: { platform_usd: number; total_usd: number } } | undefined;
    for (let i = 0; i < 200 && !record?.usage.length; i++) {
      await sleep(50);
      record = (await call(t.app, 'GET', `/api/v1/calls/${sim.callId}`, s.access_token)).json();
    }
    const line = record!.usage.find((l) => l.component === 'telephony')!;
    expect(line).toMatchObject({ provider: 'twilio', billed_to: 'platform' });
    expect(line.quantity).toBeGreaterThan(0.5);
    expect(line.cost_usd).toBeCloseTo((line.quantity * 0.014) / 60, 5);
    expect(record!.usage.find((l) => l.component === 'tts')).toMatchObject({
      provider: 'local',
      quantity: 'Hello, Sunrise clinic.'.length,
      cost_usd: 0,
    });
    expect(record!.cost.platform_usd).toBeCloseTo(line.cost_usd, 5);
  }, 60_000);
});

describe('embedding tokens', () => {
  it('ingestion and the queries of a chat: OpenAI’s reported tokens, on the tenant’s key', async () => {
    const s = await signup(t.app);
    await settings(s, {
      providers: { embeddings: { provider: 'openai', model: 'text-embedding-3-small', dimensions: 256 }, llm: { provider: 'openai' } },
      provider_keys: { openai: openai.apiKey },
    });
    const tokensSince = (from: number) =>
      openai.requests.slice(from).reduce((n, b) => n + (b.input as string[]).reduce((m, x) => m + estimateTokens(x), 0), 0);
    const before = openai.requests.length;
    const doc = await call(t.app, 'POST', '/api/v1/documents', s.access_token, {
      title: 'Hours',
      content: '# Opening hours\n\nWe open at nine on weekdays and close at noon on Saturdays.',
    });
    expect(doc.statusCode, doc.body).toBe(202);
    for (let i = 0; i < 400; i++) {
      if ((await call(t.app, 'GET', `/api/v1/documents/${doc.json().id}`, s.access_token)).json().status === 'ready') break;
      await sleep(50);
    }
    const ingested = tokensSince(before);
    expect(ingested).toBeGreaterThan(0);
    const rows = (await ledger(s.tenant.id)).filter((r) => r.component === 'embeddings');
    expect(rows.reduce((n, r) => n + r.quantity, 0)).toBe(ingested);
    expect(rows.every((r) => r.callId === null && r.billedTo === 'tenant' && r.model === 'text-embedding-3-small')).toBe(true);

    const asked = openai.requests.length;
    const res = await chat(s, { message: 'When do you close on Saturdays?' });
    expect(res.statusCode, res.body).toBe(200);
    const record = (await call(t.app, 'GET', `/api/v1/calls/${res.json().session_id}`, s.access_token)).json();
    expect(line(record.usage, 'embeddings', 'tokens')).toMatchObject({
      provider: 'openai',
      quantity: tokensSince(asked),
      billed_to: 'tenant',
    });
    expect(record.cost.components.embeddings.platform_usd).toBe(0);
  });
});

describe('GET /api/v1/usage', () => {
  let s: Session;
  let calls: string[] = [];
  beforeAll(async () => {
    s = await signup(t.app);
    calls = [];
    for (const seconds of [60, 90]) {
      const row = await t.deps.calls.start(s.tenant.id, { direction: 'web' });
      calls.push(row.id);
      await t.deps.usage.record(
        s.tenant.id,
        [
          { component: 'telephony', provider: 'twilio', model: '', unit: 'seconds', billedTo: 'platform', quantity: seconds },
          { component: 'llm', provider: 'openai', model: 'gpt-4o', unit: 'input_tokens', billedTo: 'tenant', quantity: 1000 },
        ],
        { callId: row.id },
      );
    }
  });
  const usage = (who: Session, query: string) => call(t.app, 'GET', `/api/v1/usage?${query}`, who.access_token);

  it('groups by call, day, month and provider with the same totals', async () => {
    const byCall = (await usage(s, 'group_by=call')).json();
    expect(byCall.items.map((i: { key: string }) => i.key).sort()).toEqual([...calls].sort());
    const twilio = (150 / 60) * 0.014;
    const llm = 2000 * LIST_PRICES['llm:openai:gpt-4o:input_tokens']!;
    expect(byCall.totals).toMatchObject({ minutes: 2.5 });
    expect(byCall.totals.platform_usd).toBeCloseTo(twilio, 5);
    expect(byCall.totals.tenant_usd).toBeCloseTo(llm, 5);
    const today = new Date().toISOString().slice(0, 10);
    const byDay = (await usage(s, 'group_by=day')).json();
    expect(byDay.items.map((i: { key: string }) => i.key)).toEqual([today]);
    expect(byDay.items[0].minutes).toBe(2.5);
    expect((await usage(s, 'group_by=month')).json().items.map((i: { key: string }) => i.key)).toEqual([today.slice(0, 7)]);
    const byProvider = (await usage(s, 'group_by=provider')).json();
    expect(byProvider.items.map((i: { key: string }) => i.key)).toEqual(['llm:openai', 'telephony:twilio']);
    expect(byProvider.items[1].usage[0]).toMatchObject({ quantity: 150, billed_to: 'platform' });
    for (const r of [byDay, byProvider]) expect(r.totals).toEqual(byCall.totals);
  });

  it('bounded ranges, clear 4xx; another tenant sees none of it, and another tenant’s call answers 404', async () => {
    const other = await signup(t.app);
    const theirs = (await usage(other, 'group_by=call')).json();
    expect(theirs).toMatchObject({ items: [], totals: { total_usd: 0, minutes: 0 } });
    expect((await call(t.app, 'GET', `/api/v1/calls/${calls[0]}`, other.access_token)).statusCode).toBe(404);
    const backwards = await usage(s, 'from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z');
    expect([backwards.statusCode, backwards.json().error.code]).toEqual([400, 'bad_request']);
    expect((await usage(s, 'from=2024-01-01T00:00:00Z&to=2026-01-01T00:00:00Z')).statusCode).toBe(400);
    expect((await usage(s, 'group_by=week')).json().error.code).toBe('validation_error');
    const past = (await usage(s, 'from=2025-01-01T00:00:00Z&to=2025-02-01T00:00:00Z')).json();
    expect(past.items).toEqual([]);
    const today = new Date().toISOString().slice(0, 10);
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    const byDate = (await usage(s, `from=${today}&to=${tomorrow}&group_by=month`)).json();
    expect(byDate).toMatchObject({ from: `${today}T00:00:00.000Z`, totals: { minutes: 2.5 } });
  });

  it('billing is the platform admin’s: a tenant gets 403, an unknown tenant 404, a bad price key 422', async () => {
    expect((await call(t.app, 'GET', `/api/v1/admin/tenants/${s.tenant.id}/billing`, s.access_token)).statusCode).toBe(403);
    expect(
      (await call(t.app, 'PATCH', `/api/v1/admin/tenants/${s.tenant.id}/billing`, s.access_token, { monthly_minutes_cap: 0 })).statusCode,
    ).toBe(403);
    expect((await billing('00000000-0000-4000-8000-000000000000', { monthly_minutes_cap: 5 })).statusCode).toBe(404);
    expect((await billing(s.tenant.id, { prices: { 'llm:openai': 1 } })).json().error.code).toBe('validation_error');
    const view = (await call(t.app, 'GET', `/api/v1/admin/tenants/${s.tenant.id}/billing`, root)).json();
    expect(view).toMatchObject({ monthly_minutes_cap: 0, month_to_date: { minutes: 2.5 }, custom: { monthly_minutes_cap: false } });
  });
});

describe('monthly caps', () => {
  const limitEvents = async (tenantId: string) =>
    t.deps.database.db
      .select()
      .from(webhookEvents)
      .where(and(eq(webhookEvents.tenantId, tenantId), eq(webhookEvents.type, 'usage.limit_reached')));

  it('at the spend cap: chat, web and outbound calls get 402 budget_exceeded, and usage.limit_reached is published once', async () => {
    const s = await signup(t.app);
    await settings(s, { providers: { llm: { provider: 'openai', model: 'gpt-4o-mini' } }, rag: { enabled: false } });
    expect((await billing(s.tenant.id, { monthly_spend_cap_usd: 0.000001 })).statusCode).toBe(200);
    const first = await chat(s, { message: 'Hello' });
    expect(first.statusCode, first.body).toBe(200);
    // The session in progress goes on; new ones are refused.
    expect((await chat(s, { session_id: first.json().session_id, message: 'Still there?' })).statusCode).toBe(200);
    const refused = await chat(s, { message: 'Hello again' });
    expect([refused.statusCode, refused.json().error.code]).toEqual([402, 'budget_exceeded']);
    const web = await t.app.inject({ method: 'POST', url: '/api/v1/calls/web', headers: bearer(s.access_token), payload: {} });
    expect([web.statusCode, web.json().error.code]).toEqual([402, 'budget_exceeded']);
    const number = await call(t.app, 'POST', '/api/v1/phone-numbers', s.access_token, { number: '+15550107001' });
    expect(number.statusCode, number.body).toBe(201);
    const outbound = await call(t.app, 'POST', '/api/v1/calls', s.access_token, { to: '+15550107002' });
    expect([outbound.statusCode, outbound.json().error.code]).toEqual([402, 'budget_exceeded']);
    const events = await limitEvents(s.tenant.id);
    expect(events).toHaveLength(1);
    expect(events[0]!.data).toMatchObject({ limit: 'monthly_spend', month: new Date().toISOString().slice(0, 7), cap: 0.000001 });
    // Raising the cap lets calls in again.
    expect((await billing(s.tenant.id, { monthly_spend_cap_usd: 100 })).statusCode).toBe(200);
    expect((await chat(s, { message: 'Hello once more' })).statusCode).toBe(200);
  });

  it('at the minutes cap an inbound caller hears a short message and the call is recorded with its refusal', async () => {
    const s = await signup(t.app);
    const number = '+15550107011';
    expect((await call(t.app, 'POST', '/api/v1/phone-numbers', s.access_token, { number })).statusCode).toBe(201);
    expect((await billing(s.tenant.id, { monthly_minutes_cap: 1 })).statusCode).toBe(200);
    await t.deps.usage.record(s.tenant.id, [
      { component: 'telephony', provider: 'twilio', model: '', unit: 'seconds', billedTo: 'platform', quantity: 61 },
    ]);
    const callSid = `CA${'c'.repeat(32)}`;
    const res = await postSigned(ACCOUNT, `${base}/api/v1/webhooks/twilio/voice`, {
      AccountSid: ACCOUNT.accountSid,
      CallSid: callSid,
      From: '+15557654321',
      To: number,
      CallStatus: 'ringing',
      Direction: 'inbound',
    });
    expect(res.status).toBe(200);
    const twiml = await res.text();
    expect(twiml).toContain(`>${BUDGET_EXCEEDED_MESSAGE}</Say>`);
    expect(twiml).toContain('<Hangup/>');
    expect(twiml).not.toContain('<Stream');
    const [row] = await t.deps.database.db.select().from(callsTable).where(eq(callsTable.providerCallSid, callSid));
    expect(row).toMatchObject({ tenantId: s.tenant.id, direction: 'inbound', status: 'failed' });
    const events = await t.deps.calls.events(s.tenant.id, row!.id);
    expect(events.find((e) => e.type === 'call.refused')?.extraData).toEqual({ reason: 'budget_exceeded' });
    const web = await t.app.inject({ method: 'POST', url: '/api/v1/calls/web', headers: bearer(s.access_token), payload: {} });
    expect(web.statusCode).toBe(402);
    const notices = await limitEvents(s.tenant.id);
    expect(notices.map((e) => e.data.limit)).toEqual(['monthly_minutes']);
  });
});
