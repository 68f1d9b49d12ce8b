// `metadata` and `variables` on the calls a tenant starts (POST /api/v1/calls, POST /api/v1/calls/web): metadata is
// stored, returned with the call and sent in call.started and call.ended; variables fill `{{name}}` in the greeting
// and prompt of that call only; both are bounded.
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { webhookEvents } from '../src/db/schema.js';
import { MemoryTransport } from '../src/voice/transports/memory.js';
import { type FakeDeepgram, startFakeDeepgram } from './fakes/deepgram.js';
import { type FakeTwilio, startFakeTwilio } from './fakes/twilio.js';
import { buildTestApp, call, type Session, signup, type TestApp, twoTenants, waitFor } from './helpers.js';

const ACCOUNT = { accountSid: `AC${'7'.repeat(32)}`, authToken: 'twilio-test-auth-token' };
let t: TestApp;
let twilio: FakeTwilio;
let deepgram: FakeDeepgram;
let a: Session;
let b: Session;

beforeAll(async () => {
  deepgram = await startFakeDeepgram({});
  // Outbound calls ring long enough for the test: nobody answers them here.
  twilio = await startFakeTwilio({ ...ACCOUNT, ringMs: 120_000, incomingNumbers: ['+15550006666'] });
  t = await buildTestApp({
    TWILIO_ACCOUNT_SID: ACCOUNT.accountSid,
    TWILIO_AUTH_TOKEN: ACCOUNT.authToken,
    TWILIO_API_BASE_URL: twilio.baseUrl,
  });
  ({ a, b } = await twoTenants(t.app));
  const put = await call(t.app, 'PUT', '/api/v1/settings/tenant', a.access_token, {
    greeting: 'Hello {{first_name}}, this is {{clinic}} about {{unknown_thing}}.',
    system_prompt: 'The caller is {{first_name}}.',
    providers: { stt: { provider: 'deepgram' } },
    provider_keys: { deepgram: deepgram.apiKey },
  });
  expect(put.statusCode, put.body).toBe(200);
});
afterAll(async () => {
  await t.close();
  await twilio.close();
  await deepgram.close();
});

const publishedData = async (callId: string, type: string) =>
  (
    await t.deps.database.db
      .select({ data: webhookEvents.data })
      .from(webhookEvents)
      .where(and(eq(webhookEvents.callId, callId), eq(webhookEvents.type, type)))
  ).map((r) => r.data);

const metadata = { crm_id: 'c_123', campaign: { name: 'recall', wave: 2 } };
const variables = { first_name: 'Ada', clinic: 'Sunrise {{first_name}}' };

describe('metadata and variables', () => {
  it('a web call: metadata on the call and in its webhooks; the greeting filled once, unknown placeholders kept', async () => {
    const res = await call(t.app, 'POST', '/api/v1/calls/web', a.access_token, { metadata, variables });
    expect(res.statusCode, res.body).toBe(201);
    const callId = res.json().call_id as string;
    expect((await call(t.app, 'GET', `/api/v1/calls/${callId}`, a.access_token)).json().metadata).toEqual(metadata);
    expect(await publishedData(callId, 'call.started')).toEqual([expect.objectContaining({ metadata })]);

    const parts = await t.deps.providers.voiceFor(a.tenant.id, { sampleRate: 16000, variables });
    expect(parts.settings.system_prompt).toBe('The caller is Ada.');

    const transport = new MemoryTransport(16000);
    const running = t.deps.voice.run(a.tenant.id, callId, transport);
    const greeting = await waitFor('the greeting', async () => {
      const items = (await call(t.app, 'GET', `/api/v1/calls/${callId}/transcript`, a.access_token)).json().items;
      return items[0]?.text as string | undefined;
    });
    // A value is plain text: `{{first_name}}` inside `clinic` is not expanded again.
    expect(greeting).toBe('Hello Ada, this is Sunrise {{first_name}} about {{unknown_thing}}.');
    transport.hangup();
    await running;
    expect(await publishedData(callId, 'call.ended')).toEqual([expect.objectContaining({ metadata })]);
    const list = (await call(t.app, 'GET', '/api/v1/calls?direction=web', a.access_token)).json();
    expect(list.items.find((c: { id: string }) => c.id === callId).metadata).toEqual(metadata);
  }, 60_000);

  it('an outbound call stores both; a call without them has {} metadata', async () => {
    expect((await call(t.app, 'POST', '/api/v1/phone-numbers', a.access_token, { number: '+15550006666' })).statusCode).toBe(201);
    const res = await call(t.app, 'POST', '/api/v1/calls', a.access_token, { to: '+14155550123', metadata, variables });
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json().metadata).toEqual(metadata);
    const row = await t.deps.calls.get(a.tenant.id, res.json().id);
    expect(row.variables).toEqual(variables);
    expect(await publishedData(row.id, 'call.started')).toEqual([expect.objectContaining({ metadata })]);
    const plain = await call(t.app, 'POST', '/api/v1/calls/web', b.access_token, {});
    expect((await call(t.app, 'GET', `/api/v1/calls/${plain.json().call_id}`, b.access_token)).json().metadata).toEqual({});
    // Another tenant reads neither.
    expect((await call(t.app, 'GET', `/api/v1/calls/${row.id}`, b.access_token)).statusCode).toBe(404);
  });

  it('refuses metadata and variables past their bounds (422, naming the field)', async () => {
    const s = await signup(t.app);
    const tooMany = Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, i]));
    for (const body of [
      { metadata: tooMany },
      { metadata: { k: 'x'.repeat(1001) } },
      { metadata: ['not', 'an', 'object'] },
      { variables: { 'first-name': 'Ada' } },
      { variables: { first_name: 42 } },
      { variables: { first_name: 'x'.repeat(1001) } },
    ]) {
      const res = await call(t.app, 'POST', '/api/v1/calls/web', s.access_token, body);
      expect([res.statusCode, res.json().error.code], JSON.stringify(body)).toEqual([422, 'validation_error']);
      expect(res.json().error.details[0].field).toMatch(/^body\.(metadata|variables)/);
    }
  });
});
