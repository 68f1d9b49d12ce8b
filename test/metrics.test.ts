// GET /metrics (issue 18, "Operator metrics"): the Prometheus text format, parsed line by line (HELP and TYPE for
// every family, histograms with cumulative buckets up to le="+Inf"); the token guards it; calls and turns move the
// counters and stage histograms; calls ended count by status and a closed set of reasons, providers that failed with
// no fallback count as errors; label values never leave their closed sets; and tenants never become label values
// unless the operator turns that on.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENDED_REASONS, endedReasonOf } from '../src/lib/operator-metrics.js';
import { MAX_SERIES_PER_METRIC, Counter, Registry } from '../src/lib/prometheus.js';
import { MemoryTransport } from '../src/voice/transports/memory.js';
import { type FakeDeepgram, startFakeDeepgram } from './fakes/deepgram.js';
import { bearer, buildTestApp, call, type Session, signup, type TestApp, useTestApp, waitFor } from './helpers.js';

const TOKEN = 'metrics-token-0123456789abcdef';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}
interface Family {
  help?: string;
  type?: string;
  samples: Sample[];
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const VALUE = /^(?:[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)|[+-]Inf|NaN)$/;

/** Parses the text exposition format strictly: any line that is not valid fails the test. */
function parseExposition(text: string): Map<string, Family> {
  expect(text.endsWith('\n')).toBe(true);
  const families = new Map<string, Family>();
  const family = (name: string) => {
    let f = families.get(name);
    if (!f) families.set(name, (f = { samples: [] }));
    return f;
  };
  for (const line of text.slice(0, -1).split('\n')) {
    let m = new RegExp(`^# HELP (${NAME}) (.*)$`).exec(line);
    if (m) {
      expect(family(m[1]!).help, `second HELP for ${m[1]}`).toBeUndefined();
      family(m[1]!).help = m[2]!;
      continue;
    }
    m = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`).exec(line);
    if (m) {
      const f = family(m[1]!);
      expect(f.type, `second TYPE for ${m[1]}`).toBeUndefined();
      expect(f.samples, `TYPE after samples of ${m[1]}`).toHaveLength(0);
      f.type = m[2]!;
      continue;
    }
    m = new RegExp(`^(${NAME})(?:\\{(.*)\\})? (\\S+)$`).exec(line);
    expect(m, `not a valid exposition line: ${JSON.stringify(line)}`).not.toBeNull();
    const [, name, rawLabels, rawValue] = m!;
    expect(rawValue, line).toMatch(VALUE);
    const labels: Record<string, string> = {};
    if (rawLabels) {
      const label = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/y;
      let at = 0;
      while (at < rawLabels.length) {
        label.lastIndex = at;
        const l = label.exec(rawLabels);
        expect(l, `bad labels in ${line}`).not.toBeNull();
        expect(labels[l![1]!], `label ${l![1]} twice in ${line}`).toBeUndefined();
        labels[l![1]!] = l![2]!.replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
        at = label.lastIndex;
      }
    }
    const base = families.has(name!) ? name! : name!.replace(/_(bucket|sum|count)$/, '');
    const f = families.get(base);
    expect(f?.type, `sample ${name} before its TYPE`).toBeDefined();
    if (base !== name) expect(f!.type).toBe('histogram');
    f!.samples.push({ name: name!, labels, value: rawValue === '+Inf' ? Infinity : Number(rawValue) });
  }
  for (const [name, f] of families) {
    expect(f.help, `HELP of ${name}`).toBeTruthy();
    expect(f.type, `TYPE of ${name}`).toBeDefined();
    if (f.type === 'histogram') checkHistogram(name, f);
  }
  return families;
}

function checkHistogram(name: string, f: Family) {
  const key = (labels: Record<string, string>) =>
    JSON.stringify(
      Object.entries(labels)
        .filter(([k]) => k !== 'le')
        .sort(([a], [b]) => a.localeCompare(b)),
    );
  const series = new Map<string, { buckets: [number, number][]; sum?: number; count?: number }>();
  for (const s of f.samples) {
    const k = key(s.labels);
    const entry = series.get(k) ?? { buckets: [] };
    series.set(k, entry);
    if (s.name === `${name}_bucket`) entry.buckets.push([s.labels.le === '+Inf' ? Infinity : Number(s.labels.le), s.value]);
    else if (s.name === `${name}_sum`) entry.sum = s.value;
    else if (s.name === `${name}_count`) entry.count = s.value;
    else throw new Error(`unexpected sample ${s.name} in histogram ${name}`);
  }
  for (const [k, e] of series) {
    expect(e.sum, `${name}${k} _sum`).toBeDefined();
    expect(e.count, `${name}${k} _count`).toBeDefined();
    const inf = e.buckets.find(([le]) => le === Infinity);
    expect(inf, `${name}${k} le="+Inf"`).toBeDefined();
    expect(inf![1]).toBe(e.count);
    for (let i = 1; i < e.buckets.length; i++) {
      expect(e.buckets[i]![0]).toBeGreaterThan(e.buckets[i - 1]![0]);
      expect(e.buckets[i]![1]).toBeGreaterThanOrEqual(e.buckets[i - 1]![1]);
    }
  }
}

/** The sum of the samples named `name` (a histogram's `_count` included) whose labels match `where`. */
const sum = (fams: Map<string, Family>, name: string, where: Record<string, string> = {}) =>
  (fams.get(name) ?? fams.get(name.replace(/_(bucket|sum|count)$/, '')) ?? { samples: [] }).samples
    .filter((s) => s.name === name && Object.entries(where).every(([k, v]) => s.labels[k] === v))
    .reduce((a, s) => a + s.value, 0);

async function scrape(t: TestApp) {
  const res = await t.app.inject({ method: 'GET', url: '/metrics', headers: bearer(TOKEN) });
  expect(res.statusCode, res.body).toBe(200);
  expect(res.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
  return { text: res.body, families: parseExposition(res.body) };
}

describe('the registry renders what Prometheus parses', () => {
  it('escapes label values and help text, and bounds the series of a metric', async () => {
    const r = new Registry();
    const c = r.register(new Counter('weird_total', 'Help with a \\ backslash\nand a newline', ['v']));
    c.inc({ v: 'quote " backslash \\ newline \n end' });
    const fams = parseExposition(await r.expose());
    expect(fams.get('weird_total')!.samples[0]!.labels.v).toBe('quote " backslash \\ newline \n end');
    for (let i = 0; i < MAX_SERIES_PER_METRIC + 50; i++) c.inc({ v: `value-${i}` });
    expect(parseExposition(await r.expose()).get('weird_total')!.samples).toHaveLength(MAX_SERIES_PER_METRIC);
    expect(c.dropped).toBe(51);
  });
});

describe('GET /metrics', () => {
  let deepgram: FakeDeepgram;
  beforeAll(async () => {
    deepgram = await startFakeDeepgram({});
  });
  afterAll(() => deepgram.close());
  const t = useTestApp(() => ({ METRICS_TOKEN: TOKEN, DEEPGRAM_BASE_URL: deepgram.url }));

  it('needs the token: 401 without it or with a wrong one; 404 on a deployment without METRICS_TOKEN', async () => {
    for (const headers of [{}, bearer('wrong'), bearer(`${TOKEN.slice(0, -1)}x`), { authorization: TOKEN }]) {
      const res = await t.app.inject({ method: 'GET', url: '/metrics', headers });
      expect(res.statusCode).toBe(401);
      expect(res.json().error.code).toBe('unauthorized');
      expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
    }
    // A tenant's own credential is not the operator's token either.
    const s = await signup(t.app);
    expect((await t.app.inject({ method: 'GET', url: '/metrics', headers: bearer(s.access_token) })).statusCode).toBe(401);
    const bare = await buildTestApp();
    try {
      const res = await bare.app.inject({ method: 'GET', url: '/metrics', headers: bearer(TOKEN) });
      expect(res.statusCode).toBe(404);
      expect(res.json().error.code).toBe('not_found');
    } finally {
      await bare.close();
    }
  });

  it('every family is there and valid; a chat and a web call move the call counters and the stage histograms', async () => {
    const before = (await scrape(t)).families;
    for (const name of [
      'voice_calls_active',
      'voice_calls_admitted',
      'calls_started_total',
      'calls_ended_total',
      'calls_refused_total',
      'voice_turn_stage_seconds',
      'voice_media_frame_gap_seconds',
      'provider_errors_total',
      'provider_fallbacks_total',
      'ingestion_queue_depth',
      'nodejs_eventloop_lag_seconds',
      'db_pool_connections',
    ])
      expect(before.get(name)?.type, name).toBeDefined();
    expect(
      before
        .get('ingestion_queue_depth')!
        .samples.map((s) => s.labels.status)
        .sort(),
    ).toEqual(['pending', 'processing']);
    expect(
      before
        .get('nodejs_eventloop_lag_seconds')!
        .samples.map((s) => s.labels.stat)
        .sort(),
    ).toEqual(['max', 'mean', 'p50', 'p99']);
    // The pool is the `pg` driver's (the wire pass); the embedded database has none.
    expect(before.get('db_pool_connections')!.samples.length).toBe(t.deps.database.kind === 'postgres' ? 3 : 0);

    const s = await signup(t.app);
    const chat = await call(t.app, 'POST', '/api/v1/chat', s.access_token, { message: 'What are your opening hours?' });
    expect(chat.statusCode, chat.body).toBe(200);
    await t.deps.settings.putTenant(s.tenant.id, {
      providers: { stt: { provider: 'deepgram' } },
      provider_keys: { deepgram: deepgram.apiKey },
    });
    const web = await call(t.app, 'POST', '/api/v1/calls/web', s.access_token, {});
    expect(web.statusCode, web.body).toBe(201);
    const transport = new MemoryTransport(16000);
    const running = t.deps.voice.run(s.tenant.id, web.json().call_id, transport);
    await waitFor('the call to run', async () => (t.deps.voice.active === 1 ? true : undefined));
    const during = (await scrape(t)).families;
    expect(sum(during, 'voice_calls_active')).toBe(1);
    expect(sum(during, 'voice_calls_admitted')).toBe(1);
    transport.hangup();
    await running;
    // A provider that failed mid-call and handed over (as voice-calls.ts records it).
    await t.deps.calls.event(s.tenant.id, web.json().call_id, 'provider.fallback', {
      stage: 'tts',
      provider: 'elevenlabs',
      status: 429,
      reason: 'rate_limited',
    });

    const after = (await scrape(t)).families;
    const moved = (name: string, where: Record<string, string> = {}) => sum(after, name, where) - sum(before, name, where);
    expect(moved('calls_started_total', { direction: 'chat' })).toBe(1);
    expect(moved('calls_started_total', { direction: 'web' })).toBe(1);
    expect(moved('calls_ended_total', { status: 'completed' })).toBe(1);
    // ...and why: the caller hung up (a closed set of reasons, whatever the stored words).
    expect(moved('calls_ended_total', { status: 'completed', reason: 'caller_hangup' })).toBe(1);
    expect(sum(after, 'voice_calls_active')).toBe(0);
    // The chat's agent turn: retrieval and the LLM's first token, timed.
    for (const stage of ['retrieval', 'llm_ttft']) expect(moved('voice_turn_stage_seconds_count', { stage }), stage).toBe(1);
    expect(moved('provider_fallbacks_total', { stage: 'tts', provider: 'elevenlabs' })).toBe(1);
    expect(moved('provider_errors_total', { stage: 'tts', provider: 'elevenlabs', reason: 'rate_limited' })).toBe(1);
  }, 60_000);

  it('a provider failing with no engine to take over counts as an error, not a fallback', async () => {
    const s = await signup(t.app);
    const chat = await call(t.app, 'POST', '/api/v1/chat', s.access_token, { message: 'Hello?' });
    expect(chat.statusCode, chat.body).toBe(200);
    const before = (await scrape(t)).families;
    // As CallSession records it when the last engine of a chain (or the only one) fails.
    await t.deps.calls.event(s.tenant.id, chat.json().session_id, 'provider.failed', {
      stage: 'stt',
      provider: 'deepgram',
      status: 503,
      reason: 'server_error',
    });
    const after = (await scrape(t)).families;
    const moved = (name: string, where: Record<string, string> = {}) => sum(after, name, where) - sum(before, name, where);
    expect(moved('provider_errors_total', { stage: 'stt', provider: 'deepgram', reason: 'server_error' })).toBe(1);
    expect(moved('provider_fallbacks_total')).toBe(0);
  });

  it('label values stay in their closed sets whatever the events carry: end reasons, providers, failure reasons', async () => {
    const s = await signup(t.app);
    const chat = await call(t.app, 'POST', '/api/v1/chat', s.access_token, { message: 'Hello?' });
    const callId = chat.json().session_id as string;
    // Reasons in the model's words (an agent's end_call), providers and reasons nobody knows: none becomes a label.
    for (let i = 0; i < 40; i++) {
      t.deps.metrics.callEvent(s.tenant.id, 'call.ended', {
        status: 'completed',
        reason: `agent ended the call: the caller said goodbye ${randomUUID()}`,
      });
      t.deps.metrics.callEvent(s.tenant.id, 'call.ended', { status: `weird-${i}`, reason: 'caller hung up' });
      t.deps.metrics.callEvent(s.tenant.id, 'provider.failed', { stage: `s${i}`, provider: `Not A Name ${i}`, reason: `r${i}` });
    }
    await t.deps.calls.event(s.tenant.id, callId, 'provider.fallback', {
      stage: 'llm',
      provider: 'x'.repeat(60),
      status: null,
      reason: 'error',
    });
    const { families } = await scrape(t);
    const labelValues = (name: string, label: string) => new Set(families.get(name)!.samples.map((x) => x.labels[label]));
    for (const v of labelValues('calls_ended_total', 'reason')) expect(ENDED_REASONS as readonly string[]).toContain(v);
    for (const v of labelValues('calls_ended_total', 'status'))
      expect(['queued', 'ringing', 'in_progress', 'completed', 'failed', 'busy', 'no_answer', 'canceled', 'other']).toContain(v);
    for (const v of labelValues('provider_errors_total', 'stage')) expect(['stt', 'llm', 'tts', 'other']).toContain(v);
    for (const v of labelValues('provider_errors_total', 'provider')) expect(v).toMatch(/^[a-z0-9][a-z0-9_.-]{0,39}$/);
    expect(sum(families, 'calls_ended_total', { status: 'completed', reason: 'agent' })).toBeGreaterThanOrEqual(40);
    expect(sum(families, 'calls_ended_total', { status: 'other', reason: 'caller_hangup' })).toBeGreaterThanOrEqual(40);
    expect(families.get('calls_ended_total')!.samples.length).toBeLessThanOrEqual(9 * ENDED_REASONS.length);
    expect(families.get('provider_errors_total')!.samples.length).toBeLessThan(50);
  });

  it('end reasons as stored map onto their labels', () => {
    expect(endedReasonOf('caller hung up')).toBe('caller_hangup');
    expect(endedReasonOf('twilio: completed')).toBe('caller_hangup');
    expect(endedReasonOf('twilio: no-answer')).toBe('telephony');
    expect(endedReasonOf('concurrency_limit: This account has 2 concurrent calls, its limit (2)')).toBe('refused');
    expect(endedReasonOf('budget_exceeded: The monthly minutes are used up')).toBe('refused');
    expect(endedReasonOf('media policy: audio faster than real time')).toBe('media_policy');
    expect(endedReasonOf('speech-to-text failed')).toBe('provider_error');
    expect(endedReasonOf('maximum duration reached')).toBe('max_duration');
    expect(endedReasonOf('transferred')).toBe('transferred');
    expect(endedReasonOf('instance_lost')).toBe('instance_lost');
    expect(endedReasonOf('agent ended the call: The caller has what they needed')).toBe('agent');
    expect(endedReasonOf('agent ended the call')).toBe('agent');
    expect(endedReasonOf('The caller has what they needed')).toBe('other');
  });

  it('queue gauges come from the sources they are pointed at, read at most once per few seconds', async () => {
    let reads = 0;
    t.deps.metrics.setSource('webhookBacklog', async () => {
      reads += 1;
      return 7;
    });
    t.deps.metrics.setSource('analysisQueue', async () => {
      throw new Error('no such table');
    });
    // The delivery worker times each attempt.
    t.deps.metrics.webhookDelivery('delivered', 0.3);
    const first = await scrape(t);
    const second = await scrape(t);
    expect(sum(first.families, 'webhook_delivery_seconds_count', { outcome: 'delivered' })).toBe(1);
    expect(sum(first.families, 'webhook_delivery_seconds_bucket', { outcome: 'delivered', le: '0.5' })).toBe(1);
    expect(sum(first.families, 'webhook_delivery_seconds_bucket', { outcome: 'delivered', le: '0.25' })).toBe(0);
    expect(sum(first.families, 'webhook_backlog')).toBe(7);
    expect(sum(second.families, 'webhook_backlog')).toBe(7);
    expect(reads).toBe(1);
    // A source that fails leaves its gauge out of the scrape; the rest is served.
    expect(first.families.has('analysis_queue_depth')).toBe(false);
    expect(first.families.has('calls_started_total')).toBe(true);
  });

  it('no tenant label: calls of many tenants add no series', async () => {
    const chatOnce = async (s: Session) =>
      expect((await call(t.app, 'POST', '/api/v1/chat', s.access_token, { message: 'Hello?' })).statusCode).toBe(200);
    await chatOnce(await signup(t.app));
    const { text: one } = await scrape(t);
    for (let i = 0; i < 12; i++) await chatOnce(await signup(t.app));
    const { text: many, families } = await scrape(t);
    const series = (text: string) => text.split('\n').filter((l) => l && !l.startsWith('#')).length;
    expect(series(many)).toBe(series(one));
    expect(series(many)).toBeLessThan(400);
    expect(many).not.toMatch(/tenant_id/);
    for (const f of families.values()) for (const s of f.samples) expect(Object.keys(s.labels)).not.toContain('tenant_id');
  }, 60_000);
});

describe('GET /metrics with METRICS_TENANT_LABELS', () => {
  const t = useTestApp({ METRICS_TOKEN: TOKEN, METRICS_TENANT_LABELS: 'true' });

  it('the call counters carry tenant_id, and only they', async () => {
    const tenants = [await signup(t.app), await signup(t.app)];
    for (const s of tenants) expect((await call(t.app, 'POST', '/api/v1/chat', s.access_token, { message: 'Hi' })).statusCode).toBe(200);
    const { families } = await scrape(t);
    for (const s of tenants) expect(sum(families, 'calls_started_total', { tenant_id: s.tenant.id, direction: 'chat' })).toBe(1);
    for (const [name, f] of families)
      if (!['calls_started_total', 'calls_ended_total'].includes(name))
        for (const s of f.samples) expect(Object.keys(s.labels), name).not.toContain('tenant_id');
    expect(sum(families, 'calls_started_total', { tenant_id: randomUUID() })).toBe(0);
  });
});
