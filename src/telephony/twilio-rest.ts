// Twilio's REST API through the official SDK: place, fetch, redirect and hang up calls; look up the account's
// incoming phone numbers (who may register a number) and point their voice and status webhooks at us. Every failure
// becomes a ProviderError (a TwilioError, with Twilio's numeric code, when Twilio answered with an error).
import twilio from 'twilio';
import type RequestClient from 'twilio/lib/base/RequestClient.js';
import { httpProviderError, ProviderError } from '../lib/provider-error.js';

export type TwilioCallStatus = 'queued' | 'ringing' | 'in-progress' | 'completed' | 'busy' | 'failed' | 'no-answer' | 'canceled';
export type TwilioStatusCallbackEvent = 'initiated' | 'ringing' | 'answered' | 'completed';

const DEFAULT_EVENTS: TwilioStatusCallbackEvent[] = ['initiated', 'ringing', 'answered', 'completed'];
const DEFAULT_TIMEOUT_MS = 15_000;

/** Twilio answered with an error: `code` is Twilio's (21211 invalid 'To', 20003 bad credentials, 20429 ...). */
export class TwilioError extends ProviderError {
  declare readonly status: number;

  constructor(
    status: number,
    readonly code: number | undefined,
    /** Twilio's own message ("The 'To' number ... is not a valid phone number."). */
    readonly twilioMessage: string,
    retryAfter: string | undefined,
    readonly moreInfo?: string,
  ) {
    const message = twilioMessage;
    // The retry rule (429, 5xx, ...) and Retry-After parsing are the ones every provider uses.
    const base = httpProviderError('twilio', status, code === undefined ? message : `${code} ${message}`, retryAfter);
    super('twilio', base.message.slice('twilio: '.length), base.retryable, status, base.retryAfterMs);
    this.name = 'TwilioError';
  }
}

// The SDK's RequestClient, two differences: requests meant for *.twilio.com go to `baseUrl` when one is set (the
// SDK has no base-URL option; a custom httpClient is its documented extension point), and an HTTP error is thrown
// here as a TwilioError because this is the last place that still sees the Retry-After header.
class TwilioHttpClient extends twilio.RequestClient {
  constructor(
    private readonly baseUrl: string | undefined,
    timeoutMs: number,
  ) {
    super({ timeout: timeoutMs });
  }

  override async request<TData>(opts: RequestClient.RequestOptions<TData>) {
    // logLevel dropped: the SDK's debug logging goes to console.log, past our logger and its redaction.
    const res = await super.request<TData>({ ...opts, uri: this.rewrite(opts.uri), logLevel: undefined });
    if (res.statusCode >= 400) throw errorFromResponse(res.statusCode, res.body, res.headers);
    return res;
  }

  private rewrite(uri: string): string {
    if (!this.baseUrl) return uri;
    const url = new URL(uri);
    // Any Twilio host (edge/region variants included), so TWILIO_EDGE/TWILIO_REGION in the env cannot leak a
    // test or a simulator onto the real API.
    if (!/(^|\.)twilio\.com$/i.test(url.hostname)) return uri;
    return `${this.baseUrl.replace(/\/+$/, '')}${url.pathname}${url.search}`;
  }
}

function errorFromResponse(status: number, body: unknown, headers: unknown): TwilioError {
  let parsed: unknown = body;
  if (typeof body === 'string') {
    try {
      parsed = JSON.parse(body);
    } catch {
      parsed = undefined;
    }
  }
  const b = (parsed && typeof parsed === 'object' ? parsed : {}) as Record<string, unknown>;
  const code = typeof b.code === 'number' ? b.code : undefined;
  // Legacy bodies carry `message`; the newer RFC 9457 ones `title` and `detail`.
  const text = [b.message, b.title, b.detail].find((v): v is string => typeof v === 'string' && v !== '') ?? `HTTP ${status}`;
  const h = (headers && typeof headers === 'object' ? headers : {}) as Record<string, unknown>;
  const retryAfter = h['retry-after'] ?? h['Retry-After'];
  return new TwilioError(
    status,
    code,
    text,
    typeof retryAfter === 'string' ? retryAfter : undefined,
    typeof b.more_info === 'string' ? b.more_info : undefined,
  );
}

/**
 * Twilio was not reached, or did not answer: `errno` is the socket's code (ECONNREFUSED, ENOTFOUND, ETIMEDOUT...) or
 * axios's ECONNABORTED for our own timeout; `sent` says whether the request may have reached Twilio.
 */
export class TwilioNetworkError extends ProviderError {
  constructor(
    readonly errno: string | undefined,
    message: string,
    retryable: boolean,
    readonly sent: boolean,
  ) {
    super('twilio', message, retryable, undefined, undefined, sent ? 'timeout' : 'unreachable');
    this.name = 'TwilioNetworkError';
  }
}

// Error codes of a request that never reached Twilio, so sending it again cannot do anything twice.
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

/**
 * Our error for whatever the SDK threw. Transport errors from the SDK (axios) carry the request config, Basic
 * credentials included, so only their code and message are kept, never the error itself as a cause.
 */
function toProviderError(err: unknown, idempotent: boolean): ProviderError {
  if (err instanceof ProviderError) return err;
  if (err instanceof twilio.RestException) return new TwilioError(err.status, err.code, err.message, undefined, err.moreInfo);
  const e = (err && typeof err === 'object' ? err : {}) as { code?: unknown; message?: unknown; isAxiosError?: unknown };
  const code = typeof e.code === 'string' ? e.code : undefined;
  const message = typeof e.message === 'string' ? e.message : String(err);
  if (e.isAxiosError === true || code) {
    // A timed-out or reset create may still have placed the call: retrying it could ring someone twice.
    const sent = code === undefined || !NOT_SENT.has(code);
    return new TwilioNetworkError(code, `request failed: ${code ?? message}`, idempotent || !sent, sent);
  }
  // The SDK's own argument checks ("Required parameter ... missing") and anything unexpected.
  return new ProviderError('twilio', message, false);
}

export interface TwilioRestOptions {
  accountSid: string;
  authToken: string;
  /** Send requests here instead of https://api.twilio.com (a local fake, a recording proxy). */
  apiBaseUrl?: string;
  timeoutMs?: number;
}

export interface CreateCallParams {
  to: string;
  from: string;
  /** Voice webhook Twilio requests when the call is answered. */
  url: string;
  statusCallback?: string;
  /** Which progress events go to `statusCallback`; all four unless narrowed. */
  statusCallbackEvents?: TwilioStatusCallbackEvent[];
  /** How long Twilio lets it ring, in seconds (Twilio's unit; it allows 5 to 600). */
  timeoutS?: number;
  machineDetection?: 'Enable' | 'DetectMessageEnd';
}

/** Where an incoming number's calls (voice webhook) and status callbacks go; '' is none. */
export interface NumberWebhooks {
  voiceUrl: string;
  voiceMethod: string;
  statusCallback: string;
  statusCallbackMethod: string;
}

export interface IncomingNumber extends NumberWebhooks {
  sid: string;
}

export interface TwilioCall {
  sid: string;
  status: TwilioCallStatus;
  direction: string;
  from: string;
  to: string;
  /** Twilio reports whole seconds, once the call has ended; null before. */
  durationMs: number | null;
}

export class TwilioRest {
  // Private (#) so that logging or inspecting this object cannot print the client and its credentials.
  readonly #client: twilio.Twilio;

  constructor(options: TwilioRestOptions) {
    const httpClient = new TwilioHttpClient(options.apiBaseUrl, options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    this.#client = twilio(options.accountSid, options.authToken, { httpClient });
  }

  async createCall(p: CreateCallParams): Promise<{ sid: string; status: TwilioCallStatus }> {
    const call = await this.#run(false, () =>
      this.#client.calls.create({
        to: p.to,
        from: p.from,
        url: p.url,
        ...(p.statusCallback
          ? {
              statusCallback: p.statusCallback,
              statusCallbackMethod: 'POST',
              statusCallbackEvent: p.statusCallbackEvents ?? DEFAULT_EVENTS,
            }
          : {}),
        timeout: p.timeoutS,
        machineDetection: p.machineDetection,
      }),
    );
    return { sid: call.sid, status: call.status };
  }

  /** Ends an answered call; one still ringing is cancelled by Twilio instead. */
  async hangup(callSid: string): Promise<void> {
    await this.#run(true, () => this.#client.calls(callSid).update({ status: 'completed' }));
  }

  /** Replaces what a live call is doing with `twiml` (a transfer: <Dial>); Twilio answers 21220 once it has ended. */
  async redirect(callSid: string, twiml: string): Promise<void> {
    // Not idempotent: a redirect that timed out may have taken effect, and a second one would dial again.
    await this.#run(false, () => this.#client.calls(callSid).update({ twiml }));
  }

  async fetchCall(callSid: string): Promise<TwilioCall> {
    const c = await this.#run(true, () => this.#client.calls(callSid).fetch());
    const seconds = c.duration === null || c.duration === undefined || c.duration === '' ? NaN : Number(c.duration);
    return {
      sid: c.sid,
      status: c.status,
      direction: c.direction,
      from: c.from,
      to: c.to,
      durationMs: Number.isFinite(seconds) ? seconds * 1000 : null,
    };
  }

  /**
   * The SID of the account's incoming phone number `number` (E.164), or undefined when the account has no such
   * number. Twilio's PhoneNumber filter also matches partial numbers, so only an exact match counts.
   */
  async incomingNumberSid(number: string): Promise<string | undefined> {
    return (await this.incomingNumber(number))?.sid;
  }

  /** The account's incoming number `number` (exact match) with where its calls and status callbacks go, or undefined. */
  async incomingNumber(number: string): Promise<IncomingNumber | undefined> {
    const found = await this.#run(true, () => this.#client.incomingPhoneNumbers.list({ phoneNumber: number, limit: 20 }));
    const n = found.find((x) => x.phoneNumber === number);
    return (
      n && {
        sid: n.sid,
        voiceUrl: n.voiceUrl ?? '',
        voiceMethod: n.voiceMethod ?? 'POST',
        statusCallback: n.statusCallback ?? '',
        statusCallbackMethod: n.statusCallbackMethod ?? 'POST',
      }
    );
  }

  /** Points an incoming number's calls and status callbacks at these URLs (POST IncomingPhoneNumbers/{Sid}.json). */
  async configureIncomingNumber(sid: string, w: NumberWebhooks): Promise<void> {
    await this.#run(true, () =>
      this.#client.incomingPhoneNumbers(sid).update({
        voiceUrl: w.voiceUrl,
        voiceMethod: w.voiceMethod,
        statusCallback: w.statusCallback,
        statusCallbackMethod: w.statusCallbackMethod,
      }),
    );
  }

  async #run<T>(idempotent: boolean, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      throw toProviderError(err, idempotent);
    }
  }
}
