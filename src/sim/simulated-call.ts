// A phone call as Twilio would make it, against a running service: the signed voice webhook, the TwiML's media
// stream at real-time pace (TwilioCallerLeg), keypad digits, hang-up and the signed status callback. Used by
// `npm run simulate:call`, `npm run bench:calls` and the end-to-end tests.
import { randomBytes } from 'node:crypto';
import { twilioSignature } from '../telephony/twilio-signature.js';
import { parseConnectStream, TwilioCallerLeg } from './twilio-caller.js';

export interface TwilioAccount {
  accountSid: string;
  authToken: string;
}

export interface InboundCallOptions extends TwilioAccount {
  /** The service's public base URL, exactly as it is configured (the signature covers it). */
  baseUrl: string;
  from: string;
  to: string;
}

/** One caller turn as measured at the phone: from the end of the caller's speech to the agent's first audio. */
export interface HeardTurn {
  saidEndMs: number;
  answerStartMs: number | null;
}

const hex32 = () => randomBytes(16).toString('hex');

/** How often a call waiting for the agent looks at what it has heard. */
const POLL_MS = 10;
let beat: Promise<void> | undefined;
/**
 * Resolves at the next beat, one timer for every waiting call in the process: a timer each (every 10 or 20 ms for
 * every call) was thousands of timers a second at 150 calls, work that made the simulator itself late.
 */
function nextBeat(): Promise<void> {
  return (beat ??= new Promise((resolve) =>
    setTimeout(() => {
      beat = undefined;
      resolve();
    }, POLL_MS),
  ));
}

/** POSTs a form to a Twilio webhook of the service, signed as Twilio signs it. */
export async function postSigned(account: TwilioAccount, url: string, params: Record<string, string>): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': twilioSignature(account.authToken, url, params) },
    body: new URLSearchParams(params),
  });
}

export class SimulatedCall {
  readonly turns: HeardTurn[] = [];
  private readonly startedAt = Date.now();

  private constructor(
    readonly leg: TwilioCallerLeg,
    readonly callSid: string,
    /** The call's id in the service (the TwiML's `call_id` parameter). */
    readonly callId: string | undefined,
    private readonly hangUp: () => Promise<void>,
  ) {}

  /** An inbound call: Twilio asks the voice webhook what to do, then opens the media stream it names. */
  static async inbound(o: InboundCallOptions): Promise<SimulatedCall> {
    const callSid = `CA${hex32()}`;
    const base = { AccountSid: o.accountSid, CallSid: callSid, From: o.from, To: o.to, Direction: 'inbound', ApiVersion: '2010-04-01' };
    const res = await postSigned(o, `${o.baseUrl}/api/v1/webhooks/twilio/voice`, { ...base, CallStatus: 'ringing' });
    const twiml = await res.text();
    if (res.status !== 200) throw new Error(`voice webhook answered ${res.status}: ${twiml}`);
    const leg = await SimulatedCall.connect(twiml, o, callSid);
    const call = new SimulatedCall(leg.leg, callSid, leg.callId, async () => {
      const seconds = String(Math.round((Date.now() - call.startedAt) / 1000));
      await postSigned(o, `${o.baseUrl}/api/v1/webhooks/twilio/status`, {
        ...base,
        CallStatus: 'completed',
        CallDuration: seconds,
        SequenceNumber: '0',
      });
    });
    return call;
  }

  /** The media leg of a call whose TwiML was fetched elsewhere (an outbound call through the fake Twilio). */
  static async fromTwiml(twiml: string, account: TwilioAccount, callSid: string): Promise<SimulatedCall> {
    const { leg, callId } = await SimulatedCall.connect(twiml, account, callSid);
    return new SimulatedCall(leg, callSid, callId, async () => {});
  }

  private static async connect(
    twiml: string,
    account: TwilioAccount,
    callSid: string,
  ): Promise<{ leg: TwilioCallerLeg; callId: string | undefined }> {
    const stream = parseConnectStream(twiml);
    if (!stream) throw new Error(`the TwiML does not connect a media stream: ${twiml}`);
    const leg = await TwilioCallerLeg.connect({ url: stream.url, parameters: stream.parameters, callSid, accountSid: account.accountSid });
    return { leg, callId: stream.parameters.call_id };
  }

  /** ms since the media stream started (the clock of `leg.heard`). */
  now(): number {
    return this.leg.now();
  }

  /** When the last agent audio heard ends (ms), or -1. */
  lastHeardEndMs(): number {
    const last = this.leg.heard.at(-1);
    return last ? last.atMs + (last.pcm.length * 1000) / 8000 : -1;
  }

  /** Waits until the agent has spoken since `sinceMs` and then been quiet for `quietMs`. */
  async agentDone(opts: { sinceMs?: number; quietMs?: number; timeoutMs?: number } = {}): Promise<void> {
    const since = opts.sinceMs ?? 0;
    const quiet = opts.quietMs ?? 1200;
    const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
    for (;;) {
      const end = this.lastHeardEndMs();
      if (end > since && this.now() - end >= quiet) return;
      if (Date.now() > deadline) throw new Error(`the agent did not finish speaking within ${opts.timeoutMs ?? 30_000} ms`);
      await nextBeat();
    }
  }

  /** Says 8 kHz audio; the turn is measured from its end to the agent's next audio. */
  async say(pcm: Int16Array): Promise<HeardTurn> {
    await this.leg.say(pcm);
    const turn: HeardTurn = { saidEndMs: this.now(), answerStartMs: null };
    this.turns.push(turn);
    return turn;
  }

  /** Waits for the agent's answer to a turn; its start is recorded on the turn. */
  async answer(turn: HeardTurn, timeoutMs = 30_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      // Heard audio is in time order, and little of it comes after the turn: search from the end.
      const heard = this.leg.heard;
      let first: (typeof heard)[number] | undefined;
      for (let i = heard.length - 1; i >= 0 && heard[i]!.atMs >= turn.saidEndMs; i--) first = heard[i];
      if (first) {
        turn.answerStartMs = first.atMs;
        return first.atMs - turn.saidEndMs;
      }
      if (Date.now() > deadline) throw new Error('no answer from the agent');
      await nextBeat();
    }
  }

  pressDigit(digit: string): void {
    this.leg.pressDigit(digit);
  }

  /** The caller hangs up: the stream stops, then the status callback reports the call completed. */
  async hangup(): Promise<void> {
    await this.leg.hangup();
    await this.hangUp();
  }
}
