// An outbound call Twilio does not place says why, the same way in the API error (a stable code), the log line and
// the call's `call.ended` event: Twilio never reached (a network error), our credentials refused (401), or Twilio's
// own error code and message (21211 invalid 'To'). The fake answers with Twilio's error JSON ({code, message,
// more_info, status}).
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeTwilio, startFakeTwilio } from './fakes/twilio.js';
import { buildTestApp, call, type Session, signup, type TestApp } from './helpers.js';

const ACCOUNT = { accountSid: `AC${'4'.repeat(32)}`, authToken: 'outbound-failures-token' };
let numbers = 0;

/** A port nothing listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as { port: number };
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function tenantWithNumber(t: TestApp): Promise<Session> {
  const s = await signup(t.app);
  expect((await call(t.app, 'POST', '/api/v1/phone-numbers', s.access_token, { number: `+1555010400${numbers++}` })).statusCode).toBe(201);
  return s;
}

/** The call's end as its events record it, and the log line about it. */
async function endOf(t: TestApp, s: Session): Promise<{ status: string; reason: string; log: Record<string, unknown> }> {
  const list = (await call(t.app, 'GET', '/api/v1/calls?direction=outbound', s.access_token)).json().items;
  const id = list[0].id as string;
  const events = (await call(t.app, 'GET', `/api/v1/calls/${id}/events`, s.access_token)).json().items as {
    type: string;
    data: { status: string; reason: string };
  }[];
  const ended = events.find((e) => e.type === 'call.ended')!;
  const line = t.logs
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .find((l) => l.callId === id && /outbound call not placed/.test(String(l.msg)));
  return { ...ended.data, log: line ?? {} };
}

describe('outbound call failures', () => {
  let twilio: FakeTwilio;
  let t: TestApp;
  let unreachable: TestApp;
  beforeAll(async () => {
    twilio = await startFakeTwilio(ACCOUNT);
    t = await buildTestApp({
      TWILIO_ACCOUNT_SID: ACCOUNT.accountSid,
      TWILIO_AUTH_TOKEN: ACCOUNT.authToken,
      TWILIO_API_BASE_URL: twilio.baseUrl,
    });
    unreachable = await buildTestApp({
      TWILIO_ACCOUNT_SID: ACCOUNT.accountSid,
      TWILIO_AUTH_TOKEN: ACCOUNT.authToken,
      TWILIO_API_BASE_URL: `http://127.0.0.1:${await closedPort()}`,
    });
  });
  afterAll(async () => {
    await t?.close();
    await unreachable?.close();
    await twilio?.close();
  });

  it("Twilio's own error: 422 call_rejected with its code and message; the event and the log say the same", async () => {
    const s = await tenantWithNumber(t);
    twilio.fail({ status: 400, code: 21211, message: "The 'To' number +15550000000 is not a valid phone number." });
    const res = await call(t.app, 'POST', '/api/v1/calls', s.access_token, { to: '+15550000000' });
    expect(res.statusCode).toBe(422);
    expect(res.json().error).toMatchObject({
      code: 'call_rejected',
      message:
        "Twilio refused the call: 21211 The 'To' number +15550000000 is not a valid phone number. (https://www.twilio.com/docs/errors/21211)",
    });
    const end = await endOf(t, s);
    expect(end).toMatchObject({
      status: 'failed',
      reason: "twilio refused the call (21211 The 'To' number +15550000000 is not a valid phone number.)",
    });
    expect(end.log).toMatchObject({ level: 40, twilioStatus: 400, twilioCode: 21211 });
  });

  it('Twilio refusing the platform credentials (401): 502 twilio_auth_failed naming the variables, not "try again"', async () => {
    const s = await tenantWithNumber(t);
    twilio.fail({ status: 401, code: 20003, message: 'Authenticate' });
    const res = await call(t.app, 'POST', '/api/v1/calls', s.access_token, { to: '+15557654321' });
    expect(res.statusCode).toBe(502);
    expect(res.json().error.code).toBe('twilio_auth_failed');
    expect(res.json().error.message).toContain('20003 Authenticate');
    expect(res.json().error.message).toContain('TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN');
    const end = await endOf(t, s);
    expect(end).toMatchObject({ status: 'failed', reason: 'twilio authentication refused (20003 Authenticate)' });
    expect(end.log).toMatchObject({ twilioStatus: 401, twilioCode: 20003 });
  });

  it('Twilio never reached: 502 twilio_unreachable with the network error; the event does not claim Twilio refused', async () => {
    const s = await tenantWithNumber(unreachable);
    const res = await call(unreachable.app, 'POST', '/api/v1/calls', s.access_token, { to: '+15557654321' });
    expect(res.statusCode).toBe(502);
    expect(res.json().error).toMatchObject({
      code: 'twilio_unreachable',
      message: 'Twilio could not be reached (ECONNREFUSED); the call was not placed: try again',
    });
    const end = await endOf(unreachable, s);
    expect(end).toMatchObject({ status: 'failed', reason: 'twilio unreachable (ECONNREFUSED)' });
    expect(end.reason).not.toContain('refused the call');
    expect(end.log.msg).toBe('outbound call not placed: twilio unreachable (ECONNREFUSED)');
  });
});
