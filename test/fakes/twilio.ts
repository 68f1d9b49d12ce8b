// A strict local fake of Twilio's Calls REST API (2010-04-01) that also plays the network side of each call it
// places: signed status callbacks, the signed voice webhook on answer, hang-ups and redirects (transfers); and the
// account's IncomingPhoneNumbers (the list: filters and paging as Twilio answers them; one number: fetch, and the
// update of its voice and status callback URLs).
// It rejects what Twilio rejects, with Twilio's error codes and JSON error body.
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { twilioSignature, type TwilioParams } from '../../src/telephony/twilio-signature.js';
import { listenLocal } from './local-server.js';

export type FakeCallStatus = 'queued' | 'ringing' | 'in-progress' | 'completed' | 'busy' | 'failed' | 'no-answer' | 'canceled';

export type Redirect = { twiml?: string; url?: string };

/** One call as the fake keeps it: what the create request asked for, and what has happened to it since. */
export interface FakeCall {
  sid: string;
  to: string;
  from: string;
  status: FakeCallStatus;
  url?: string;
  method: string;
  twiml?: string;
  applicationSid?: string;
  statusCallback?: string;
  statusCallbackMethod: string;
  statusCallbackEvents: string[];
  timeoutS?: number;
  machineDetection?: string;
  dateCreated: Date;
  dateUpdated: Date;
  startTime?: Date;
  endTime?: Date;
  /** Every TwiML document the call ran, in order: the answer's, then each redirect's. */
  documents: string[];
  /** Redirects received through the REST API. */
  redirects: Redirect[];
  /** Where a <Dial> sent the call. */
  transferredTo?: string;
  /** Status callbacks as delivered: the CallStatus sent and our server's answer (0 = no answer). */
  callbacks: { event: string; callStatus: string; httpStatus: number }[];
  /** Why Twilio would have said "an application error has occurred" (11200, 12100). */
  webhookError?: string;
}

/** An error Twilio could answer with; `retryAfter` in seconds, as the header carries it. */
export interface FakeTwilioFailure {
  status: number;
  code: number;
  message: string;
  retryAfter?: number;
  /** Only a request to a path matching this fails (the next one that does); any request when unset. */
  path?: RegExp;
}

export interface FakeTwilioOptions {
  accountSid: string;
  authToken: string;
  /**
   * Plays an answered call: gets the TwiML our server returned and resolves when the call is over. `signal`
   * aborts when the call is hung up or redirected through the REST API. Without it, a call whose TwiML holds a
   * <Connect> stays up until hung up (as a media stream would), and any other TwiML ends at once.
   */
  onCall?: (call: FakeCall, twiml: string, signal: AbortSignal) => Promise<void> | void;
  /** How long a call rings before it is answered. */
  ringMs?: number;
  /** The account's incoming phone numbers (E.164) at the start; `addIncomingNumber` adds more. */
  incomingNumbers?: string[];
}

/** What an incoming number does with calls (Twilio's fields, as its update request names them). */
export interface FakeNumberConfig {
  VoiceUrl: string;
  VoiceMethod: string;
  StatusCallback: string;
  StatusCallbackMethod: string;
}

export interface FakeTwilio {
  baseUrl: string;
  calls: Map<string, FakeCall>;
  requests: { method: string; path: string; params: TwilioParams; status: number }[];
  /** The account's incoming phone numbers: E.164 number -> its PN SID. */
  incomingNumbers: Map<string, string>;
  /** Buys a number onto the account (configured as `config` says, else as Twilio configures a new one); returns its SID. */
  addIncomingNumber(number: string, config?: Partial<FakeNumberConfig>): string;
  /** Each incoming number's call configuration: PN SID -> its voice and status callback URLs and methods. */
  numberConfig: Map<string, FakeNumberConfig>;
  /** The next request is answered with this error instead. */
  fail(next: FakeTwilioFailure): void;
  /** Resolves once the call has ended and its last status callback was delivered. */
  settled(callSid: string): Promise<FakeCall>;
  close(): Promise<void>;
}

const API_VERSION = '2010-04-01';
const WEBHOOK_TIMEOUT_MS = 15_000; // Twilio's own limit on a voice webhook
const EVENTS = new Set(['initiated', 'ringing', 'answered', 'completed']);
const E164 = /^\+[1-9]\d{1,14}$/;
const ENDED: FakeCallStatus[] = ['completed', 'busy', 'failed', 'no-answer', 'canceled'];

/** A call being played: the TwiML now running can be aborted (hang-up, redirect); `next` is what runs after. */
type Live = { segment: AbortController; next?: Redirect; hangup: boolean };

class TwilioHttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

const rfc2822 = (d: Date) => d.toUTCString().replace('GMT', '+0000');
const isHttpUrl = (u: string) => {
  try {
    return ['http:', 'https:'].includes(new URL(u).protocol);
  } catch {
    return false;
  }
};
const one = (v: string | string[] | undefined) => (Array.isArray(v) ? v[v.length - 1] : v);

function parseForm(body: string): TwilioParams {
  const out: TwilioParams = {};
  const form = new URLSearchParams(body);
  for (const key of new Set(form.keys())) {
    const all = form.getAll(key);
    out[key] = all.length > 1 ? all : all[0]!;
  }
  return out;
}

/** The target of the first <Dial> (its <Number>, <Sip> or bare text), or undefined. */
function dialTarget(twiml: string): string | undefined {
  const dial = /<Dial\b[^>]*>([\s\S]*?)<\/Dial>/.exec(twiml);
  if (!dial) return undefined;
  const inner = /<(?:Number|Sip|Client)\b[^>]*>([\s\S]*?)<\//.exec(dial[1]!)?.[1] ?? dial[1]!;
  return inner.trim().replace(/&amp;/g, '&').replace(/&lt;/g, '<').replace(/&gt;/g, '>');
}

export async function startFakeTwilio(options: FakeTwilioOptions): Promise<FakeTwilio> {
  const { accountSid, authToken, onCall, ringMs = 0 } = options;
  const incomingNumbers = new Map<string, string>();
  const numberConfig = new Map<string, FakeNumberConfig>();
  const addIncomingNumber = (number: string, config: Partial<FakeNumberConfig> = {}) => {
    const sid = incomingNumbers.get(number) ?? `PN${randomBytes(16).toString('hex')}`;
    incomingNumbers.set(number, sid);
    // A number bought in the console answers with Twilio's demo message until someone points it elsewhere.
    numberConfig.set(sid, {
      VoiceUrl: 'https://demo.twilio.com/welcome/voice/',
      VoiceMethod: 'POST',
      StatusCallback: '',
      StatusCallbackMethod: 'POST',
      ...config,
    });
    return sid;
  };
  for (const n of options.incomingNumbers ?? []) addIncomingNumber(n);
  const calls = new Map<string, FakeCall>();
  const requests: FakeTwilio['requests'] = [];
  const failures: FakeTwilioFailure[] = [];
  const lifecycles = new Map<string, Promise<FakeCall>>();
  const live = new Map<string, Live>();
  const closing = new AbortController();
  const base = `/${API_VERSION}/Accounts/${accountSid}`;

  const callJson = (c: FakeCall) => {
    const uri = `${base}/Calls/${c.sid}.json`;
    const sub = (name: string) => uri.replace(/\.json$/, `/${name}.json`);
    const durationS = c.endTime ? Math.round((c.endTime.getTime() - (c.startTime ?? c.endTime).getTime()) / 1000) : undefined;
    return {
      account_sid: accountSid,
      annotation: null,
      answered_by: c.machineDetection && c.startTime ? 'human' : null,
      api_version: API_VERSION,
      caller_name: null,
      date_created: rfc2822(c.dateCreated),
      date_updated: rfc2822(c.dateUpdated),
      direction: 'outbound-api',
      duration: durationS === undefined ? null : String(durationS),
      end_time: c.endTime ? rfc2822(c.endTime) : null,
      forwarded_from: null,
      from: c.from,
      from_formatted: c.from,
      group_sid: null,
      parent_call_sid: null,
      phone_number_sid: null,
      price: null,
      price_unit: 'USD',
      queue_time: '0',
      sid: c.sid,
      start_time: c.startTime ? rfc2822(c.startTime) : null,
      status: c.status,
      to: c.to,
      to_formatted: c.to,
      trunk_sid: null,
      uri,
      subresource_uris: Object.fromEntries(
        [
          ['notifications', 'Notifications'],
          ['recordings', 'Recordings'],
          ['payments', 'Payments'],
          ['events', 'Events'],
          ['siprec', 'Siprec'],
          ['streams', 'Streams'],
          ['transcriptions', 'Transcriptions'],
          ['user_defined_message_subscriptions', 'UserDefinedMessageSubscriptions'],
          ['user_defined_messages', 'UserDefinedMessages'],
        ].map(([k, v]) => [k, sub(v!)]),
      ),
    };
  };

  // ---- the network side of a call -------------------------------------------------------------------------

  /** One signed request from "Twilio" to our server, as Twilio sends it (GET: parameters in the query string). */
  async function deliver(url: string, method: string, params: Record<string, string>): Promise<{ status: number; body: string }> {
    const signal = AbortSignal.any([closing.signal, AbortSignal.timeout(WEBHOOK_TIMEOUT_MS)]);
    const form = new URLSearchParams(params).toString();
    const target = method === 'GET' ? `${url}${url.includes('?') ? '&' : '?'}${form}` : url;
    const headers = {
      'x-twilio-signature': twilioSignature(authToken, target, method === 'GET' ? {} : params),
      'user-agent': 'TwilioProxy/1.1',
      ...(method === 'GET' ? {} : { 'content-type': 'application/x-www-form-urlencoded' }),
    };
    try {
      const res = await fetch(target, { method, headers, body: method === 'GET' ? undefined : form, signal });
      return { status: res.status, body: await res.text() };
    } catch {
      return { status: 0, body: '' };
    }
  }

  const voiceParams = (c: FakeCall, callStatus: string): Record<string, string> => ({
    AccountSid: accountSid,
    ApiVersion: API_VERSION,
    CallSid: c.sid,
    CallStatus: callStatus,
    Called: c.to,
    Caller: c.from,
    Direction: 'outbound-api',
    From: c.from,
    To: c.to,
    ...(c.machineDetection && callStatus === 'in-progress' ? { AnsweredBy: 'human' } : {}),
  });

  const sequence = new Map<string, number>();
  async function progress(c: FakeCall, event: string, callStatus: string): Promise<void> {
    if (!c.statusCallback || !c.statusCallbackEvents.includes(event) || closing.signal.aborted) return;
    const seq = sequence.get(c.sid) ?? 0;
    sequence.set(c.sid, seq + 1);
    const params = {
      ...voiceParams(c, callStatus),
      CallbackSource: 'call-progress-events',
      SequenceNumber: String(seq),
      Timestamp: rfc2822(new Date()),
      ...(event === 'completed' ? { CallDuration: callJson(c).duration ?? '0' } : {}),
    };
    const res = await deliver(c.statusCallback, c.statusCallbackMethod, params);
    c.callbacks.push({ event, callStatus, httpStatus: res.status });
  }

  /** The TwiML at a URL, or why Twilio would have given up on it. */
  async function fetchTwiml(c: FakeCall, url: string): Promise<string | undefined> {
    const res = await deliver(url, c.method, voiceParams(c, 'in-progress'));
    if (res.status < 200 || res.status >= 300) c.webhookError = `11200 HTTP retrieval failure: ${res.status || 'no response'}`;
    else if (!/<Response\b/.test(res.body)) c.webhookError = '12100 Document parse failure';
    else return res.body;
    return undefined;
  }

  const end = (c: FakeCall, status: FakeCallStatus) => {
    c.status = status;
    c.endTime = c.dateUpdated = new Date();
  };

  async function runCall(c: FakeCall): Promise<FakeCall> {
    const control: Live = { segment: new AbortController(), hangup: false };
    live.set(c.sid, control);
    await new Promise((r) => setImmediate(r)); // the 201 goes out before anything happens to the call
    await progress(c, 'initiated', 'initiated');
    if (c.status === 'queued') {
      c.status = 'ringing';
      c.dateUpdated = new Date();
      await progress(c, 'ringing', 'ringing');
      // An abort (the call is answered or hung up) ends the ringing early.
      await sleep(ringMs, undefined, { signal: control.segment.signal }).catch(() => {});
    }
    if (c.status === 'ringing' && !control.hangup) {
      c.status = 'in-progress';
      c.startTime = c.dateUpdated = new Date();
      await progress(c, 'answered', 'in-progress');
      let doc = c.twiml ?? (c.url ? await fetchTwiml(c, c.url) : undefined);
      while (doc !== undefined && !control.hangup && !closing.signal.aborted) {
        c.documents.push(doc);
        const target = dialTarget(doc);
        if (target) {
          c.transferredTo = target;
          break;
        }
        const { signal } = control.segment;
        const current = doc;
        // A stream holds the call until something ends it; <Say>, <Hangup/> and the like are over at once.
        const played = onCall
          ? Promise.resolve()
              .then(() => onCall(c, current, signal))
              .catch(() => undefined)
          : /<Connect\b/.test(current)
            ? new Promise<void>(() => {})
            : Promise.resolve();
        // An onCall that ignores its signal must not keep a hung-up call alive.
        await Promise.race([
          played,
          new Promise<void>((r) => (signal.aborted ? r() : signal.addEventListener('abort', () => r(), { once: true }))),
        ]);
        const next = control.next;
        if (!next || control.hangup) break;
        control.next = undefined;
        control.segment = new AbortController();
        doc = next.twiml ?? (next.url ? await fetchTwiml(c, next.url) : undefined);
      }
    }
    live.delete(c.sid);
    if (!ENDED.includes(c.status)) end(c, c.status === 'in-progress' ? 'completed' : 'canceled');
    await progress(c, 'completed', c.status);
    return c;
  }

  // ---- the REST API ---------------------------------------------------------------------------------------

  const created = new Date();
  const incomingNumberJson = (number: string, sid: string) => {
    const config = numberConfig.get(sid)!;
    return {
      account_sid: accountSid,
      address_requirements: 'none',
      address_sid: null,
      api_version: API_VERSION,
      beta: false,
      capabilities: { fax: false, mms: true, sms: true, voice: true },
      date_created: rfc2822(created),
      date_updated: rfc2822(created),
      emergency_address_sid: null,
      emergency_address_status: 'unregistered',
      emergency_status: 'Inactive',
      friendly_name: number,
      identity_sid: null,
      origin: 'twilio',
      phone_number: number,
      sid,
      sms_application_sid: '',
      sms_fallback_method: 'POST',
      sms_fallback_url: '',
      sms_method: 'POST',
      sms_url: '',
      status: 'in-use',
      status_callback: config.StatusCallback,
      status_callback_method: config.StatusCallbackMethod,
      subresource_uris: { assigned_add_ons: `${base}/IncomingPhoneNumbers/${sid}/AssignedAddOns.json` },
      trunk_sid: null,
      type: 'local',
      uri: `${base}/IncomingPhoneNumbers/${sid}.json`,
      voice_application_sid: null,
      voice_caller_id_lookup: false,
      voice_fallback_method: 'POST',
      voice_fallback_url: null,
      voice_method: config.VoiceMethod,
      voice_receive_mode: 'voice',
      voice_url: config.VoiceUrl,
      bundle_sid: null,
    };
  };

  /**
   * POST IncomingPhoneNumbers/{Sid}.json: changes what was sent, leaves the rest. A URL is an http(s) URL or empty
   * (no URL); a method GET or POST (Twilio's 21502 and 21503 otherwise).
   */
  function updateIncomingNumber(sid: string, p: TwilioParams): void {
    const config = numberConfig.get(sid)!;
    for (const name of ['VoiceUrl', 'StatusCallback'] as const) {
      const v = one(p[name]);
      if (v === undefined) continue;
      if (v !== '' && !isHttpUrl(v)) throw new TwilioHttpError(400, 21502, `Invalid ${name}: ${v}`);
      config[name] = v;
    }
    for (const name of ['VoiceMethod', 'StatusCallbackMethod'] as const) {
      const v = one(p[name]);
      if (v === undefined) continue;
      if (!/^(GET|POST)$/i.test(v)) throw new TwilioHttpError(400, 21503, `${name} must be GET or POST`);
      config[name] = v.toUpperCase();
    }
  }

  /**
   * GET IncomingPhoneNumbers.json: `PhoneNumber` matches any number containing it, `*` standing for any one digit
   * (Twilio's partial match); `PageSize` (default 50, at most 1000) and `Page` page through the numbers in order.
   */
  function listIncomingNumbers(query: URLSearchParams): unknown {
    const filter = query.get('PhoneNumber') ?? undefined;
    const friendly = query.get('FriendlyName') ?? undefined;
    const pageSize = Number(query.get('PageSize') ?? 50);
    const page = Number(query.get('Page') ?? 0);
    if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 1000)
      throw new TwilioHttpError(400, 20001, `Invalid PageSize: ${query.get('PageSize')}`);
    if (!Number.isInteger(page) || page < 0) throw new TwilioHttpError(400, 20001, `Invalid Page: ${query.get('Page')}`);
    const pattern =
      filter === undefined ? undefined : new RegExp(filter.replace(/[.*+?^${}()|[\]\\]/g, (c) => (c === '*' ? '\\d' : `\\${c}`)));
    const matching = [...incomingNumbers]
      .filter(([number]) => (!pattern || pattern.test(number)) && (friendly === undefined || number === friendly))
      .sort(([a], [b]) => a.localeCompare(b));
    const items = matching.slice(page * pageSize, (page + 1) * pageSize);
    const uriFor = (p: number) => {
      const q = new URLSearchParams();
      if (filter !== undefined) q.set('PhoneNumber', filter);
      if (friendly !== undefined) q.set('FriendlyName', friendly);
      q.set('PageSize', String(pageSize));
      q.set('Page', String(p));
      return `${base}/IncomingPhoneNumbers.json?${q}`;
    };
    const more = (page + 1) * pageSize < matching.length;
    return {
      end: page * pageSize + Math.max(items.length - 1, 0),
      first_page_uri: uriFor(0),
      incoming_phone_numbers: items.map(([number, sid]) => incomingNumberJson(number, sid)),
      next_page_uri: more ? uriFor(page + 1) : null,
      page,
      page_size: pageSize,
      previous_page_uri: page > 0 ? uriFor(page - 1) : null,
      start: page * pageSize,
      uri: uriFor(page),
    };
  }

  function createCall(p: TwilioParams): FakeCall {
    const to = one(p.To);
    const from = one(p.From);
    const url = one(p.Url);
    const twiml = one(p.Twiml);
    const applicationSid = one(p.ApplicationSid);
    const statusCallback = one(p.StatusCallback);
    if (!to) throw new TwilioHttpError(400, 21201, "No 'To' number is specified");
    const toIsNumber = E164.test(to);
    if (!toIsNumber && !/^(client|sip):\S+$/i.test(to))
      throw new TwilioHttpError(400, 21211, `The 'To' number ${to} is not a valid phone number.`);
    if (!from) throw new TwilioHttpError(400, 21213, "No 'From' number is specified");
    // Calling a phone number needs a phone number as caller ID; client and SIP legs accept an identifier.
    if (!E164.test(from) && (toIsNumber || !/^(client:)?[\w.+@-]+$/i.test(from)))
      throw new TwilioHttpError(400, 21212, `The 'From' number ${from} is not a valid phone number.`);
    const instructions = [url, twiml, applicationSid].filter((v) => v !== undefined && v !== '');
    if (instructions.length === 0)
      throw new TwilioHttpError(400, 21205, 'Url parameter is required. Please provide either a Url, Twiml or ApplicationSid.');
    if (instructions.length > 1) throw new TwilioHttpError(400, 21205, 'Provide only one of Url, Twiml or ApplicationSid.');
    if (url !== undefined && !isHttpUrl(url)) throw new TwilioHttpError(400, 21205, `Url is not a valid URL: ${url}`);
    if (statusCallback !== undefined && !isHttpUrl(statusCallback))
      throw new TwilioHttpError(400, 21609, `Invalid StatusCallback url: ${statusCallback}`);
    const events =
      p.StatusCallbackEvent === undefined
        ? ['completed']
        : [p.StatusCallbackEvent]
            .flat()
            .flatMap((e) => e.split(' '))
            .filter(Boolean);
    const bad = events.find((e) => !EVENTS.has(e));
    if (bad) throw new TwilioHttpError(400, 21626, `Invalid StatusCallbackEvent: ${bad}`);
    for (const name of ['Method', 'StatusCallbackMethod'] as const) {
      const m = one(p[name]);
      if (m !== undefined && !/^(GET|POST)$/i.test(m)) throw new TwilioHttpError(400, 21200, `${name} must be GET or POST`);
    }
    const timeout = one(p.Timeout);
    if (timeout !== undefined && !/^\d+$/.test(timeout)) throw new TwilioHttpError(400, 20001, `Timeout must be an integer: ${timeout}`);
    const now = new Date();
    const call: FakeCall = {
      sid: `CA${randomBytes(16).toString('hex')}`,
      to,
      from,
      status: 'queued',
      url,
      method: (one(p.Method) ?? 'POST').toUpperCase(),
      twiml,
      applicationSid,
      statusCallback,
      statusCallbackMethod: (one(p.StatusCallbackMethod) ?? 'POST').toUpperCase(),
      statusCallbackEvents: events,
      timeoutS: timeout === undefined ? undefined : Number(timeout),
      machineDetection: one(p.MachineDetection),
      dateCreated: now,
      dateUpdated: now,
      documents: [],
      redirects: [],
      callbacks: [],
    };
    calls.set(call.sid, call);
    const lifecycle = runCall(call);
    lifecycle.catch(() => undefined); // seen through settled(); a test that never asks must not crash on it
    lifecycles.set(call.sid, lifecycle);
    return call;
  }

  function updateCall(c: FakeCall, p: TwilioParams): void {
    const status = one(p.Status);
    const twiml = one(p.Twiml);
    const url = one(p.Url);
    if (status !== undefined && status !== 'completed' && status !== 'canceled')
      throw new TwilioHttpError(400, 20001, `Status must be one of completed, canceled: ${status}`);
    if (url !== undefined && !isHttpUrl(url)) throw new TwilioHttpError(400, 21205, `Url is not a valid URL: ${url}`);
    const control = live.get(c.sid);
    const ended = ENDED.includes(c.status);
    if ((twiml !== undefined || url !== undefined) && status === undefined) {
      if (ended || !control) throw new TwilioHttpError(400, 21220, 'Call is not in-progress. Cannot redirect.');
      c.redirects.push({ twiml, url });
      if (c.status === 'in-progress') {
        control.next = { twiml, url };
        control.segment.abort(new Error('redirected'));
      } else {
        // Not answered yet: the new instructions are what runs on answer.
        c.twiml = twiml;
        c.url = url;
      }
    }
    if (status && !ended && control) {
      // `canceled` only stops a call that is not answered yet; `completed` ends it either way.
      if (status === 'completed' || c.status !== 'in-progress') {
        control.hangup = true;
        end(c, c.status === 'in-progress' ? 'completed' : 'canceled');
        control.segment.abort(new Error('hung up'));
      }
    }
    c.dateUpdated = new Date();
  }

  function route(
    method: string,
    path: string,
    params: TwilioParams,
    auth: string | undefined,
    query: URLSearchParams,
  ): { status: number; body: unknown } {
    const creds = /^Basic (.+)$/i.exec(auth ?? '')?.[1];
    const [user, ...rest] = creds ? Buffer.from(creds, 'base64').toString('utf8').split(':') : [];
    if (user !== accountSid || rest.join(':') !== authToken) throw new TwilioHttpError(401, 20003, 'Authenticate');
    const number = /^\/2010-04-01\/Accounts\/([^/]+)\/IncomingPhoneNumbers\/([^/]+)\.json$/.exec(path);
    if (number) {
      const entry = [...incomingNumbers].find(([, sid]) => sid === number[2]);
      if (number[1] !== accountSid || !entry) throw new TwilioHttpError(404, 20404, `The requested resource ${path} was not found`);
      if (method === 'POST') updateIncomingNumber(entry[1], params);
      else if (method !== 'GET') throw new TwilioHttpError(405, 20004, 'Method not allowed');
      return { status: 200, body: incomingNumberJson(entry[0], entry[1]) };
    }
    const numbers = /^\/2010-04-01\/Accounts\/([^/]+)\/IncomingPhoneNumbers\.json$/.exec(path);
    if (numbers) {
      if (numbers[1] !== accountSid) throw new TwilioHttpError(404, 20404, `The requested resource ${path} was not found`);
      if (method !== 'GET') throw new TwilioHttpError(405, 20004, 'Method not allowed');
      return { status: 200, body: listIncomingNumbers(query) };
    }
    const m = /^\/2010-04-01\/Accounts\/([^/]+)\/Calls(?:\/([^/]+))?\.json$/.exec(path);
    // Another account's resources do not exist as far as these credentials can tell.
    if (!m || m[1] !== accountSid) throw new TwilioHttpError(404, 20404, `The requested resource ${path} was not found`);
    if (!m[2]) {
      if (method !== 'POST') throw new TwilioHttpError(405, 20004, 'Method not allowed');
      return { status: 201, body: callJson(createCall(params)) };
    }
    const call = calls.get(m[2]);
    if (!call) throw new TwilioHttpError(404, 20404, `The requested resource ${path} was not found`);
    if (method === 'GET') return { status: 200, body: callJson(call) };
    if (method !== 'POST') throw new TwilioHttpError(405, 20004, 'Method not allowed');
    updateCall(call, params);
    return { status: 200, body: callJson(call) };
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const url = new URL(req.url ?? '/', 'http://fake');
    const method = req.method ?? 'GET';
    // Twilio reads parameters from a form body only; JSON or anything else arrives as no parameters at all.
    const form = method === 'POST' && /^application\/x-www-form-urlencoded/i.test(req.headers['content-type'] ?? '');
    const params = parseForm(form ? Buffer.concat(chunks).toString('utf8') : '');
    const headers: Record<string, string> = {
      'content-type': 'application/json; charset=utf-8',
      'twilio-request-id': `RQ${randomBytes(16).toString('hex')}`,
    };
    let answer: { status: number; body: unknown };
    try {
      const at = failures.findIndex((f) => !f.path || f.path.test(url.pathname));
      const injected = at < 0 ? undefined : failures.splice(at, 1)[0];
      if (injected) {
        if (injected.retryAfter !== undefined) headers['retry-after'] = String(injected.retryAfter);
        throw new TwilioHttpError(injected.status, injected.code, injected.message);
      }
      answer = route(method, url.pathname, params, req.headers.authorization, url.searchParams);
    } catch (err) {
      if (!(err instanceof TwilioHttpError)) throw err;
      if (err.status === 401) headers['www-authenticate'] = 'Basic realm="Twilio API"';
      answer = {
        status: err.status,
        body: { code: err.code, message: err.message, more_info: `https://www.twilio.com/docs/errors/${err.code}`, status: err.status },
      };
    }
    requests.push({ method, path: url.pathname, params, status: answer.status });
    res.writeHead(answer.status, headers);
    res.end(JSON.stringify(answer.body));
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ code: 20500, message: String(err), status: 500 }));
    });
  });
  const listening = await listenLocal(server);

  return {
    baseUrl: listening.origin,
    calls,
    requests,
    incomingNumbers,
    addIncomingNumber,
    numberConfig,
    fail: (next) => void failures.push(next),
    settled: (callSid) => lifecycles.get(callSid) ?? Promise.reject(new Error(`no call ${callSid}`)),
    async close() {
      closing.abort();
      for (const control of live.values()) control.segment.abort(new Error('fake closed'));
      await Promise.allSettled(lifecycles.values());
      await listening.close();
    },
  };
}
