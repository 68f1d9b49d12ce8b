// `npm run simulate:call`: one phone call exactly as Twilio makes it against a running service (SimulatedCall), a
// WAV as the caller's words, what the agent said saved as a WAV, and the call's latencies and transcript printed.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs, parseEnv } from 'node:util';
import { type HeardTurn, SimulatedCall } from '../src/sim/simulated-call.js';
import { dbfs, durationMs, FRAME_MS, parseWav, resample } from '../src/voice/audio.js';

const USAGE = `Usage: npm run simulate:call -- --to <number> --wav <file.wav> [options]

A phone call exactly as Twilio makes it (signed voice webhook, media stream in real time, status callback):
waits for the greeting, says the WAV, waits for the answer, optionally presses keys, hangs up.

  --to <E.164>          the number called: one registered with POST /api/v1/phone-numbers
  --wav <file>          what the caller says: a PCM WAV, any rate, mono or stereo
  --from <E.164>        the caller's number (default +15557654321)
  --url <base>          the service's public base URL exactly as it sees it (default http://127.0.0.1:8000);
                        the signature covers it, so with PUBLIC_BASE_URL set it must be that value
  --account-sid <AC..>  default TWILIO_ACCOUNT_SID (environment, then ./.env): the service's value
  --auth-token <token>  default TWILIO_AUTH_TOKEN (environment, then ./.env): the service's value
  --api-key <vak_...>   a tenant API key: prints the call's transcript with each turn's latencies
  --out <file.wav>      what the agent said, 8 kHz (default data/simulator/agent-<call id>.wav)
  --digits <keys>       keys pressed after the answer (0-9 * #), one at a time
  --interrupt           says the WAV again while the agent answers (barge-in)
  --help                this text

Exit codes: 0 done, 1 the call went wrong, 2 bad arguments or WAV, 3 service unreachable,
4 signature refused (403), 5 number not in service, 6 other refusal by the service, 7 API key refused.`;

const PHONE_RATE = 8000;
/** How long the agent stays quiet before its utterance counts as finished (longer than a pause between sentences). */
const QUIET_MS = 1500;
/** An agent without a greeting says nothing: the caller speaks after this much silence. */
const GREETING_WAIT_MS = 5000;
/** The barge-in starts this long into the answer, so there is an answer to cut. */
const BARGE_IN_AFTER_MS = 800;
/** Between keys, as a person presses them (well under the service's wait for more digits). */
const KEY_GAP_MS = 300;
const ANSWER_TIMEOUT_MS = 30_000;
/** Quieter than this at the WAV's ends is cut: voice-to-voice starts where the speech ends, not its trailing hiss. */
const SILENCE_DBFS = -50;
const CALL_END_WAIT_MS = 5000;

class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

interface Options {
  to: string;
  from: string;
  wav: string;
  baseUrl: string;
  accountSid: string;
  authToken: string;
  apiKey?: string;
  out?: string;
  digits: string;
  interrupt: boolean;
}
type TranscriptTurn = { speaker: string; text: string; interrupted: boolean; metrics: Record<string, number> };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The service reads TWILIO_* from its environment; people keep them in ./.env, so read it too (the environment wins). */
function twilioEnv(): Record<string, string | undefined> {
  const file = existsSync('.env') ? parseEnv(readFileSync('.env', 'utf8')) : {};
  return { ...file, ...Object.fromEntries(Object.entries(process.env).filter(([, v]) => v)) };
}

const FLAGS = {
  to: { type: 'string' },
  wav: { type: 'string' },
  from: { type: 'string' },
  url: { type: 'string' },
  'account-sid': { type: 'string' },
  'auth-token': { type: 'string' },
  'api-key': { type: 'string' },
  out: { type: 'string' },
  digits: { type: 'string' },
  interrupt: { type: 'boolean' },
  help: { type: 'boolean' },
} as const;

function parseOptions(argv: string[]): Options | 'help' {
  let v;
  try {
    v = parseArgs({ args: argv, options: FLAGS }).values;
  } catch (err) {
    throw new CliError(`${(err as Error).message}\n\n${USAGE}`, 2);
  }
  if (v.help) return 'help';
  if (!v.to || !v.wav) throw new CliError(`--to and --wav are required\n\n${USAGE}`, 2);
  const env = twilioEnv();
  const accountSid = v['account-sid'] ?? env.TWILIO_ACCOUNT_SID;
  const authToken = v['auth-token'] ?? env.TWILIO_AUTH_TOKEN;
  if (!accountSid || !authToken)
    throw new CliError(
      'no Twilio account: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (as the service has them) or pass --account-sid and --auth-token',
      2,
    );
  if (v.digits && !/^[0-9*#]+$/.test(v.digits)) throw new CliError('--digits takes keypad keys only: 0-9, * and #', 2);
  const baseUrl = (v.url ?? 'http://127.0.0.1:8000').replace(/\/+$/, '');
  return {
    to: v.to,
    wav: v.wav,
    from: v.from ?? '+15557654321',
    baseUrl,
    accountSid,
    authToken,
    apiKey: v['api-key'],
    out: v.out,
    digits: v.digits ?? '',
    interrupt: v.interrupt ?? false,
  };
}

/** The WAV as 8 kHz phone audio, near-silence at both ends cut. */
function readSpeech(path: string): Int16Array {
  let wav;
  try {
    wav = parseWav(readFileSync(path));
  } catch (err) {
    throw new CliError(
      `cannot use ${path} as the caller's speech (${(err as Error).message}): give a PCM WAV (16-bit, mono or stereo, any rate)`,
      2,
    );
  }
  const pcm = resample(wav.pcm, wav.sampleRate, PHONE_RATE);
  const frame = (PHONE_RATE * FRAME_MS) / 1000;
  const loud = (at: number) => dbfs(pcm.subarray(at, at + frame)) > SILENCE_DBFS;
  let start = 0;
  let end = pcm.length;
  while (start < end && !loud(start)) start += frame;
  while (end > start && !loud(end - frame)) end -= frame;
  if (end <= start) throw new CliError(`${path} is silent: there is nothing for the caller to say`, 2);
  return pcm.slice(start, end);
}

/** What went wrong when the call was placed, in the caller's terms. */
function explain(err: unknown, o: Options): CliError {
  const message = err instanceof Error ? err.message : String(err);
  const cause = err instanceof Error && err.cause instanceof Error ? ` (${err.cause.message})` : '';
  if (message === 'fetch failed')
    return new CliError(`cannot reach the service at ${o.baseUrl}${cause}: is it running (npm start) and is --url right?`, 3);
  const status = /^voice webhook answered (\d+): ([\s\S]*)$/.exec(message);
  const urlHint = `--url (${o.baseUrl}) is not its public base URL exactly as it sees it (PUBLIC_BASE_URL, when set, must match --url)`;
  if (status?.[1] === '403')
    return new CliError(
      `the service refused the webhook signature (403): either the auth token is not the service's TWILIO_AUTH_TOKEN, or ${urlHint}`,
      4,
    );
  if (status) return new CliError(`the voice webhook answered ${status[1]}: ${status[2]}`, 6);
  if (/not in service/i.test(message)) {
    return new CliError(
      `the service says ${o.to} is not in service: register the number with POST /api/v1/phone-numbers (and check --account-sid is the service's TWILIO_ACCOUNT_SID)`,
      5,
    );
  }
  if (message.startsWith('the TwiML')) return new CliError(message, 6);
  return new CliError(`could not open the call's media stream: ${message}${cause}`, 3);
}

async function placeCall(o: Options): Promise<SimulatedCall> {
  try {
    return await SimulatedCall.inbound({ accountSid: o.accountSid, authToken: o.authToken, baseUrl: o.baseUrl, from: o.from, to: o.to });
  } catch (err) {
    throw explain(err, o);
  }
}

/** Waits for the greeting to finish, or for a silence long enough to say there is none. */
async function waitForGreeting(call: SimulatedCall): Promise<void> {
  while (call.lastHeardEndMs() < 0 && call.now() < GREETING_WAIT_MS) await sleep(50);
  if (call.lastHeardEndMs() < 0) return void console.log(`no greeting within ${GREETING_WAIT_MS} ms; speaking anyway`);
  await call.agentDone({ quietMs: QUIET_MS });
  console.log(`greeting heard (${Math.round(call.leg.heardMs())} ms of audio)`);
}

/** Waits for the agent's first audio after a caller turn: voice-to-voice as the phone measures it. */
async function answered(call: SimulatedCall, turn: HeardTurn, label: string, note = ''): Promise<void> {
  const v2vMs = await call.answer(turn, ANSWER_TIMEOUT_MS);
  console.log(`caller turn ${call.turns.indexOf(turn) + 1} (${label}): voice-to-voice ${Math.round(v2vMs)} ms${note}`);
}

async function converse(call: SimulatedCall, o: Options, speech: Int16Array): Promise<void> {
  await waitForGreeting(call);
  console.log("voice-to-voice: from the end of the caller's audio to the agent's first audio, at the phone");
  const asked = await call.say(speech);
  await answered(call, asked, `${o.wav}, ${(durationMs(speech.length, PHONE_RATE) / 1000).toFixed(1)} s of speech`);
  let last = asked;
  if (o.interrupt) {
    await sleep(BARGE_IN_AFTER_MS);
    const bargeStartMs = call.now();
    last = await call.say(speech);
    const clearMs = call.leg.clears.find((at) => at >= bargeStartMs);
    console.log(
      clearMs === undefined
        ? 'barge-in: the agent did not stop (no clear)'
        : `barge-in: the agent stopped ${Math.round(clearMs - bargeStartMs)} ms after the caller started speaking`,
    );
    await answered(call, last, 'the WAV again, over the answer');
  }
  await call.agentDone({ sinceMs: last.saidEndMs, quietMs: QUIET_MS, timeoutMs: ANSWER_TIMEOUT_MS });
  if (!o.digits) return;
  for (const [i, key] of [...o.digits].entries()) {
    if (i) await sleep(KEY_GAP_MS);
    call.pressDigit(key);
  }
  const pressed: HeardTurn = { saidEndMs: call.now(), answerStartMs: null };
  call.turns.push(pressed);
  await answered(call, pressed, `keys ${o.digits}`, ", counting the service's wait for more keys");
  await call.agentDone({ sinceMs: pressed.saidEndMs, quietMs: QUIET_MS, timeoutMs: ANSWER_TIMEOUT_MS });
}

async function api(o: Options, path: string): Promise<unknown> {
  const res = await fetch(`${o.baseUrl}${path}`, { headers: { authorization: `Bearer ${o.apiKey}` } });
  if (res.status === 401 || res.status === 403)
    throw new CliError(`the API refused --api-key (${res.status}): give an API key (vak_...) of the tenant that owns ${o.to}`, 7);
  if (res.status === 404)
    throw new CliError(`the API does not know call ${path.split('/')[4]} for this key: is the key the number's tenant's?`, 7);
  if (!res.ok) throw new CliError(`GET ${path} answered ${res.status}: ${await res.text()}`, 1);
  return res.json();
}

/** The transcript as the service stored it, once the call has ended (so its last turn is in). */
async function printTranscript(o: Options, callId: string): Promise<void> {
  const deadline = Date.now() + CALL_END_WAIT_MS;
  while (Date.now() < deadline && !((await api(o, `/api/v1/calls/${callId}`)) as { ended_at: string | null }).ended_at) await sleep(100);
  const { items } = (await api(o, `/api/v1/calls/${callId}/transcript`)) as { items: TranscriptTurn[] };
  console.log('transcript (from the API):');
  const first = ['voice_to_voice', 'endpointing', 'stt_final', 'retrieval', 'llm_ttft', 'tts_ttfb'];
  for (const turn of items) {
    console.log(`  ${turn.speaker}: ${turn.text}${turn.interrupted ? ' [interrupted]' : ''}`);
    const names = Object.keys(turn.metrics).sort((a, b) => (first.indexOf(a) + 1 || 99) - (first.indexOf(b) + 1 || 99));
    if (turn.speaker === 'agent' && names.length) console.log(`    ${names.map((n) => `${n} ${turn.metrics[n]} ms`).join(', ')}`);
  }
}

async function main(argv: string[]): Promise<number> {
  const o = parseOptions(argv);
  if (o === 'help') {
    console.log(USAGE);
    return 0;
  }
  const speech = readSpeech(o.wav);
  const call = await placeCall(o);
  const callId = call.callId ?? call.callSid;
  console.log(`call ${callId}`);
  let failure: unknown;
  try {
    await converse(call, o, speech);
  } catch (err) {
    failure = err;
  }
  // Hung up even after a failure, so the service ends the call; what was heard is kept either way.
  await call.hangup();
  // Under data/ (git-ignored, like the service's own files) unless told otherwise.
  const out = o.out ?? path.join('data', 'simulator', `agent-${callId}.wav`);
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, call.leg.heardWav());
  console.log(`what the agent said: ${out} (8 kHz, ${(call.leg.heardMs() / 1000).toFixed(1)} s of speech)`);
  const pacing = call.leg.pacing();
  console.log(
    `agent audio pacing: gap p50 ${pacing.p50Ms.toFixed(1)} ms, p99 ${pacing.p99Ms.toFixed(1)} ms, max ${pacing.maxMs.toFixed(1)} ms over ${pacing.count} gaps (20 ms is real time)`,
  );
  // The service sends a little ahead and Twilio buffers it, so only a gap longer than that lead is heard.
  console.log(
    `as heard at the phone: gap p99 ${pacing.heardP99Ms.toFixed(1)} ms, max ${pacing.heardMaxMs.toFixed(1)} ms (20 ms is unbroken audio)`,
  );
  if (failure) throw new CliError(`the call went wrong: ${failure instanceof Error ? failure.message : String(failure)}`, 1);
  if (o.apiKey && call.callId) await printTranscript(o, call.callId);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`simulate-call: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(err instanceof CliError ? err.exitCode : 1);
  },
);
