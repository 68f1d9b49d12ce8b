// Post-call analysis end to end: a chat session ends, the worker analyses it (local engine, OpenAI structured
// outputs, Anthropic forced tool use, each against its fake), the result fills the tenant's schema, is stored on the
// call and published as call.analyzed; re-runs; the settings' checks; tenant isolation; the queue's lease.
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AnalysisResult } from '../src/analysis/analyzer.js';
import type { AnalyzerSource } from '../src/analysis/analyzers.js';
import { LocalAnalyzer } from '../src/analysis/local-analyzer.js';
import { AnalysisWorker } from '../src/analysis/worker.js';
import { callAnalyses, webhookEvents } from '../src/db/schema.js';
import { enqueueAnalysis } from '../src/services/call-analyses.js';
import { FakeAnthropic } from './fakes/anthropic.js';
import { FakeOpenAI } from './fakes/openai.js';
import { buildTestApp, call, type Session, signup, type TestApp, twoTenants, waitFor } from './helpers.js';

let t: TestApp;
let openai: FakeOpenAI;
let anthropic: FakeAnthropic;
let a: Session;
let b: Session;

const SCHEMA = {
  type: 'object',
  properties: {
    caller_name: { type: 'string', description: 'The caller’s full name' },
    appointment_time: { type: 'string' },
    order_number: { type: 'string' },
    party_size: { type: 'integer' },
  },
  required: ['caller_name'],
};

beforeAll(async () => {
  openai = await new FakeOpenAI().start();
  anthropic = await new FakeAnthropic().start();
  t = await buildTestApp({ OPENAI_BASE_URL: openai.baseURL, ANTHROPIC_BASE_URL: anthropic.baseURL });
  ({ a, b } = await twoTenants(t.app));
});
afterAll(async () => {
  await t?.close();
  await openai.stop();
  await anthropic.stop();
});

const chat = (token: string, body: object) => call(t.app, 'POST', '/api/v1/chat', token, body);
const settings = (s: Session, body: object) => call(t.app, 'PUT', '/api/v1/settings/tenant', s.access_token, body);

/** A chat session that books something and says goodbye (the local responder ends the session on it). */
async function conversation(s: Session): Promise<string> {
  const first = await chat(s.access_token, {
    message: 'Hi, my name is Maria Lopez. I would like an appointment on Tuesday at 3 pm for 4 people, my order number is 48213.',
  });
  expect(first.statusCode, first.body).toBe(200);
  const id = first.json().session_id as string;
  const bye = (await chat(s.access_token, { session_id: id, message: 'Thanks, goodbye!' })).json();
  expect(bye.ended).toBe(true);
  return id;
}

async function analysisDone(s: Session, id: string, after?: string) {
  return waitFor('analysis done', async () => {
    const r = (await call(t.app, 'GET', `/api/v1/calls/${id}/analysis`, s.access_token)).json();
    return (r.status === 'done' || r.status === 'failed') && r.completed_at !== after ? r : undefined;
  });
}

const analyzedEvents = async (callId: string) =>
  (await t.deps.database.db.select().from(webhookEvents).where(eq(webhookEvents.callId, callId))).filter((e) => e.type === 'call.analyzed');

describe('settings', () => {
  it('accepts an analysis section; the extraction schema is checked (422 validation_error) and replaced whole', async () => {
    const ok = await settings(a, {
      analysis: {
        enabled: true,
        rubric: 'The caller got a booking.',
        extraction_schema: { ...SCHEMA, properties: { x: { type: 'string' } }, required: [] },
      },
    });
    expect(ok.statusCode, ok.body).toBe(200);
    const put = await settings(a, { analysis: { extraction_schema: SCHEMA } });
    expect(put.json().analysis).toMatchObject({ enabled: true, rubric: 'The caller got a booking.', outcomes: null });
    expect(Object.keys(put.json().analysis.extraction_schema.properties).sort()).toEqual(Object.keys(SCHEMA.properties).sort());

    const deep = { type: 'object', properties: {} as Record<string, unknown> };
    let node = deep;
    for (let i = 0; i < 8; i++) {
      const next = { type: 'object', properties: {} };
      node.properties.n = next;
      node = next;
    }
    for (const bad of [
      { extraction_schema: { type: 'array', items: { type: 'string' } } },
      { extraction_schema: { type: 'object', properties: { a: { type: 'date' } } } },
      { extraction_schema: { type: 'object', properties: {}, required: ['missing'] } },
      { extraction_schema: deep },
      { outcomes: ['Resolved!'] },
      { outcomes: ['a', 'a'] },
    ]) {
      const r = await settings(b, { analysis: bad });
      expect([r.statusCode, r.json().error?.code], JSON.stringify(bad)).toEqual([422, 'validation_error']);
      expect(r.json().error.details[0].field).toMatch(/^body\.analysis/);
    }
    // Within every per-node limit but too big as a whole.
    const props = Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`f${i}`, { type: 'string', description: 'x'.repeat(1000) }]));
    const big = await settings(b, { analysis: { extraction_schema: { type: 'object', properties: props } } });
    expect([big.statusCode, big.json().error.code]).toEqual([422, 'validation_error']);
    expect((await settings(b, { analysis: { extraction_schema: null } })).json().analysis.extraction_schema ?? null).toBeNull();
  });
});

describe('the local engine', () => {
  let id: string;
  it('analyses an ended chat session: extractive summary, rule outcome, the fields its rules find, partial', async () => {
    id = await conversation(a);
    const r = await analysisDone(a, id);
    expect(r).toMatchObject({ status: 'done', engine: 'local', model: null, error: null });
    expect(r.result).toMatchObject({
      outcome: 'resolved',
      partial: true,
      success: { passed: null },
      extracted: { caller_name: 'Maria Lopez', appointment_time: 'Tuesday at 3 pm', order_number: '48213', party_size: 4 },
    });
    expect([...r.result.filled].sort()).toEqual(['appointment_time', 'caller_name', 'order_number', 'party_size']);
    expect(r.result.summary).toContain('my name is Maria Lopez');
    expect(r.result.notes).toMatch(/no language model/);

    const detail = (await call(t.app, 'GET', `/api/v1/calls/${id}`, a.access_token)).json();
    expect(detail.analysis).toEqual(r);
    const events = await analyzedEvents(id);
    expect(events).toHaveLength(1);
    expect(events[0]!.data).toEqual({
      call_id: id,
      summary: r.result.summary,
      outcome: 'resolved',
      success: r.result.success,
      extracted: r.result.extracted,
      engine: 'local',
      partial: true,
    });
  });

  it('re-runs on POST with the changed schema and outcomes, and publishes again', async () => {
    const before = (await call(t.app, 'GET', `/api/v1/calls/${id}/analysis`, a.access_token)).json();
    await settings(a, {
      analysis: {
        outcomes: ['booked', 'resolved'],
        extraction_schema: { type: 'object', properties: { booking_date: { type: 'string' } } },
      },
    });
    const res = await call(t.app, 'POST', `/api/v1/calls/${id}/analysis`, a.access_token);
    expect([res.statusCode, res.json().status]).toEqual([202, 'queued']);
    const r = await analysisDone(a, id, before.completed_at);
    expect(r.result).toMatchObject({ outcome: 'resolved', extracted: { booking_date: 'Tuesday at 3 pm' }, filled: ['booking_date'] });
    expect(await analyzedEvents(id)).toHaveLength(2);
  });

  it('says transferred for a transfer and abandoned when the caller never spoke; a live call cannot be re-run', async () => {
    await settings(a, { analysis: { outcomes: null }, call: { transfer_number: '+14155550100' } });
    const s = (await chat(a.access_token, { message: 'Can I speak to someone please?' })).json();
    expect(s.action?.type).toBe('transfer_call');
    const res = await call(t.app, 'POST', `/api/v1/calls/${s.session_id}/analysis`, a.access_token);
    expect([res.statusCode, res.json().error.code]).toEqual([409, 'conflict']);
    await t.deps.calls.end(a.tenant.id, s.session_id, 'completed', 'test');
    expect((await analysisDone(a, s.session_id)).result.outcome).toBe('transferred');

    const silent = await t.deps.calls.start(a.tenant.id, { direction: 'web' });
    await t.deps.calls.end(a.tenant.id, silent.id, 'completed', 'hangup');
    expect((await analysisDone(a, silent.id)).result).toMatchObject({ outcome: 'abandoned', summary: 'The caller said nothing.' });
  });

  it('analyses a chat session the idle sweep ended (CallService.endStale)', async () => {
    const s = (await chat(a.access_token, { message: 'My name is John Smith, is my order 5521 ready?' })).json();
    const ended = await t.deps.calls.endStale(
      { connectTimeoutMs: 3_600_000, lostAfterMs: 3_600_000, chatIdleMs: 0 },
      new Date(Date.now() + 1_000),
    );
    expect(ended).toContainEqual({ id: s.session_id, tenantId: a.tenant.id, reason: 'idle' });
    const r = await analysisDone(a, s.session_id);
    expect([r.engine, r.result.outcome]).toEqual(['local', 'resolved']);
    expect(r.result.summary).toContain('John Smith');
  });

  it('is tenant-scoped: another tenant gets 404 on the analysis routes and sees no analysis', async () => {
    for (const method of ['GET', 'POST'] as const) {
      const r = await call(t.app, method, `/api/v1/calls/${id}/analysis`, b.access_token);
      expect([r.statusCode, r.json().error.code]).toEqual([404, 'not_found']);
    }
    expect((await call(t.app, 'GET', `/api/v1/calls/${id}`, b.access_token)).statusCode).toBe(404);
    // A call of tenant B with analysis off: no analysis queued, GET says 404, the call shows null.
    const own = await t.deps.calls.start(b.tenant.id, { direction: 'web' });
    await t.deps.calls.end(b.tenant.id, own.id, 'completed', 'hangup');
    await t.deps.analyses.enqueueEnded(3_600_000);
    expect((await call(t.app, 'GET', `/api/v1/calls/${own.id}/analysis`, b.access_token)).statusCode).toBe(404);
    expect((await call(t.app, 'GET', `/api/v1/calls/${own.id}`, b.access_token)).json().analysis).toBeNull();
  });
});

describe('cloud engines', () => {
  const answer = {
    summary: 'Maria Lopez booked a table for four on Tuesday at 3 pm.',
    outcome: 'resolved',
    success: { passed: true, reason: 'The caller got a booking.' },
    extracted: { caller_name: 'Maria Lopez', appointment_time: 'Tuesday 15:00', order_number: '48213', party_size: 4 },
  };

  it('OpenAI: one strict json_schema request, the answer checked and stored', async () => {
    const s = await signup(t.app);
    await settings(s, {
      providers: { llm: { provider: 'openai', model: 'gpt-4o-mini' } },
      provider_keys: { openai: openai.apiKey },
      analysis: { enabled: true, rubric: 'The caller got a booking.', extraction_schema: SCHEMA },
    });
    openai.chatScript = (body) => {
      if (body.response_format) return { json: { ...answer, extracted: { ...answer.extracted, appointment_time: null } } };
      const said = (body.messages as { role: string; content: string }[]).at(-1)!.content;
      return /bye/i.test(said)
        ? { text: 'Goodbye.', toolCalls: [{ name: 'end_call', arguments: { reason: 'done' } }] }
        : { text: 'Booked for Tuesday at 3 pm.' };
    };
    const id = await conversation(s);
    const r = await analysisDone(s, id);
    expect(r).toMatchObject({ status: 'done', engine: 'openai', model: 'gpt-4o-mini' });
    // The strict form's null for an optional field is "not found": left out.
    const found: Partial<typeof answer.extracted> = { ...answer.extracted };
    delete found.appointment_time;
    expect(r.result).toMatchObject({ ...answer, extracted: found, partial: false });
    const req = openai.chatRequests.find((x) => x.response_format)!;
    const format = req.response_format as { type: string; json_schema: { name: string; strict: boolean; schema: Record<string, unknown> } };
    expect(format).toMatchObject({ type: 'json_schema', json_schema: { name: 'call_analysis', strict: true } });
    expect(req.stream).toBeUndefined();
    expect(JSON.stringify(req.messages)).toContain('Maria Lopez');
    expect(JSON.stringify(req.messages)).toContain('The caller got a booking.');
    expect((await analyzedEvents(id))[0]!.data).toMatchObject({ engine: 'openai', partial: false, outcome: 'resolved' });
  });

  it('OpenAI: an answer off the schema is retried once, then the analysis fails with the reason', async () => {
    const s = await signup(t.app);
    await settings(s, {
      providers: { llm: { provider: 'openai', model: 'gpt-4o-mini' } },
      provider_keys: { openai: openai.apiKey },
      analysis: { enabled: true, extraction_schema: SCHEMA },
    });
    let structured = 0;
    const wrong = { ...answer, outcome: 'booked' };
    openai.chatScript = (body) => {
      if (!body.response_format) return { text: 'Goodbye.', toolCalls: [{ name: 'end_call', arguments: { reason: 'done' } }] };
      structured++;
      return { json: structured === 2 || structured >= 5 ? answer : wrong };
    };
    const first = (await chat(s.access_token, { message: 'Bye' })).json();
    const r = await analysisDone(s, first.session_id);
    expect(r.status).toBe('done');
    expect(structured).toBe(2);

    await call(t.app, 'POST', `/api/v1/calls/${first.session_id}/analysis`, s.access_token);
    const failed = await analysisDone(s, first.session_id, r.completed_at);
    expect(structured).toBe(4);
    expect(failed).toMatchObject({ status: 'failed', result: null });
    expect(failed.error).toMatch(/outcome must be one of/);
  });

  it('a provider refusing the key fails the analysis at once, with the provider’s status and no words of its own', async () => {
    const s = await signup(t.app);
    await settings(s, {
      providers: { llm: { provider: 'openai', model: 'gpt-4o-mini' } },
      provider_keys: { openai: 'sk-not-the-right-key' },
      analysis: { enabled: true },
    });
    const first = (await chat(s.access_token, { message: 'Goodbye' })).json(); // answered by the local fallback
    expect(first.ended).toBe(true);
    const r = await analysisDone(s, first.session_id);
    expect(r).toMatchObject({ status: 'failed', attempts: 1, result: null });
    expect(r.error).toMatch(/^openai: HTTP 401/);
    expect(r.error).not.toMatch(/Incorrect API key/);
  });

  it('Anthropic: one tool whose input_schema is the schema, tool_choice forcing it', async () => {
    const s = await signup(t.app);
    await settings(s, {
      providers: { llm: { provider: 'anthropic', model: 'claude-haiku-4-5' } },
      provider_keys: { anthropic: anthropic.apiKey },
      analysis: { enabled: true, extraction_schema: SCHEMA },
    });
    anthropic.script = (body) =>
      body.tool_choice
        ? { text: 'ignored', toolCalls: [{ name: 'record_call_analysis', arguments: answer }] }
        : /bye/i.test(JSON.stringify((body.messages as unknown[]).at(-1)))
          ? { text: 'Goodbye.', toolCalls: [{ name: 'end_call', arguments: { reason: 'done' } }] }
          : { text: 'Booked.' };
    const id = await conversation(s);
    const r = await analysisDone(s, id);
    expect(r).toMatchObject({ status: 'done', engine: 'anthropic', model: 'claude-haiku-4-5', result: { ...answer, partial: false } });
    const req = anthropic.requests.find((x) => x.tool_choice)!;
    expect(req.tool_choice).toEqual({ type: 'tool', name: 'record_call_analysis' });
    const tools = req.tools as { name: string; input_schema: { properties: Record<string, unknown> } }[];
    expect(tools.map((x) => x.name)).toEqual(['record_call_analysis']);
    expect(tools[0]!.input_schema.properties.extracted).toMatchObject({
      properties: { caller_name: { type: 'string' } },
      required: ['caller_name'],
    });
  });
});

describe('the fakes refuse what the APIs refuse', () => {
  it('OpenAI: a strict schema without additionalProperties:false or with a property not required', async () => {
    const post = (response_format: unknown) =>
      fetch(`${openai.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${openai.apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], response_format }),
      });
    const loose = await post({ type: 'json_schema', json_schema: { name: 'x', strict: true, schema: { type: 'object', properties: {} } } });
    expect([loose.status, ((await loose.json()) as { error: { message: string } }).error.message]).toEqual([
      400,
      "Invalid schema for response_format 'x': In context=(), 'additionalProperties' is required to be supplied and to be false.",
    ]);
    const optional = await post({
      type: 'json_schema',
      json_schema: {
        name: 'x',
        strict: true,
        schema: { type: 'object', properties: { a: { type: 'string' } }, additionalProperties: false },
      },
    });
    expect(((await optional.json()) as { error: { message: string } }).error.message).toMatch(/Missing 'a'/);
    expect((await post({ type: 'json_schema', json_schema: { name: 'bad name!', schema: {} } })).status).toBe(400);
    expect((await post({ type: 'json_object' })).status).toBe(400); // the messages must mention JSON
  });

  it('Anthropic: tool_choice naming no tool, or without tools', async () => {
    const post = (extra: object) =>
      fetch(`${anthropic.baseURL}/v1/messages`, {
        method: 'POST',
        headers: { 'x-api-key': anthropic.apiKey, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'claude-haiku-4-5', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }], ...extra }),
      });
    expect((await post({ tool_choice: { type: 'tool', name: 'x' } })).status).toBe(400);
    const tools = [{ name: 'y', input_schema: { type: 'object', properties: {} } }];
    expect((await post({ tools, tool_choice: { type: 'tool', name: 'x' } })).status).toBe(400);
    const ok = (await (await post({ tools, tool_choice: { type: 'tool', name: 'y' } })).json()) as {
      content: { type: string }[];
      stop_reason: string;
    };
    expect([ok.content.map((c) => c.type), ok.stop_reason]).toEqual([['tool_use'], 'tool_use']);
  });
});

describe('the queue', () => {
  /** An analyzer that waits until released (or aborted), counting its runs. */
  function gate() {
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let started!: () => void;
    const state = { runs: 0, started: new Promise<void>((r) => (started = r)) };
    const source: AnalyzerSource = {
      forTenant: async () => ({
        agentName: 'Assistant',
        settings: { enabled: true, outcomes: null, rubric: null, extraction_schema: null },
        analyzer: {
          engine: 'local',
          model: null,
          analyze: async (input): Promise<AnalysisResult> => {
            state.runs++;
            started();
            await Promise.race([
              released,
              new Promise((_, reject) => input.signal?.addEventListener('abort', () => reject(new Error('aborted')), { once: true })),
            ]);
            return new LocalAnalyzer().analyze(input);
          },
        },
      }),
    };
    return { source, state, release };
  }
  const worker = (source: AnalyzerSource, leaseMs = 60_000) =>
    new AnalysisWorker(t.deps.database.db, t.deps.calls, t.deps.analyses, source, t.deps.log, {
      concurrency: 1,
      leaseMs,
      maxAttempts: 3,
      pollMs: 50,
      sweepWindowMs: 3_600_000,
    });
  const status = async (callId: string) =>
    (await t.deps.database.db.select().from(callAnalyses).where(eq(callAnalyses.callId, callId)))[0]!;
  async function endedCall(): Promise<string> {
    const c = await t.deps.calls.start(b.tenant.id, { direction: 'web' });
    await t.deps.calls.addTurn(b.tenant.id, c.id, { speaker: 'caller', text: 'My order number is 777.' });
    await t.deps.calls.end(b.tenant.id, c.id, 'completed', 'hangup');
    await enqueueAnalysis(t.deps.database.db, b.tenant.id, c.id);
    await enqueueAnalysis(t.deps.database.db, b.tenant.id, c.id); // idempotent
    return c.id;
  }

  beforeAll(async () => {
    await t.deps.analysisWorker.stop(); // the app's own worker would take the jobs
  });

  it('runs a job once while two workers poll, and hands it back when its worker stops', async () => {
    const id = await endedCall();
    const g = gate();
    const w1 = worker(g.source);
    const w2 = worker(g.source);
    const first = w1.runOnce();
    await g.state.started;
    expect(await w2.runOnce()).toBe(false); // claimed: skipped, not run twice
    expect(await status(id)).toMatchObject({ status: 'running', lockedBy: w1.workerId, attempts: 1 });
    await w1.stop(); // aborts the job in flight: back to the queue, the attempt not counted
    await first;
    expect(await status(id)).toMatchObject({ status: 'queued', lockedBy: null, attempts: 0 });
    g.release();
    expect(await w2.runOnce()).toBe(true);
    expect(await status(id)).toMatchObject({ status: 'done', attempts: 1 });
    expect(g.state.runs).toBe(2);
    expect(await analyzedEvents(id)).toHaveLength(1);
  });

  it('takes over a job whose worker died once its lease ran out, and drops the dead worker’s late result', async () => {
    const id = await endedCall();
    const g = gate();
    const dead = worker(g.source, 60_000);
    const running = dead.runOnce();
    await g.state.started;
    // The worker "dies": its lease is not renewed (made old here), so another worker may take the job.
    await t.deps.database.db
      .update(callAnalyses)
      .set({ lockedAt: new Date(Date.now() - 10 * 60_000) })
      .where(eq(callAnalyses.callId, id));
    const heir = worker({ forTenant: async (x) => ({ ...(await g.source.forTenant(x)), analyzer: new LocalAnalyzer() }) }, 1_000);
    expect(await heir.runOnce()).toBe(true);
    expect(await status(id)).toMatchObject({ status: 'done', attempts: 2 });
    g.release();
    await running; // the old worker finishes late: its claim is gone, nothing stored or published twice
    expect(await analyzedEvents(id)).toHaveLength(1);
    expect((await status(id)).result).toMatchObject({ extracted: {}, engine: 'local' });
  });
});
