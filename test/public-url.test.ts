// No outgoing URL is built from a request header (issue 16, finding 8): a forged Host does not reach Twilio's
// Url/StatusCallback of an outbound call, the TwiML's media stream, or a browser call's stream_url. Without
// PUBLIC_BASE_URL (development) they use the address the service listens on; production refuses to start with
// Twilio or LiveKit configured and no PUBLIC_BASE_URL.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { twilioSignature } from '../src/telephony/twilio-signature.js';
import { type FakeTwilio, startFakeTwilio } from './fakes/twilio.js';
import { bearer, buildTestApp, type Session, signup, type TestApp } from './helpers.js';

const ACCOUNT = { accountSid: `AC${'2'.repeat(32)}`, authToken: 'twilio-public-url-token' };
const NUMBER = '+15550002222';
const EVIL = 'evil.example.com';

let t: TestApp;
let twilio: FakeTwilio;
let base: string;
let s: Session;

beforeAll(async () => {
  // Each outbound call ends once its TwiML is fetched: nothing here needs the media stream.
  twilio = await startFakeTwilio({ ...ACCOUNT, ringMs: 0, onCall: () => {} });
  t = await buildTestApp({
    TWILIO_ACCOUNT_SID: ACCOUNT.accountSid,
    TWILIO_AUTH_TOKEN: ACCOUNT.authToken,
    TWILIO_API_BASE_URL: twilio.baseUrl,
  });
  await t.app.listen({ port: 0, host: '127.0.0.1' });
  const addr = t.app.server.address();
  base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  s = await signup(t.app);
  const res = await t.app.inject({
    method: 'POST',
    url: '/api/v1/phone-numbers',
    headers: bearer(s.access_token),
    payload: { number: NUMBER },
  });
  expect(res.statusCode, res.body).toBe(201);
});
afterAll(async () => {
  // The fake first: its calls' callbacks stop before the app closes (a callback in flight kept app.close() waiting).
  await twilio.close();
  await t.close();
});

const forged = { host: EVIL, 'x-forwarded-host': EVIL, 'x-forwarded-proto': 'https' };

describe('absolute URLs come from configuration, never from the Host header', () => {
  it('an outbound call gives Twilio our own webhook URLs', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/v1/calls',
      headers: { ...bearer(s.access_token), ...forged },
      payload: { to: '+15557778888' },
    });
    expect(res.statusCode, res.body).toBe(201);
    const placed = [...twilio.calls.values()].find((c) => c.to === '+15557778888')!;
    expect(placed.url).toBe(`${base}/api/v1/webhooks/twilio/voice`);
    expect(placed.statusCallback).toBe(`${base}/api/v1/webhooks/twilio/status`);
  });

  it("a browser call's stream_url", async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/v1/calls/web',
      headers: { ...bearer(s.access_token), ...forged },
      payload: {},
    });
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json().stream_url).toMatch(new RegExp(`^${base.replace('http', 'ws')}/api/v1/calls/web/stream\\?token=`));
    expect(res.body).not.toContain(EVIL);
  });

  it("the voice webhook's TwiML (signed for our URL, sent with another Host)", async () => {
    const params = {
      CallSid: `CA${'3'.repeat(32)}`,
      AccountSid: ACCOUNT.accountSid,
      From: '+15551230000',
      To: NUMBER,
      CallStatus: 'ringing',
      Direction: 'inbound',
    };
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/v1/webhooks/twilio/voice',
      headers: {
        ...forged,
        'content-type': 'application/x-www-form-urlencoded',
        'x-twilio-signature': twilioSignature(ACCOUNT.authToken, `${base}/api/v1/webhooks/twilio/voice`, params),
      },
      payload: new URLSearchParams(params).toString(),
    });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.body).toContain(`${base.replace('http', 'ws')}/api/v1/voice/twilio/stream`);
    expect(res.body).not.toContain(EVIL);
  });
});

describe('production configuration', () => {
  const prod = { NODE_ENV: 'production', SECRET_KEY: 's'.repeat(40) };
  it('refuses Twilio or LiveKit without PUBLIC_BASE_URL, naming it', () => {
    expect(() => loadConfig({ ...prod, TWILIO_ACCOUNT_SID: ACCOUNT.accountSid, TWILIO_AUTH_TOKEN: 'x' })).toThrow(
      /PUBLIC_BASE_URL: required/,
    );
    expect(() => loadConfig({ ...prod, LIVEKIT_URL: 'wss://lk.example.com', LIVEKIT_API_KEY: 'k', LIVEKIT_API_SECRET: 's' })).toThrow(
      /PUBLIC_BASE_URL: required/,
    );
    expect(
      loadConfig({ ...prod, TWILIO_ACCOUNT_SID: ACCOUNT.accountSid, TWILIO_AUTH_TOKEN: 'x', PUBLIC_BASE_URL: 'https://voice.example.com/' })
        .publicBaseUrl,
    ).toBe('https://voice.example.com');
    // Without telephony nothing needs it.
    expect(loadConfig(prod).publicBaseUrl).toBeUndefined();
  });
});
