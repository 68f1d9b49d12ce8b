// One call, end to end: caller audio -> VAD + STT -> end of turn -> the agent's turn (retrieval, LLM, tools)
// -> sentences -> TTS -> paced playout, with barge-in, greeting, silence prompts and a maximum duration.
// Every turn, event and latency is written to the database as it happens.
//
// Time: every duration is measured on the transport's clock (ms since the call's audio started).
import type { FastifyBaseLogger } from 'fastify';
import type { CallService, CallStatus } from '../services/calls.js';
import { type Agent, type AgentAction, type TurnResult, toolCalledEvent } from './agent.js';
import { StreamResampler } from './audio.js';
import type { ChatMessage } from './llm/llm.js';
import { SentenceSplitter } from './sentences.js';
import type { STT, SttStream } from './stt/stt.js';
import type { Transport } from './transports/transport.js';
import type { TTS } from './tts/tts.js';
import type { VAD } from './vad/vad.js';

export interface CallBehaviour {
  greeting: string | null;
  /** Silence after the caller's last words before the turn is taken as finished. */
  endpointingMs: number;
  /** Caller speech shorter than this does not interrupt the agent (noises, "uh-huh"). */
  minInterruptionMs: number;
  silencePromptMs: number;
  maxDurationMs: number;
}

export interface CallSessionParts {
  tenantId: string;
  callId: string;
  transport: Transport;
  vad: VAD;
  stt: STT;
  tts: TTS;
  agent: Agent;
  calls: CallService;
  behaviour: CallBehaviour;
  log: FastifyBaseLogger;
  /** The conversation so far, rebuilt from the database when a call resumes. */
  history?: ChatMessage[];
  /** The transport's clock, ms. */
  now: () => number;
  /**
   * Called with the outcome while the transport is still open: a phone transfer must be handed to the carrier
   * before the media stream closes (Twilio hangs up a call whose stream ended and has nothing left to do).
   */
  beforeClose?: (outcome: CallOutcome) => Promise<void>;
}

export interface CallOutcome {
  status: CallStatus;
  reason: string;
  action?: AgentAction;
}

/**
 * After the STT's last words, this long past the endpointing time with no new words ends the turn even though
 * the VAD still hears speech: loud background talk or a TV can hold a VAD open (Silero fails at babble 10 dB,
 * bench:vad), and the caller must not wait for the call's maximum duration.
 */
const STUCK_SPEECH_GRACE_MS = 1500;
/** Keypad digits pressed less than this apart are one entry ("1 2 3 4" for a PIN); '#' ends an entry at once. */
const DTMF_GAP_MS = 1500;
const SILENCE_PROMPT = 'Are you still there?';
const SILENCE_GOODBYE = 'I have not heard from you, so I will end the call now. Goodbye!';
const MAX_DURATION_GOODBYE = 'We have reached the maximum length for this call. Thank you for calling, goodbye!';

interface Reply {
  controller: AbortController;
  done: Promise<void>;
  /** The caller barged in. */
  interrupted?: boolean;
}

export class CallSession {
  private readonly history: ChatMessage[];
  private stt!: SttStream;
  private callerSpeaking = false;
  private speechStartedAt = 0;
  /** Voiced caller audio since the caller started speaking over the agent. */
  private interruptVoicedMs = 0;
  /** Caller audio to the STT's rate, when they differ: one continuous stream for the whole call. */
  private toStt: StreamResampler | undefined;
  private speechEndedAt = 0;
  private heardText = '';
  private lastFinalAt = 0;
  private reply: Reply | undefined;
  private agentSpeaking = false;
  private endpointTimer: NodeJS.Timeout | undefined;
  private silenceTimer: NodeJS.Timeout | undefined;
  private stuckTimer: NodeJS.Timeout | undefined;
  private digits = '';
  private dtmfTimer: NodeJS.Timeout | undefined;
  private silencePrompts = 0;
  private finished: ((o: CallOutcome) => void) | undefined;
  private outcome: CallOutcome | undefined;
  /** Writes happen in order, off the audio path. */
  private records: Promise<unknown> = Promise.resolve();

  constructor(private readonly p: CallSessionParts) {
    this.history = [...(p.history ?? [])];
  }

  async run(): Promise<CallOutcome> {
    const { transport, behaviour } = this.p;
    const done = new Promise<CallOutcome>((resolve) => (this.finished = resolve));
    this.stt = this.p.stt.stream({});
    transport.onHangup((violation) => {
      if (violation === undefined) return this.finish({ status: 'completed', reason: 'caller hung up' });
      // The transport refused the caller (audio faster than real time, a message flood): said on the call.
      this.record(() => this.p.calls.event(this.p.tenantId, this.p.callId, 'media.policy_violation', { reason: violation }));
      this.finish({ status: 'failed', reason: `media policy: ${violation}` });
    });
    transport.onDtmf((digit) => this.onDigit(digit));
    const maxTimer = setTimeout(() => void this.sayAndEnd(MAX_DURATION_GOODBYE, 'maximum duration reached'), behaviour.maxDurationMs);
    const listening = this.listen();
    // Without speech-to-text the call cannot go on (every engine in its chain failed): end it, recorded as failed.
    const transcribing = this.transcribe().catch((err: unknown) => {
      this.p.log.error({ err, callId: this.p.callId }, 'speech-to-text failed');
      this.finish({ status: 'failed', reason: 'speech-to-text failed' });
    });
    if (behaviour.greeting) this.startReply(this.speakFixed(behaviour.greeting));
    else this.armSilenceTimer();

    const outcome = await done;
    clearTimeout(maxTimer);
    for (const t of [this.endpointTimer, this.silenceTimer, this.stuckTimer, this.dtmfTimer]) clearTimeout(t);
    this.reply?.controller.abort();
    await this.stt.close();
    await this.p.beforeClose?.(outcome).catch((err: unknown) => this.p.log.error({ err, callId: this.p.callId }, 'end-of-call hand-off failed'));
    await transport.close(outcome.reason);
    await Promise.allSettled([listening, transcribing, this.reply?.done]);
    await this.records;
    await this.p.calls.end(this.p.tenantId, this.p.callId, outcome.status, outcome.reason);
    return outcome;
  }

  // ---- caller audio -> VAD and STT ----

  private async listen(): Promise<void> {
    for await (const frame of this.p.transport.audio()) {
      if (this.outcome) break;
      if (frame.sampleRate === this.p.stt.sampleRate) this.stt.push(frame);
      else {
        this.toStt ??= new StreamResampler(frame.sampleRate, this.p.stt.sampleRate);
        this.stt.push({ ...frame, pcm: this.toStt.push(frame.pcm), sampleRate: this.p.stt.sampleRate });
      }
      const event = this.p.vad.push(frame);
      if (event === 'speech-start') this.onSpeechStart();
      else if (event === 'speech-end') this.onSpeechEnd();
      else if (this.callerSpeaking && this.agentSpeaking && this.p.vad.voiced) {
        // Only voiced audio counts towards an interruption: the pauses inside "Sorry, stop" do not, and neither
        // does the VAD's hangover after a short "uh-huh".
        this.interruptVoicedMs += (frame.pcm.length * 1000) / frame.sampleRate;
        if (this.interruptVoicedMs >= this.p.behaviour.minInterruptionMs) this.bargeIn();
      }
    }
  }

  private async transcribe(): Promise<void> {
    for await (const event of this.stt.events) {
      if ((event.type !== 'final' && event.type !== 'interim') || !event.text.trim()) continue;
      clearTimeout(this.stuckTimer);
      if (event.type === 'interim') continue;
      this.heardText = `${this.heardText} ${event.text.trim()}`.trim();
      this.lastFinalAt = this.p.now();
      this.maybeEndTurn();
      if (this.callerSpeaking) this.stuckTimer = setTimeout(() => this.endStuckSpeech(), this.p.behaviour.endpointingMs + STUCK_SPEECH_GRACE_MS);
    }
  }

  /**
   * The STT has had nothing new to say for a while, yet the VAD still hears speech: the VAD is stuck on background
   * noise. The turn ends at the last words. Until the VAD hears silence again, turns end on STT finals alone, and
   * the noise does not count as an interruption (callerSpeaking stays false).
   */
  private endStuckSpeech(): void {
    if (!this.callerSpeaking || !this.heardText || this.outcome || this.agentSpeaking) return;
    this.callerSpeaking = false;
    this.speechEndedAt = this.lastFinalAt;
    this.record(() => this.p.calls.event(this.p.tenantId, this.p.callId, 'turn.forced', { reason: 'speech detector still hearing speech', words_ms_ago: Math.round(this.p.now() - this.lastFinalAt) }));
    this.maybeEndTurn();
  }

  private onSpeechStart(): void {
    this.callerSpeaking = true;
    this.speechStartedAt = this.p.now();
    clearTimeout(this.endpointTimer);
    clearTimeout(this.silenceTimer);
    this.interruptVoicedMs = 0;
    if (this.agentSpeaking && this.p.behaviour.minInterruptionMs === 0) this.bargeIn();
  }

  private onSpeechEnd(): void {
    clearTimeout(this.stuckTimer);
    this.callerSpeaking = false;
    this.speechEndedAt = this.p.now();
    this.stt.flush();
    if (!this.reply) this.armSilenceTimer();
    clearTimeout(this.endpointTimer);
    this.endpointTimer = setTimeout(() => this.maybeEndTurn(), this.p.behaviour.endpointingMs);
  }

  /** The turn ends when the caller has been silent for the endpointing time and the STT has given its text. */
  private maybeEndTurn(): void {
    if (this.callerSpeaking || !this.heardText || this.outcome) return;
    // While the agent talks, words wait: they become part of the turn if the caller goes on to interrupt
    // ("Sorry, | stop there"), or are dropped as a backchannel ("uh-huh") when the agent finishes.
    if (this.agentSpeaking) return;
    const silentFor = this.p.now() - this.speechEndedAt;
    if (silentFor < this.p.behaviour.endpointingMs) {
      // Timers may fire a fraction of a millisecond early on this clock: wait out the rest.
      clearTimeout(this.endpointTimer);
      this.endpointTimer = setTimeout(() => this.maybeEndTurn(), this.p.behaviour.endpointingMs - silentFor + 1);
      return;
    }
    const said = this.heardText;
    this.heardText = '';
    this.silencePrompts = 0;
    const metrics = {
      endpointing: Math.round(silentFor),
      stt_final: Math.max(0, Math.round(this.lastFinalAt - this.speechEndedAt)),
    };
    this.record(() => this.p.calls.addTurn(this.p.tenantId, this.p.callId, { speaker: 'caller', text: said, startMs: Math.round(this.speechStartedAt), endMs: Math.round(this.speechEndedAt) }));
    this.reply?.controller.abort();
    this.startReply(this.respond(said, metrics));
  }

  /** A keypad digit interrupts the agent like speech; the entry becomes a caller turn the agent answers. */
  private onDigit(digit: string): void {
    if (this.outcome || !/^[0-9*#]$/.test(digit)) return;
    this.record(() => this.p.calls.event(this.p.tenantId, this.p.callId, 'dtmf.received', { digit }));
    if (this.agentSpeaking) this.bargeIn();
    clearTimeout(this.silenceTimer);
    clearTimeout(this.dtmfTimer);
    if (digit !== '#') this.digits += digit;
    if (digit === '#' || this.digits.length >= 32) this.submitDigits();
    else this.dtmfTimer = setTimeout(() => this.submitDigits(), DTMF_GAP_MS);
  }

  private submitDigits(): void {
    const digits = this.digits;
    this.digits = '';
    if (!digits || this.outcome) return;
    const said = `(pressed on the keypad: ${digits.split('').join(' ')})`;
    const at = Math.round(this.p.now());
    this.speechEndedAt = this.p.now();
    this.silencePrompts = 0;
    this.record(() => this.p.calls.addTurn(this.p.tenantId, this.p.callId, { speaker: 'caller', text: said, startMs: at, endMs: at }));
    this.reply?.controller.abort();
    this.startReply(this.respond(said, {}));
  }

  private bargeIn(): void {
    const reply = this.reply;
    if (!reply) return;
    reply.interrupted = true;
    reply.controller.abort();
    this.p.transport.clear();
    this.agentSpeaking = false;
    const speechMs = Math.round(this.p.now() - this.speechStartedAt);
    this.record(() => this.p.calls.event(this.p.tenantId, this.p.callId, 'turn.barge_in', { speech_ms: speechMs, voiced_ms: Math.round(this.interruptVoicedMs) }));
  }

  // ---- the agent's side ----

  private startReply(run: (signal: AbortSignal) => Promise<void>): void {
    const controller = new AbortController();
    const reply: Reply = {
      controller,
      done: run(controller.signal)
        .catch((err) => this.p.log.error({ err, callId: this.p.callId }, 'reply failed'))
        .finally(() => {
          if (this.reply === reply) {
            if (!reply.interrupted && !this.callerSpeaking) this.heardText = '';
            this.reply = undefined;
            this.agentSpeaking = false;
            this.armSilenceTimer();
          }
        }),
    };
    this.reply = reply;
  }

  /** Says fixed text (greeting, prompts) as an agent turn. */
  private speakFixed(text: string) {
    return async (signal: AbortSignal) => {
      const started = this.p.now();
      const heard = await this.speak([text], signal);
      this.record(() => this.p.calls.addTurn(this.p.tenantId, this.p.callId, { speaker: 'agent', text: heard.text, startMs: Math.round(started), endMs: Math.round(this.p.now()), interrupted: heard.interrupted }));
      if (heard.text) this.history.push({ role: 'assistant', content: heard.text });
    };
  }

  private respond(said: string, metrics: Record<string, number>) {
    return async (signal: AbortSignal) => {
      const turnStart = this.p.now();
      this.history.push({ role: 'user', content: said });
      const sentences: string[] = [];
      let notify: (() => void) | undefined;
      let llmDone = false;
      let turn: TurnResult | undefined;
      // The LLM streams into sentences while the speaker below turns each one into audio as it arrives.
      const thinking = (async () => {
        const splitter = new SentenceSplitter();
        try {
          for await (const event of this.p.agent.reply(this.history.slice(0, -1), said, signal, { callId: this.p.callId })) {
            if (event.type === 'text') sentences.push(...splitter.push(event.text));
            else turn = event.turn;
            notify?.();
          }
          const rest = splitter.flush();
          if (rest) sentences.push(rest);
        } finally {
          // Also when the reply is aborted (barge-in, hang-up) or every LLM failed: the speaker must not wait on.
          llmDone = true;
          notify?.();
        }
      })().catch((err: unknown) => {
        // Handled here at once: an abort before the first sentence rejects while the speaker is still waiting.
        if (!signal.aborted) this.p.log.error({ err, callId: this.p.callId }, 'the agent could not answer');
      });
      const spoken = await this.speak(
        {
          [Symbol.asyncIterator]: async function* () {
            let i = 0;
            for (;;) {
              if (i < sentences.length) yield sentences[i++]!;
              else if (llmDone) return;
              else await new Promise<void>((r) => (notify = r));
            }
          },
        },
        signal,
        (firstAudioAt) => {
          metrics.voice_to_voice = Math.round(firstAudioAt - this.speechEndedAt);
          metrics.first_audio = Math.round(firstAudioAt - turnStart);
        },
      );
      await thinking;
      Object.assign(metrics, turn?.metrics ?? {});
      if (spoken.ttsFirstByteMs !== undefined) metrics.tts_ttfb = spoken.ttsFirstByteMs;
      this.record(() =>
        this.p.calls.addTurn(this.p.tenantId, this.p.callId, {
          speaker: 'agent',
          text: spoken.text,
          startMs: Math.round(turnStart),
          endMs: Math.round(this.p.now()),
          interrupted: spoken.interrupted,
          citations: turn?.citations ?? [],
          metrics,
        }),
      );
      for (const t of turn?.toolCalls ?? []) this.record(() => this.p.calls.event(this.p.tenantId, this.p.callId, 'tool.called', toolCalledEvent(t)));
      // History keeps what the caller actually heard.
      if (spoken.text) this.history.push({ role: 'assistant', content: spoken.text });
      const action = turn?.action;
      if (action && !spoken.interrupted) {
        if (action.type === 'end_call') this.finish({ status: 'completed', reason: action.reason, action });
        else {
          this.record(() => this.p.calls.event(this.p.tenantId, this.p.callId, 'transfer.requested', { to: action.to, reason: action.reason }));
          this.finish({ status: 'completed', reason: 'transferred', action });
        }
      }
    };
  }

  /**
   * Synthesizes and queues sentences in order, one mark per sentence; returns the text the caller heard in full
   * (sentences whose mark was reached) and whether playback was cut short.
   */
  private async speak(
    sentences: Iterable<string> | AsyncIterable<string>,
    signal: AbortSignal,
    onFirstAudio?: (atMs: number) => void,
  ): Promise<{ text: string; interrupted: boolean; ttsFirstByteMs?: number }> {
    this.agentSpeaking = true;
    clearTimeout(this.silenceTimer);
    const marks: Promise<boolean>[] = [];
    const queued: string[] = [];
    let ttsFirstByteMs: number | undefined;
    let first = true;
    for await (const sentence of sentences) {
      if (signal.aborted) break;
      const asked = this.p.now();
      let toTransport: StreamResampler | undefined;
      for await (const frame of this.p.tts.synthesize(sentence, { signal })) {
        if (signal.aborted) break;
        if (first) {
          first = false;
          ttsFirstByteMs = Math.round(this.p.now() - asked);
          onFirstAudio?.(this.p.now());
        }
        if (frame.sampleRate === this.p.transport.sampleRate) this.p.transport.send(frame);
        else {
          // One resampler per sentence: its audio is one continuous stream.
          toTransport ??= new StreamResampler(frame.sampleRate, this.p.transport.sampleRate);
          this.p.transport.send({ ...frame, pcm: toTransport.push(frame.pcm), sampleRate: this.p.transport.sampleRate });
        }
      }
      if (signal.aborted) break;
      const tail = toTransport?.flush();
      if (tail?.length) this.p.transport.send({ pcm: tail, sampleRate: this.p.transport.sampleRate, timestampMs: 0 });
      queued.push(sentence);
      marks.push(this.p.transport.mark(`s${marks.length}`));
    }
    const played = await Promise.all(marks);
    const heard = queued.filter((_, i) => played[i]);
    return { text: heard.join(' '), interrupted: signal.aborted || heard.length < queued.length, ttsFirstByteMs };
  }

  private armSilenceTimer(): void {
    clearTimeout(this.silenceTimer);
    if (this.outcome) return;
    this.silenceTimer = setTimeout(() => {
      if (this.callerSpeaking || this.agentSpeaking || this.outcome) return;
      this.silencePrompts++;
      if (this.silencePrompts > 1) void this.sayAndEnd(SILENCE_GOODBYE, 'caller silent');
      else this.startReply(this.speakFixed(SILENCE_PROMPT));
    }, this.p.behaviour.silencePromptMs);
  }

  private async sayAndEnd(text: string, reason: string): Promise<void> {
    if (this.outcome) return;
    this.reply?.controller.abort();
    this.p.transport.clear();
    this.startReply(this.speakFixed(text));
    await this.reply?.done;
    this.finish({ status: 'completed', reason });
  }

  /** Ends the call from outside (the API's hang-up, a shutdown); the caller hears nothing more. */
  hangup(reason: string): void {
    this.record(() => this.p.calls.event(this.p.tenantId, this.p.callId, 'hangup.requested', { reason }));
    this.finish({ status: 'completed', reason });
  }

  /** Hands the caller to a person (the API's transfer): the transport's owner connects them to `to`. */
  transfer(to: string, reason: string): void {
    this.record(() => this.p.calls.event(this.p.tenantId, this.p.callId, 'transfer.requested', { to, reason }));
    this.finish({ status: 'completed', reason: 'transferred', action: { type: 'transfer_call', to, reason } });
  }

  private finish(outcome: CallOutcome): void {
    if (this.outcome) return;
    this.outcome = outcome;
    this.finished?.(outcome);
  }

  /** Queues a database write behind the previous ones; a failed write is logged, the call goes on. */
  private record(write: () => Promise<unknown>): void {
    this.records = this.records.then(write).catch((err) => this.p.log.error({ err, callId: this.p.callId }, 'could not record'));
  }
}
