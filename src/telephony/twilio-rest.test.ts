// TwilioRest through the real twilio SDK against the local fake: calls placed, fetched, redirected and hung up;
// Twilio's errors mapped to ProviderError; the fake's signed callbacks; and the fake's own strictness.
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { inspect } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { startFakeTwilio, type FakeCall, type FakeTwilio, type FakeTwilioOptions } from '../../test/fakes/twilio.js';
import { ProviderError } from '../lib/provider-error.js';
import { TwilioError, TwilioRest } from './twilio-rest.js';
import { verifyTwilioSignature } from './twilio-signature.js';
import { connectStream, dialNumber } from './twiml.js';

const ACCOUNT = `AC${randomBytes(16).toString('hex')}`;
const TOKEN = randomBytes(16).toString('hex');
const AGENT = '+15550001111';
const CALLER = '+15550002222';
const STREAM_TWIML = connectStream('wss://agent.test/twilio/media', { callId: 'c_1' });

interface Hook {
  url: string;
  signature: string | undefined;
  params: Record<string, string>;
}

/** Our server's side: records every webhook the fake sends and answers the voice webhook with a stream. */
async function startReceiver() {
  const hooks: Hook[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      const url = `${base}${req.url}`;
      hooks.push({
        url,
        signature: req.headers['x-twilio-signature'] as string | undefined,
        params: Object.fromEntries(new URLSearchParams(body)),
      });
      if (req.url?.startsWith('/voice')) res.writeHead(200, { 'content-type': 'text/xml' }).end(STREAM_TWIML);
      else res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    voiceUrl: `${base}/voice?tenant=t_1`,
    statusUrl: `${base}/status`,
    hooks,
    status: () => hooks.filter((h) => h.url.startsWith(`${base}/status`)),
    voice: () => hooks.filter((h) => h.url.startsWith(`${base}/voice`)),
    close: () => new Promise((r) => server.close(r)),
  };
}

async function waitFor(cond: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await sleep(5);
  }
}

async function failure(p: Promise<unknown>): Promise<TwilioError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TwilioError);
  return err as TwilioError;
}

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** A fake whose calls stay up until hung up or redirected, remembering what each one was handed. */
async function setup(extra: Partial<FakeTwilioOptions> = {}) {
  const played: { call: FakeCall; twiml: string; signal: AbortSignal }[] = [];
  const fake = await startFakeTwilio({
    accountSid: ACCOUNT,
    authToken: TOKEN,
    onCall: (call, twiml, signal) => {
      played.push({ call, twiml, signal });
      return new Promise<void>((r) => signal.addEventListener('abort', () => r(), { once: true }));
    },
    ...extra,
  });
  const receiver = await startReceiver();
  cleanups.push(
    () => receiver.close(),
    () => fake.close(),
  );
  const rest = new TwilioRest({ accountSid: ACCOUNT, authToken: TOKEN, apiBaseUrl: fake.baseUrl });
  const place = () => rest.createCall({ to: CALLER, from: AGENT, url: receiver.voiceUrl, statusCallback: receiver.statusUrl });
  return { fake, receiver, rest, played, place };
}

describe('TwilioRest against the fake', () => {
  it('places a call, sees it answered with our TwiML, and hangs it up', async () => {
    const { fake, receiver, rest, played, place } = await setup();
    const created = await place();
    expect(created.sid).toMatch(/^CA[0-9a-f]{32}$/);
    expect(created.status).toBe('queued');

    // The SDK really went to the fake, form-encoded, with every progress event asked for separately.
    const create = fake.requests[0]!;
    expect(create.path).toBe(`/2010-04-01/Accounts/${ACCOUNT}/Calls.json`);
    expect(create.params).toMatchObject({ To: CALLER, From: AGENT, Url: receiver.voiceUrl, StatusCallback: receiver.statusUrl });
    expect(create.params.StatusCallbackEvent).toEqual(['initiated', 'ringing', 'answered', 'completed']);

    await waitFor(() => played.length === 1);
    expect(played[0]!.twiml).toBe(STREAM_TWIML);
    expect(await rest.fetchCall(created.sid)).toEqual({
      sid: created.sid,
      status: 'in-progress',
      direction: 'outbound-api',
      from: AGENT,
      to: CALLER,
      durationMs: null,
    });

    await rest.hangup(created.sid);
    expect(played[0]!.signal.aborted).toBe(true);
    await fake.settled(created.sid);
    const ended = await rest.fetchCall(created.sid);
    expect(ended.status).toBe('completed');
    expect(ended.durationMs).toBe(0); // whole seconds, and this call lasted milliseconds

    const voice = receiver.voice();
    expect(voice).toHaveLength(1);
    expect(voice[0]!.params).toMatchObject({
      AccountSid: ACCOUNT,
      CallSid: created.sid,
      CallStatus: 'in-progress',
      Direction: 'outbound-api',
      From: AGENT,
      To: CALLER,
    });
    expect(verifyTwilioSignature(TOKEN, voice[0]!.signature, voice[0]!.url, voice[0]!.params)).toBe(true);
  });

  it('gets status callbacks in order, signed exactly as Twilio signs them', async () => {
    const { fake, receiver, rest, played, place } = await setup();
    const { sid } = await place();
    await waitFor(() => played.length === 1);
    await rest.hangup(sid);
    await fake.settled(sid);

    const status = receiver.status();
    expect(status.map((h) => h.params.CallStatus)).toEqual(['initiated', 'ringing', 'in-progress', 'completed']);
    expect(status.map((h) => h.params.SequenceNumber)).toEqual(['0', '1', '2', '3']);
    for (const hook of status) {
      expect(hook.params).toMatchObject({
        AccountSid: ACCOUNT,
        CallSid: sid,
        From: AGENT,
        To: CALLER,
        Direction: 'outbound-api',
        ApiVersion: '2010-04-01',
        CallbackSource: 'call-progress-events',
      });
      expect(hook.params.Timestamp).toMatch(/^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \+0000$/);
      expect(verifyTwilioSignature(TOKEN, hook.signature, hook.url, hook.params)).toBe(true);
      // The signature covers the token and every parameter: the receiving side can tell a forgery.
      expect(verifyTwilioSignature(`${TOKEN}x`, hook.signature, hook.url, hook.params)).toBe(false);
      expect(verifyTwilioSignature(TOKEN, hook.signature, hook.url, { ...hook.params, CallStatus: 'busy' })).toBe(false);
    }
    expect(status[3]!.params.CallDuration).toBe('0');
    expect(status.slice(0, 3).every((h) => h.params.CallDuration === undefined)).toBe(true);
  });

  it('redirects a live call to a transfer, and refuses to redirect it once it has ended', async () => {
    const { fake, rest, played, place } = await setup();
    const { sid } = await place();
    await waitFor(() => played.length === 1);

    await rest.redirect(sid, dialNumber('+15550003333', AGENT));
    const call = await fake.settled(sid);
    expect(played[0]!.signal.aborted).toBe(true);
    expect(call.redirects).toEqual([{ twiml: dialNumber('+15550003333', AGENT), url: undefined }]);
    expect(call.transferredTo).toBe('+15550003333');
    expect((await rest.fetchCall(sid)).status).toBe('completed');

    const err = await failure(rest.redirect(sid, dialNumber('+15550003333')));
    expect(err).toMatchObject({ provider: 'twilio', status: 400, code: 21220, retryable: false });
  });

  it('cancels a call hung up while it is still ringing', async () => {
    const { fake, receiver, rest, place } = await setup({ ringMs: 60_000 });
    const { sid } = await place();
    await waitFor(() => receiver.status().some((h) => h.params.CallStatus === 'ringing'));
    expect((await rest.fetchCall(sid)).status).toBe('ringing');
    await rest.hangup(sid);
    await fake.settled(sid);
    expect((await rest.fetchCall(sid)).status).toBe('canceled');
    expect(receiver.status().map((h) => h.params.CallStatus)).toEqual(['initiated', 'ringing', 'canceled']);
    expect(receiver.voice()).toHaveLength(0);
  });

  it('maps a wrong auth token to a permanent error with code 20003, without the token anywhere in it', async () => {
    const { fake, receiver } = await setup();
    const rest = new TwilioRest({ accountSid: ACCOUNT, authToken: 'wrong-token', apiBaseUrl: fake.baseUrl });
    const err = await failure(rest.createCall({ to: CALLER, from: AGENT, url: receiver.voiceUrl }));
    expect(err).toBeInstanceOf(ProviderError);
    expect(err).toMatchObject({
      provider: 'twilio',
      status: 401,
      code: 20003,
      retryable: false,
      moreInfo: 'https://www.twilio.com/docs/errors/20003',
    });
    expect(fake.calls.size).toBe(0);
    const basic = Buffer.from(`${ACCOUNT}:wrong-token`).toString('base64');
    for (const text of [inspect(err, { depth: 10 }), JSON.stringify(err), String(err.stack)]) {
      expect(text).not.toContain('wrong-token');
      expect(text).not.toContain(basic);
    }
    expect(inspect(rest, { depth: 10 })).not.toContain('wrong-token');
  });

  it("maps an invalid 'To' to a permanent 400 with code 21211", async () => {
    const { fake, receiver, rest } = await setup();
    const err = await failure(rest.createCall({ to: '555-CALL-ME', from: AGENT, url: receiver.voiceUrl }));
    expect(err).toMatchObject({ status: 400, code: 21211, retryable: false });
    expect(err.message).toContain("'To' number 555-CALL-ME is not a valid phone number");
    expect(fake.calls.size).toBe(0);
  });

  it('maps 429 to a retryable error that keeps Retry-After, and 5xx to a retryable one', async () => {
    const { fake, place } = await setup();
    fake.fail({ status: 429, code: 20429, message: 'Too Many Requests', retryAfter: 3 });
    const limited = await failure(place());
    expect(limited).toMatchObject({ status: 429, code: 20429, retryable: true, retryAfterMs: 3000 });

    fake.fail({ status: 503, code: 20503, message: 'Service Unavailable' });
    const down = await failure(place());
    expect(down).toMatchObject({ status: 503, retryable: true, retryAfterMs: undefined });

    // Each injected failure answers one request only.
    const { sid } = await place();
    expect(fake.calls.has(sid)).toBe(true);
  });

  it('maps an unknown call to 404 with code 20404', async () => {
    const { rest } = await setup();
    const err = await failure(rest.fetchCall(`CA${'0'.repeat(32)}`));
    expect(err).toMatchObject({ status: 404, code: 20404, retryable: false });
  });

  it('maps an unreachable API to a retryable ProviderError that carries no credentials', async () => {
    const { fake, receiver } = await setup();
    const rest = new TwilioRest({ accountSid: ACCOUNT, authToken: TOKEN, apiBaseUrl: fake.baseUrl });
    await fake.close();
    const err = await rest.createCall({ to: CALLER, from: AGENT, url: receiver.voiceUrl }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderError);
    expect(err).not.toBeInstanceOf(TwilioError);
    expect(err).toMatchObject({ provider: 'twilio', retryable: true });
    expect(String(err)).toContain('ECONNREFUSED');
    const text = inspect(err, { depth: 10 });
    expect(text).not.toContain(TOKEN);
    expect(text).not.toContain(Buffer.from(`${ACCOUNT}:${TOKEN}`).toString('base64'));
  });
});

describe("TwilioRest: the account's incoming phone numbers", () => {
  it("finds a number on the account by exact match only, with the SDK's list request", async () => {
    const { fake, rest } = await setup({ incomingNumbers: [AGENT, '+15550001112'] });
    expect(await rest.incomingNumberSid(AGENT)).toBe(fake.incomingNumbers.get(AGENT));
    expect(await rest.incomingNumberSid(AGENT)).toMatch(/^PN[0-9a-f]{32}$/);
    // Not on the account, even where Twilio's partial match finds numbers that contain it; found once bought.
    expect(await rest.incomingNumberSid('+15550009999')).toBeUndefined();
    expect(await rest.incomingNumberSid('+1555000111')).toBeUndefined();
    const sid = fake.addIncomingNumber('+15550009999');
    expect(await rest.incomingNumberSid('+15550009999')).toBe(sid);
    const get = fake.requests.find((r) => r.path.endsWith('/IncomingPhoneNumbers.json'));
    expect(get).toMatchObject({ method: 'GET', path: `/2010-04-01/Accounts/${ACCOUNT}/IncomingPhoneNumbers.json`, status: 200 });
  });

  it('maps bad credentials to a TwilioError 20003, as for calls', async () => {
    const { fake } = await setup({ incomingNumbers: [AGENT] });
    const wrong = new TwilioRest({ accountSid: ACCOUNT, authToken: 'nope', apiBaseUrl: fake.baseUrl });
    const err = await failure(wrong.incomingNumberSid(AGENT));
    expect([err.status, err.code, err.retryable]).toEqual([401, 20003, false]);
  });
});

describe('the Twilio fake is as strict as Twilio', () => {
  it("lists incoming numbers with Twilio's JSON shape, partial-match filter and paging", async () => {
    const numbers = Array.from({ length: 5 }, (_, i) => `+1555000100${i}`);
    const { fake } = await setup({ incomingNumbers: [...numbers, '+14155550100'] });
    const auth = { authorization: `Basic ${Buffer.from(`${ACCOUNT}:${TOKEN}`).toString('base64')}` };
    const list = async (query: string) => {
      const res = await fetch(`${fake.baseUrl}/2010-04-01/Accounts/${ACCOUNT}/IncomingPhoneNumbers.json?${query}`, { headers: auth });
      return {
        status: res.status,
        body: (await res.json()) as Record<string, unknown> & { incoming_phone_numbers: { phone_number: string }[] },
      };
    };
    const first = await list(`PhoneNumber=${encodeURIComponent('+1555000')}&PageSize=2`);
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ page: 0, page_size: 2, start: 0, end: 1, previous_page_uri: null });
    expect(first.body.incoming_phone_numbers.map((n) => n.phone_number)).toEqual(numbers.slice(0, 2));
    expect(first.body.incoming_phone_numbers[0]).toMatchObject({
      account_sid: ACCOUNT,
      sid: expect.stringMatching(/^PN/),
      capabilities: { voice: true },
    });
    expect(first.body.next_page_uri).toMatch(new RegExp(`^/2010-04-01/Accounts/${ACCOUNT}/IncomingPhoneNumbers\\.json\\?.*Page=1`));
    const last = await list(`PhoneNumber=${encodeURIComponent('+1555000')}&PageSize=2&Page=2`);
    expect(last.body.incoming_phone_numbers.map((n) => n.phone_number)).toEqual(numbers.slice(4));
    expect(last.body.next_page_uri).toBeNull();
    // '*' stands for any one digit.
    expect((await list(`PhoneNumber=${encodeURIComponent('+1415555*100')}`)).body.incoming_phone_numbers).toHaveLength(1);
    expect((await list('PageSize=0')).status).toBe(400);
    const res = await fetch(`${fake.baseUrl}/2010-04-01/Accounts/${ACCOUNT}/IncomingPhoneNumbers.json`);
    expect(res.status).toBe(401);
  });

  async function post(fake: FakeTwilio, form: Record<string, string | string[]>, auth = `${ACCOUNT}:${TOKEN}`, account = ACCOUNT) {
    const body = new URLSearchParams();
    for (const [k, v] of Object.entries(form)) for (const one of [v].flat()) body.append(k, one);
    const res = await fetch(`${fake.baseUrl}/2010-04-01/Accounts/${account}/Calls.json`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(auth).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body,
    });
    return {
      status: res.status,
      headers: res.headers,
      body: (await res.json()) as { code: number; status: number; message: string; more_info: string },
    };
  }

  const valid = { To: CALLER, From: AGENT, Url: 'https://agent.test/voice' };

  it.each([
    ['no To', { From: AGENT, Url: valid.Url }, 21201],
    ['no From', { To: CALLER, Url: valid.Url }, 21213],
    ['a From that is not a number when calling a number', { ...valid, From: 'Agent Smith' }, 21212],
    ['no Url, Twiml or ApplicationSid', { To: CALLER, From: AGENT }, 21205],
    ['a relative Url', { ...valid, Url: '/voice' }, 21205],
    ['a StatusCallback that is not an absolute URL', { ...valid, StatusCallback: 'status' }, 21609],
    [
      'an unknown StatusCallbackEvent',
      { ...valid, StatusCallback: 'https://agent.test/s', StatusCallbackEvent: ['ringing', 'bridged'] },
      21626,
    ],
  ])('rejects %s', async (_, form, code) => {
    const { fake } = await setup();
    const res = await post(fake, form);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code, status: 400, more_info: `https://www.twilio.com/docs/errors/${code}` });
    expect(fake.calls.size).toBe(0);
  });

  it("accepts client: and sip: destinations, and answers with a Call resource shaped like Twilio's", async () => {
    const { fake } = await setup();
    const res = await post(fake, { To: 'sip:agent@pbx.test', From: AGENT, Twiml: '<Response><Hangup/></Response>' });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      account_sid: ACCOUNT,
      to: 'sip:agent@pbx.test',
      from: AGENT,
      status: 'queued',
      direction: 'outbound-api',
      api_version: '2010-04-01',
      uri: expect.stringMatching(new RegExp(`^/2010-04-01/Accounts/${ACCOUNT}/Calls/CA[0-9a-f]{32}\\.json$`)),
      date_created: expect.stringMatching(/\+0000$/),
      subresource_uris: expect.objectContaining({ recordings: expect.stringMatching(/\/Recordings\.json$/) }),
    });
    expect((await post(fake, { ...valid, To: 'client:alice' })).status).toBe(201);
  });

  it('wants Basic credentials for the account in the path', async () => {
    const { fake } = await setup();
    const bad = await post(fake, valid, `${ACCOUNT}:nope`);
    expect(bad.status).toBe(401);
    expect(bad.headers.get('www-authenticate')).toContain('Basic');
    expect(bad.body).toMatchObject({ code: 20003, message: 'Authenticate', status: 401 });
    const other = await post(fake, valid, `${ACCOUNT}:${TOKEN}`, `AC${'f'.repeat(32)}`);
    expect(other.status).toBe(404);
    expect(other.body.code).toBe(20404);
    expect(fake.calls.size).toBe(0);
  });

  it('reads parameters from a form body only', async () => {
    const { fake } = await setup();
    const res = await fetch(`${fake.baseUrl}/2010-04-01/Accounts/${ACCOUNT}/Calls.json`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${ACCOUNT}:${TOKEN}`).toString('base64')}`, 'content-type': 'application/json' },
      body: JSON.stringify(valid),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { code: number }).code).toBe(21201);
  });
});
