// Media sockets against hostile or revoked callers, through the real app: a browser flooding audio faster than
// real time is closed (1008) and its recording is no longer than the call; a call token opens one socket only
// (browser and Twilio); a suspended tenant's token opens nothing and its live call ends on suspension; a
// deactivated user's web call ends too.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { TWILIO_STREAM_PATH } from '../src/telephony/telephony.js';
import { CallTokenService } from '../src/services/call-tokens.js';
import { RECORDING_SLACK_MS } from '../src/voice/recording.js';
import { type FakeDeepgram, startFakeDeepgram } from './fakes/deepgram.js';
import { bearer, buildTestApp, type Session, signup, type TestApp, uniqueEmail, waitFor } from './helpers.js';

const ADMIN_EMAIL = 'ops@platform.example';
const ADMIN_PASSWORD = 'platform admin password';
let t: TestApp;
let port: number;
let root: string;
let deepgram: FakeDeepgram;

beforeAll(async () => {
  deepgram = await startFakeDeepgram({});
  t = await buildTestApp({ PLATFORM_ADMIN_EMAIL: ADMIN_EMAIL, PLATFORM_ADMIN_PASSWORD: ADMIN_PASSWORD, DEEPGRAM_BASE_URL: deepgram.url });
  await t.app.listen({ port: 0, host: '127.0.0.1' });
  const addr = t.app.server.address();
  port = typeof addr === 'object' && addr ? addr.port : 0;
  root = (
    await t.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email: ADMIN_EMAIL, password: ADMIN_PASSWORD } })
  ).json().access_token;
});
afterAll(async () => {
  await t.close();
  await deepgram.close();
});

/** A tenant whose calls hear through the Deepgram fake (no local recogniser needed) and speak with espeak-ng. */
async function tenant(): Promise<Session> {
  const s = await signup(t.app);
  const put = await t.app.inject({
    method: 'PUT',
    url: '/api/v1/settings/tenant',
    headers: bearer(s.access_token),
    payload: {
      greeting: 'Hello.',
      providers: { stt: { provider: 'deepgram', model: 'nova-3' } },
      provider_keys: { deepgram: deepgram.apiKey },
    },
  });
  expect(put.statusCode, put.body).toBe(200);
  return s;
}

const events = async (tenantId: string, callId: string) =>
  (await t.deps.calls.events(tenantId, callId)).map((e) => ({ type: e.type, data: e.extraData as Record<string, unknown> }));
const ended = (tenantId: string, callId: string) =>
  waitFor('call ended', async () => {
    const row = await t.deps.calls.get(tenantId, callId);
    return row.endedAt ? row : undefined;
  });

async function webCall(token: string) {
  const started = await t.app.inject({ method: 'POST', url: '/api/v1/calls/web', headers: bearer(token), payload: {} });
  expect(started.statusCode, started.body).toBe(201);
  return started.json() as { call_id: string; token: string };
}

/** A browser on the call's socket: what it receives, and how the socket closed. */
function browser(callToken: string) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/api/v1/calls/web/stream?token=${encodeURIComponent(callToken)}`);
  let agentBytes = 0;
  const control: Record<string, unknown>[] = [];
  ws.on('message', (data, isBinary) =>
    isBinary ? (agentBytes += (data as Buffer).length) : control.push(JSON.parse(String(data)) as Record<string, unknown>),
  );
  const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
  const opened = new Promise<boolean>((r) => {
    ws.once('open', () => r(true));
    ws.once('error', () => r(false));
  });
  return { ws, closed, opened, control, agentBytes: () => agentBytes };
}

/** Sends 20 ms of silence every 20 ms, like a microphone, until the socket closes. */
function microphone(ws: WebSocket) {
  const timer = setInterval(() => ws.readyState === ws.OPEN && ws.send(Buffer.alloc(640)), 20);
  ws.once('close', () => clearInterval(timer));
}

describe('browser call flooding audio faster than real time', () => {
  it('is closed with 1008, the call ends as a policy violation, and the recording is no longer than the call', async () => {
    const s = await tenant();
    const { call_id: callId, token } = await webCall(s.access_token);
    const b = browser(token);
    await b.opened;
    const openedAt = performance.now();
    const second = Buffer.alloc(32000, 0x11);
    // 1 s PCM messages as fast as the socket takes them (the red team's 7.4-hour recording from 45 s).
    for (let i = 0; i < 200 && b.ws.readyState === b.ws.OPEN; i++) b.ws.send(second);
    expect(await b.closed).toBe(1008);
    expect(b.control).toContainEqual({ type: 'error', error: { code: 'media_policy', message: 'audio sent faster than real time' } });
    const row = await ended(s.tenant.id, callId);
    const wallMs = performance.now() - openedAt;
    expect(row.status).toBe('failed');
    const evs = await events(s.tenant.id, callId);
    expect(evs.find((e) => e.type === 'media.policy_violation')?.data).toEqual({ reason: 'audio sent faster than real time' });
    expect(evs.find((e) => e.type === 'call.ended')?.data.reason).toBe('media policy: audio sent faster than real time');
    // The recording is stored before the call is reported ended. How much of the taken audio the session read before
    // the refusal depends on timing (none at all: no recording); whatever it is, it is not longer than the call.
    expect(row.recordingMs ?? 0).toBeLessThanOrEqual(wallMs + RECORDING_SLACK_MS);
    const saved = evs.find((e) => e.type === 'recording.saved');
    if (saved) expect(saved.data.duration_ms).toBe(row.recordingMs);
  }, 60_000);
});

describe('call tokens are single-use', () => {
  it('a second browser socket with the same token is refused with 1008; the first call goes on', async () => {
    const s = await tenant();
    const { call_id: callId, token } = await webCall(s.access_token);
    const first = browser(token);
    expect(await first.opened).toBe(true);
    microphone(first.ws);
    await waitFor('the first socket holds the call', async () => (t.deps.voice.active > 0 ? true : undefined));
    const again = browser(token);
    expect(await again.closed).toBe(1008);
    expect((await events(s.tenant.id, callId)).some((e) => e.type === 'media.token_reused')).toBe(true);
    // The first socket still carries the call: the agent's greeting reaches it.
    await waitFor('agent audio on the first socket', async () => (first.agentBytes() > 0 ? true : undefined), 20_000);
    expect(first.ws.readyState).toBe(first.ws.OPEN);
    // The page is told as the greeting goes out (the web-call protocol's live messages, lib/live-messages.ts).
    expect(first.control).toContainEqual({ type: 'agent.state', state: 'speaking' });
    expect(first.control).toContainEqual({ type: 'agent.sentence', text: 'Hello.' });
    first.ws.send(JSON.stringify({ type: 'end' }));
    expect(await first.closed).toBe(1000);
    expect((await ended(s.tenant.id, callId)).status).toBe('completed');
  }, 60_000);

  it('a Twilio stream token opens one stream: the same start message on a second socket is refused with 1008', async () => {
    const s = await tenant();
    const callSid = `CA${'7'.repeat(32)}`;
    const row = await t.deps.calls.open(s.tenant.id, {
      direction: 'inbound',
      status: 'in_progress',
      fromNumber: '+15557654321',
      toNumber: '+15550001111',
      providerCallSid: callSid,
    });
    const { token } = await new CallTokenService(t.deps.config.secretKey, t.deps.cache).sign({
      tenantId: s.tenant.id,
      callId: row.id,
      channel: 'twilio',
    });
    const stream = () => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}${TWILIO_STREAM_PATH}`);
      const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
      ws.once('open', () => {
        ws.send(JSON.stringify({ event: 'connected', protocol: 'Call', version: '1.0.0' }));
        const streamSid = `MZ${'1'.repeat(32)}`;
        ws.send(
          JSON.stringify({
            event: 'start',
            streamSid,
            start: {
              streamSid,
              accountSid: `AC${'1'.repeat(32)}`,
              callSid,
              tracks: ['inbound'],
              customParameters: { token },
              mediaFormat: { encoding: 'audio/x-mulaw', sampleRate: 8000, channels: 1 },
            },
          }),
        );
      });
      return { ws, closed };
    };
    const first = stream();
    await waitFor('the first stream holds the call', async () => (t.deps.voice.active > 0 ? true : undefined));
    const second = stream();
    expect(await second.closed).toBe(1008);
    expect(first.ws.readyState).toBe(first.ws.OPEN);
    first.ws.send(JSON.stringify({ event: 'stop', streamSid: `MZ${'1'.repeat(32)}` }));
    await ended(s.tenant.id, row.id);
    first.ws.close();
  }, 60_000);
});

describe('suspended tenant, deactivated user', () => {
  it('a token issued before the suspension opens nothing (1008, the call ends); a live call ends when its tenant is suspended', async () => {
    const s = await tenant();
    const live = await webCall(s.access_token);
    const pending = await webCall(s.access_token);
    const b = browser(live.token);
    expect(await b.opened).toBe(true);
    microphone(b.ws);
    await waitFor('call live', async () =>
      (await events(s.tenant.id, live.call_id)).length && t.deps.voice.active > 0 ? true : undefined,
    );
    await waitFor('agent audio', async () => (b.agentBytes() > 0 ? true : undefined), 20_000);

    const sus = await t.app.inject({
      method: 'POST',
      url: `/api/v1/admin/tenants/${s.tenant.id}/suspend`,
      headers: bearer(root),
      payload: { reason: 'abuse' },
    });
    expect(sus.statusCode, sus.body).toBe(200);
    // The live call: ended wherever it runs, its socket closed.
    expect(await b.closed).toBe(1000);
    const row = await ended(s.tenant.id, live.call_id);
    expect((await events(s.tenant.id, row.id)).find((e) => e.type === 'call.ended')?.data.reason).toBe('tenant suspended');

    // The token handed out before: refused, and its call is over.
    const late = browser(pending.token);
    expect(await late.closed).toBe(1008);
    const refused = await ended(s.tenant.id, pending.call_id);
    expect(refused.status).toBe('failed');
    expect((await events(s.tenant.id, refused.id)).find((e) => e.type === 'call.refused')?.data).toEqual({ reason: 'tenant suspended' });
  }, 60_000);

  it('a deactivated user’s live web call ends, and the user’s unused token opens nothing', async () => {
    const admin = await tenant();
    const email = uniqueEmail('member');
    const invited = await t.app.inject({
      method: 'POST',
      url: '/api/v1/users',
      headers: bearer(admin.access_token),
      payload: { email, password: 'member password 123', role: 'member' },
    });
    expect(invited.statusCode, invited.body).toBe(201);
    const member = (
      await t.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email, password: 'member password 123' } })
    ).json() as Session;
    const live = await webCall(member.access_token);
    const pending = await webCall(member.access_token);
    // Another user's call of the same tenant is not touched.
    const other = await webCall(admin.access_token);
    const b = browser(live.token);
    const o = browser(other.token);
    expect(await b.opened).toBe(true);
    expect(await o.opened).toBe(true);
    microphone(b.ws);
    microphone(o.ws);
    await waitFor('both calls live', async () => (t.deps.voice.active >= 2 ? true : undefined));

    const off = await t.app.inject({ method: 'DELETE', url: `/api/v1/users/${invited.json().id}`, headers: bearer(admin.access_token) });
    expect(off.statusCode, off.body).toBe(200);
    expect(await b.closed).toBe(1000);
    expect((await events(admin.tenant.id, live.call_id)).find((e) => e.type === 'hangup.requested')?.data.reason).toBe('user deactivated');
    expect(await browser(pending.token).closed).toBe(1008);
    expect(o.ws.readyState).toBe(o.ws.OPEN);
    o.ws.send(JSON.stringify({ type: 'end' }));
    expect(await o.closed).toBe(1000);
  }, 60_000);
});
