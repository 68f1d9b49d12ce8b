// The call events' catalog (lib/call-events.ts) as tenants see it: every type published in /openapi.json with its
// data, events read back under the catalog's names (rows from before it included), and the events a call really
// writes valid against the catalog.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callEvents } from '../src/db/schema.js';
import { CALL_EVENT_TYPES, callEventSchemas, isCallEventType, LEGACY_CALL_EVENT_NAMES } from '../src/lib/call-events.js';
import { LIVEKIT_WEBHOOK_EVENTS } from '../src/telephony/livekit-webhook.js';
import { buildTestApp, call, type Session, signup, type TestApp } from './helpers.js';

let t: TestApp;
let s: Session;
beforeAll(async () => {
  t = await buildTestApp();
  s = await signup(t.app);
});
afterAll(() => t.close());

describe('the catalog', () => {
  it('names every type <subject>.<what>, says what each means, and maps old names and LiveKit webhooks onto it', () => {
    for (const type of CALL_EVENT_TYPES) {
      expect(type).toMatch(/^[a-z]+\.[a-z_]+$/);
      expect(callEventSchemas[type].description, type).toBeTruthy();
    }
    for (const type of [...LEGACY_CALL_EVENT_NAMES.values(), ...Object.values(LIVEKIT_WEBHOOK_EVENTS)])
      expect(isCallEventType(type)).toBe(true);
    expect(isCallEventType('barge_in')).toBe(false);
    expect(isCallEventType('constructor')).toBe(false);
  });
});

describe('GET /api/v1/calls/{id}/events', () => {
  it('is published in /openapi.json as one variant per event type, with its data', async () => {
    const spec = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json();
    const item = spec.paths['/api/v1/calls/{id}/events'].get.responses['200'].content['application/json'].schema.properties.items.items;
    expect(item.$ref).toBe('#/components/schemas/CallEvent');
    const variants = spec.components.schemas.CallEvent.oneOf as {
      properties: { type: { enum: string[] }; data: { properties?: object } };
    }[];
    expect(variants.map((v) => v.properties.type.enum[0]).sort()).toEqual([...CALL_EVENT_TYPES].sort());
    const bargeIn = variants.find((v) => v.properties.type.enum[0] === 'turn.barge_in')!;
    expect(Object.keys(bargeIn.properties.data.properties ?? {})).toEqual(['speech_ms', 'voiced_ms']);
  });

  it('shows the events a chat session writes, valid against the catalog, and rows written before it under today’s names', async () => {
    const started = await call(t.app, 'POST', '/api/v1/chat', s.access_token, { message: 'hello' });
    expect(started.statusCode).toBe(200);
    const sessionId = started.json().session_id as string;
    // A row as the service wrote it before the catalog.
    await t.deps.database.db
      .insert(callEvents)
      .values({ tenantId: s.tenant.id, callId: sessionId, type: 'barge_in', extraData: { speech_ms: 400, voiced_ms: 300 } });

    const res = await call(t.app, 'GET', `/api/v1/calls/${sessionId}/events`, s.access_token);
    expect(res.statusCode).toBe(200);
    const items = res.json().items as { type: string; data: unknown }[];
    expect(items.map((e) => e.type)).toEqual(expect.arrayContaining(['call.started', 'turn.barge_in']));
    for (const e of items) {
      expect(isCallEventType(e.type), e.type).toBe(true);
      if (isCallEventType(e.type)) expect(callEventSchemas[e.type].safeParse(e.data).success, e.type).toBe(true);
    }
  });
});

describe('CallService.eventOnce', () => {
  it('writes an event redelivered at the same moment once (LiveKit retries its webhooks)', async () => {
    const started = await call(t.app, 'POST', '/api/v1/chat', s.access_token, { message: 'hello again' });
    const callId = started.json().session_id as string;
    const data = { livekit_event_id: 'EV_same', room: 'r1', participant_identity: 'sip_+1', participant_kind: 'SIP' };
    const wrote = await Promise.all(
      Array.from({ length: 5 }, () => t.deps.calls.eventOnce(s.tenant.id, callId, 'livekit.participant_joined', data, 'livekit_event_id')),
    );
    expect(wrote.filter(Boolean)).toHaveLength(1);
    // Another id is another event.
    expect(
      await t.deps.calls.eventOnce(
        s.tenant.id,
        callId,
        'livekit.participant_joined',
        { ...data, livekit_event_id: 'EV_other' },
        'livekit_event_id',
      ),
    ).toBe(true);
    const events = (await t.deps.calls.events(s.tenant.id, callId)).filter((e) => e.type === 'livekit.participant_joined');
    expect(events.map((e) => e.extraData.livekit_event_id).sort()).toEqual(['EV_other', 'EV_same']);
  });
});
