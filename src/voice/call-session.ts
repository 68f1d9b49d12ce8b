// One call, end to end: caller audio -> VAD + STT -> the turn detector -> the agent's turn (retrieval, LLM, tools)
// -> sentences -> TTS -> paced playout, with barge-in, greeting, silence prompts and a maximum duration. The rules
// of turn-taking are in turns.ts (this file acts on its decisions), the agent's voice in speaker.ts. Every turn,
// event and latency is written to the call's log (call-log.ts) as it happens.
//
// Preemptive replies: when the turn detector previews the caller's words (they stopped, the STT gave its final, the
// endpointing time still runs), the agent's reply is started at once and its text kept, unspoken; if the turn then
// ends with the same words, that reply is spoken (the TTS starts only then: no audio is made or sent for a turn
// that has not ended); otherwise it is aborted and what it produced is counted as waste.
//
// Turn resumption: the caller's turn is stored (transcript, the model's history, the screen's caller.final) when
// its reply's first audio is sent, or when the reply ends without any. Until then the caller may go on ("Yes." ...
// "And can you send me the receipt too?"): the turn detector says turn-resumed, the reply is aborted and counted as
// waste like a dropped prepared reply, and the turn ends again with all the words: one caller turn, not two.
//
// What the caller's screen is told as the call goes (a browser call's transcript and latencies) is sent from the
// same points, from the same values as what is written: lib/live-messages.ts.
//
// Time: every duration is measured on the session's clock (ms since the call started).
import type { FastifyBaseLogger } from 'fastify';
import { type AgentState, latencyMessage, type LiveMessage } from '../lib/live-messages.js';
import { ProviderError, publicFailure } from '../lib/provider-error.js';
import type { CallStatus } from '../services/calls.js';
import { estimateTokens } from '../rag/chunking.js';
import { type Agent, type AgentAction, type AgentEvent, type TurnResult, agentEndReason, toolCalledEvent } from './agent.js';
import { durationMs, StreamResampler } from './audio.js';
import type { CallLog } from './call-log.js';
import type { Clock } from './clock.js';
import type { ChatMessage } from './llm/llm.js';
import { sentencesOf, type Spoken, speak } from './speaker.js';
import type { STT, SttEvent, SttStream } from './stt/stt.js';
import type { Transport } from './transports/transport.js';
import type { TTS } from './tts/tts.js';
import { type TurnDecision, TurnDetector, type TurnRules } from './turns.js';
import type { VAD } from './vad/vad.js';

export interface CallBehaviour extends TurnRules {
  greeting: string | null;
  /** Prepare the reply while the endpointing time runs (the tenant's `call.preemptive_generation`); default on. */
  preemptive?: boolean;
  /** Take the caller's turn up again when they go on before the reply is heard (`call.turn_resumption`); default on. */
  turnResumption?: boolean;
}

export interface CallSessionParts {
  transport: Transport;
  vad: VAD;
  stt: STT;
  tts: TTS;
  agent: Agent;
  /** Where the call's turns, events and end are written (bound to its tenant and call). */
  callLog: CallLog;
  behaviour: CallBehaviour;
  log: FastifyBaseLogger;
  /** The conversation so far, rebuilt from the database when a call resumes. */
  history?: ChatMessage[];
  /** The call's clock (ms) and its timers: realClock shifted to the call's start in production, a ManualClock in tests. */
  clock: Clock;
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

export const SILENCE_PROMPT = 'Are you still there?';
export const SILENCE_GOODBYE = 'I have not heard from you, so I will end the call now. Goodbye!';
export const MAX_DURATION_GOODBYE = 'We have reached the maximum length for this call. Thank you for calling, goodbye!';

/** A reply started before its turn ended: its text is kept, unspoken, until the turn ends or it is dropped. */
interface Prepared {
  /** The caller's words it answers. */
  said: string;
  /** The conversation it was given (this.history's length then: the history only grows). */
  historyLength: number;
  controller: AbortController;
  sentences: AsyncIterable<string>;
  result: Promise<TurnResult | undefined>;
  startedAt: number;
  /** The text the model produced so far, and the tokens it reported. */
  produced: { text: string; outputTokens?: number };
}

/**
 * What dropped replies cost during one caller turn (prepared ones, and those taken back by turn resumption, each
 * counted apart): stored with the agent's next turn.
 */
class Waste {
  replies = 0;
  llmChars = 0;
  llmTokens = 0;
  ttsChars = 0;

  /** Counts a dropped reply's output: the tokens the provider reported, else estimated from the text (an aborted stream reports none). */
  add(produced: { text: string; outputTokens?: number }, ttsChars: number): { llm_chars: number; llm_tokens: number; tts_chars: number } {
    const llmChars = produced.text.length;
    const llmTokens = produced.outputTokens ?? estimateTokens(produced.text);
    this.replies++;
    this.llmChars += llmChars;
    this.llmTokens += llmTokens;
    this.ttsChars += ttsChars;
    return { llm_chars: llmChars, llm_tokens: llmTokens, tts_chars: ttsChars };
  }

  /** Into an agent turn's metrics, when a reply was dropped: `count`, and `<prefix>_wasted_*`. */
  report(metrics: Record<string, number>, count: string, prefix: string): void {
    if (this.replies === 0) return;
    metrics[count] = this.replies;
    metrics[`${prefix}_wasted_llm_tokens`] = this.llmTokens;
    metrics[`${prefix}_wasted_llm_chars`] = this.llmChars;
    metrics[`${prefix}_wasted_tts_chars`] = this.ttsChars;
  }
}

type DiscardReason = 'caller_resumed' | 'agent_speaking' | 'text_changed' | 'context_changed' | 'call_ended';

/** A caller turn being answered, stored once the caller hears the answer begin (or the reply ends without audio). */
interface OpenTurn {
  text: string;
  startMs: number;
  endMs: number;
  metrics: Record<string, number>;
  /** When the turn ended (the reply started). */
  startedAt: number;
  /** What the reply's model produced so far, and the characters given to the TTS. */
  produced: { text: string; outputTokens?: number };
  ttsChars: number;
  committed: boolean;
  /** The caller went on before any audio: the reply was dropped, nothing of this turn is stored. */
  resumed: boolean;
  /** The reply answering it. */
  reply?: Reply;
}

interface Reply {
  controller: AbortController;
  done: Promise<void>;
  /** The caller barged in. */
  interrupted?: boolean;
}

export class CallSession {
  private readonly history: ChatMessage[];
  private readonly turns: TurnDetector;
  private readonly callLog: CallLog;
  private stt!: SttStream;
  /** Caller audio to the STT's rate, when they differ: one continuous stream for the whole call. */
  private toStt: StreamResampler | undefined;
  private reply: Reply | undefined;
  private finished: ((o: CallOutcome) => void) | undefined;
  private outcome: CallOutcome | undefined;
  /** Writes happen in order, off the audio path. */
  private records: Promise<unknown> = Promise.resolve();
  /** What the caller's screen was last told the agent is doing. */
  private state: AgentState | undefined;
  /** The recogniser's final pieces of the caller's current turn (its interim words follow them). */
  private callerWords: string[] = [];
  private prepared: Prepared | undefined;
  private waste = new Waste();
  private resumedWaste = new Waste();
  /** The caller turn whose reply has sent no audio yet. */
  private openTurn: OpenTurn | undefined;

  constructor(private readonly p: CallSessionParts) {
    this.history = [...(p.history ?? [])];
    this.callLog = p.callLog;
    this.turns = new TurnDetector(p.behaviour, p.clock, (d) => this.onDecision(d), {
      previews: p.behaviour.preemptive !== false,
      resumption: p.behaviour.turnResumption !== false,
    });
  }

  private now(): number {
    return this.p.clock.now();
  }

  async run(): Promise<CallOutcome> {
    const { transport, behaviour } = this.p;
    const done = new Promise<CallOutcome>((resolve) => (this.finished = resolve));
    this.stt = this.p.stt.stream({});
    transport.onHangup((violation) => {
      if (violation === undefined) return this.finish({ status: 'completed', reason: 'caller hung up' });
      // The transport refused the caller (audio faster than real time, a message flood): said on the call.
      this.record(() => this.callLog.event('media.policy_violation', { reason: violation }));
      this.finish({ status: 'failed', reason: `media policy: ${violation}` });
    });
    transport.onDtmf((digit) => this.turns.digit(digit));
    this.turns.start({ agentSpeaksFirst: Boolean(behaviour.greeting) });
    this.setState('listening');
    const listening = this.listen();
    // Without speech-to-text the call cannot go on (every engine in its chain failed): end it, recorded as failed.
    const transcribing = this.transcribe().catch((err: unknown) => {
      this.p.log.error({ err, callId: this.callLog.callId }, 'speech-to-text failed');
      this.providerFailed('stt', err);
      this.finish({ status: 'failed', reason: 'speech-to-text failed' });
    });
    if (behaviour.greeting) this.startReply(this.speakFixed(behaviour.greeting));

    const outcome = await done;
    this.discardPrepared('call_ended');
    this.reply?.controller.abort();
    await this.stt.close();
    await this.p
      .beforeClose?.(outcome)
      .catch((err: unknown) => this.p.log.error({ err, callId: this.callLog.callId }, 'end-of-call hand-off failed'));
    await transport.close(outcome.reason);
    await Promise.allSettled([listening, transcribing, this.reply?.done]);
    await this.records;
    await this.callLog.end(outcome.status, outcome.reason);
    return outcome;
  }

  // ---- caller audio -> VAD and STT -> the turn detector ----

  private async listen(): Promise<void> {
    for await (const frame of this.p.transport.audio()) {
      if (this.outcome) break;
      if (frame.sampleRate === this.p.stt.sampleRate) this.stt.push(frame);
      else {
        this.toStt ??= new StreamResampler(frame.sampleRate, this.p.stt.sampleRate);
        this.stt.push({ ...frame, pcm: this.toStt.push(frame.pcm), sampleRate: this.p.stt.sampleRate });
      }
      const event = this.p.vad.push(frame);
      // The STT gives its final words for what it heard once the caller stops.
      if (event === 'speech-end') this.stt.flush();
      this.turns.vad(event, this.p.vad.voiced, durationMs(frame.pcm.length, frame.sampleRate));
    }
  }

  private async transcribe(): Promise<void> {
    for await (const event of this.stt.events) {
      this.turns.stt(event);
      this.showCallerWords(event);
    }
  }

  /** The caller's words so far in this turn, for the screen: the final pieces, then the piece being revised. */
  private showCallerWords(event: SttEvent): void {
    if ((event.type !== 'interim' && event.type !== 'final') || !event.text.trim()) return;
    if (event.type === 'final') this.callerWords.push(event.text.trim());
    const words = event.type === 'interim' ? [...this.callerWords, event.text.trim()] : this.callerWords;
    this.live({ type: 'caller.interim', text: words.join(' ') });
  }

  private onDecision(d: TurnDecision): void {
    switch (d.type) {
      case 'turn': {
        this.callerWords = [];
        this.setState('thinking');
        this.reply?.controller.abort();
        const prepared = this.takePrepared(d.text);
        const turn: OpenTurn = {
          text: d.text,
          startMs: d.startMs,
          endMs: d.endMs,
          metrics: d.metrics,
          startedAt: this.now(),
          produced: prepared?.produced ?? { text: '' },
          ttsChars: 0,
          committed: false,
          resumed: false,
        };
        this.openTurn = turn;
        this.startReply(this.respond(turn, prepared));
        turn.reply = this.reply;
        return;
      }
      case 'turn-resumed':
        return this.resumeTurn(d.text, d.afterMs, d.resumes);
      case 'turn-preview':
        return this.prepare(d.text);
      case 'turn-preview-cancel':
        return this.discardPrepared(d.reason);
      case 'barge-in':
        return this.bargeIn(d.speechMs, d.voicedMs);
      case 'turn-forced':
        this.record(() =>
          this.callLog.event('turn.forced', { reason: 'speech detector still hearing speech', words_ms_ago: d.wordsMsAgo }),
        );
        return;
      case 'digit':
        this.record(() => this.callLog.event('dtmf.received', { digit: d.digit }));
        return;
      case 'silence-prompt':
        return this.startReply(this.speakFixed(SILENCE_PROMPT));
      case 'silence-goodbye':
        return void this.sayAndEnd(SILENCE_GOODBYE, 'caller silent');
      case 'max-duration':
        return void this.sayAndEnd(MAX_DURATION_GOODBYE, 'maximum duration reached');
    }
  }

  private bargeIn(speechMs: number, voicedMs: number): void {
    const reply = this.reply;
    if (!reply) return;
    reply.interrupted = true;
    reply.controller.abort();
    this.p.transport.clear();
    this.record(() => this.callLog.event('turn.barge_in', { speech_ms: speechMs, voiced_ms: voicedMs }));
  }

  // ---- the agent's side ----

  private startReply(run: (signal: AbortSignal) => Promise<void>): void {
    const controller = new AbortController();
    const reply: Reply = {
      controller,
      done: run(controller.signal)
        .catch((err) => {
          this.p.log.error({ err, callId: this.callLog.callId }, 'reply failed');
          // The language model's failures are caught where it streams: what reaches here is the voice's.
          if (err instanceof ProviderError && !controller.signal.aborted) this.providerFailed('tts', err);
        })
        .finally(() => {
          if (this.reply === reply) {
            this.reply = undefined;
            this.turns.replyEnded(reply.interrupted === true);
            this.setState('listening');
          }
        }),
    };
    this.reply = reply;
    this.turns.replyStarted();
  }

  /** The agent starts talking: the turn detector knows, and the caller hears what it says. */
  private speak(
    sentences: Iterable<string> | AsyncIterable<string>,
    signal: AbortSignal,
    onFirstAudio?: (atMs: number) => void,
    beforeFirstAudio?: () => void,
  ): Promise<Spoken> {
    this.turns.agentSpeakingStarted();
    const onSentence = (text: string) => {
      // Called as the first frame of each sentence is about to be sent.
      beforeFirstAudio?.();
      beforeFirstAudio = undefined;
      this.setState('speaking');
      this.live({ type: 'agent.sentence', text });
    };
    return speak({ ...this.p, onSentence }, sentences, signal, onFirstAudio);
  }

  /** Says fixed text (greeting, prompts) as an agent turn. */
  private speakFixed(text: string) {
    return async (signal: AbortSignal) => {
      const started = this.now();
      const heard = await this.speak([text], signal);
      this.record(() =>
        this.callLog.addTurn({
          speaker: 'agent',
          text: heard.text,
          startMs: Math.round(started),
          endMs: Math.round(this.now()),
          interrupted: heard.interrupted,
          truncated: heard.truncated,
        }),
      );
      if (heard.text) this.history.push({ role: 'assistant', content: heard.text });
    };
  }

  // ---- preemptive replies ----

  /** Starts the reply to `said` before the turn has ended: its text is kept, nothing is spoken. */
  private prepare(said: string): void {
    if (this.prepared?.said === said) return;
    this.discardPrepared('text_changed');
    if (this.outcome) return;
    const controller = new AbortController();
    const produced: Prepared['produced'] = { text: '' };
    const events = this.p.agent.reply([...this.history], said, controller.signal, {
      callId: this.callLog.callId,
      onUsage: (u) => (produced.outputTokens = (produced.outputTokens ?? 0) + u.outputTokens),
    });
    const { sentences, result } = sentencesOf(countOutput(events, produced), (err) => this.agentFailed(err, controller.signal));
    this.prepared = { said, historyLength: this.history.length, controller, sentences, result, startedAt: this.now(), produced };
  }

  /** The prepared reply, if it answers exactly these words in this conversation; any other is dropped. */
  private takePrepared(said: string): Prepared | undefined {
    const prepared = this.prepared;
    if (!prepared) return undefined;
    if (prepared.said !== said) return void this.discardPrepared('text_changed');
    if (prepared.historyLength !== this.history.length) return void this.discardPrepared('context_changed');
    this.prepared = undefined;
    return prepared;
  }

  /** Aborts the prepared reply (the model, the search) and counts what it produced as waste. */
  private discardPrepared(reason: DiscardReason): void {
    const prepared = this.prepared;
    if (!prepared) return;
    this.prepared = undefined;
    prepared.controller.abort();
    // Nothing was synthesized for it: the TTS starts only once a turn has ended.
    const wasted = this.waste.add(prepared.produced, 0);
    this.record(() =>
      this.callLog.event('turn.preemptive_discarded', { reason, ...wasted, ms_prepared: Math.round(this.now() - prepared.startedAt) }),
    );
  }

  /** The agent's reply failed (not aborted): logged, and a provider's failure counted as one. */
  private agentFailed(err: unknown, signal: AbortSignal): void {
    if (signal.aborted) return;
    this.p.log.error({ err, callId: this.callLog.callId }, 'the agent could not answer');
    if (err instanceof ProviderError) this.providerFailed('llm', err);
  }

  /**
   * The caller's turn is final: stored in the transcript and the history, told to the screen, and what dropped
   * replies cost during it goes with the agent's answer.
   */
  private commitTurn(turn: OpenTurn): void {
    if (turn.committed || turn.resumed) return;
    turn.committed = true;
    if (this.openTurn === turn) {
      this.openTurn = undefined;
      this.turns.callerTurnStored();
    }
    const { text, startMs, endMs, metrics } = turn;
    this.record(() => this.callLog.addTurn({ speaker: 'caller', text, startMs, endMs }));
    this.live({ type: 'caller.final', text, start_ms: Math.round(startMs), end_ms: Math.round(endMs) });
    this.history.push({ role: 'user', content: text });
    this.waste.report(metrics, 'preemptive_discarded', 'preemptive');
    this.waste = new Waste();
    this.resumedWaste.report(metrics, 'turn_resumed', 'resumed');
    this.resumedWaste = new Waste();
  }

  /**
   * The caller went on before the reply to their turn was heard: the reply is aborted (model, search, TTS) and
   * counted as waste; nothing of the turn is stored, the turn detector ends it again with all the words.
   */
  private resumeTurn(text: string, afterMs: number, resumes: number): void {
    const turn = this.openTurn;
    const reply = this.reply;
    if (!turn || turn.committed || !reply || turn.reply !== reply) return;
    turn.resumed = true;
    this.openTurn = undefined;
    // Detached: the turn detector already knows this reply is over, its end must not tell it again.
    this.reply = undefined;
    reply.controller.abort();
    const wasted = this.resumedWaste.add(turn.produced, turn.ttsChars);
    this.record(() =>
      this.callLog.event('turn.resumed', { after_ms: afterMs, resumes, ...wasted, ms_replying: Math.round(this.now() - turn.startedAt) }),
    );
    // The screen's interim words go on from the turn's.
    this.callerWords = [text];
    this.setState('listening');
  }

  private respond(turn: OpenTurn, prepared?: Prepared) {
    const { text: said, metrics } = turn;
    return async (signal: AbortSignal) => {
      const turnStart = this.now();
      // The LLM streams into sentences while each one is turned into audio as it arrives; a prepared reply has
      // been streaming since the preview, and is aborted with this one (barge-in, hang-up).
      let reply: ReturnType<typeof sentencesOf>;
      if (prepared) {
        const abort = () => prepared.controller.abort();
        if (signal.aborted) abort();
        else signal.addEventListener('abort', abort, { once: true });
        reply = prepared;
        metrics.preemptive = 1;
        metrics.preemptive_head_start = Math.round(turnStart - prepared.startedAt);
      } else {
        const produced = turn.produced;
        const events = this.p.agent.reply([...this.history], said, signal, {
          callId: this.callLog.callId,
          onUsage: (u) => (produced.outputTokens = (produced.outputTokens ?? 0) + u.outputTokens),
        });
        reply = sentencesOf(countOutput(events, produced), (err) => this.agentFailed(err, signal));
      }
      const { sentences, result } = reply;
      const spoken = await this.speak(
        countSpoken(sentences, turn),
        signal,
        (firstAudioAt) => {
          metrics.voice_to_voice = Math.round(firstAudioAt - this.turns.speechEndedAt);
          metrics.first_audio = Math.round(firstAudioAt - turnStart);
        },
        () => {
          this.turns.agentAudioStarted();
          this.commitTurn(turn);
        },
      );
      // The caller went on before hearing anything: this turn and its reply are not stored.
      if (turn.resumed) return;
      this.commitTurn(turn);
      const agentTurn = await result;
      Object.assign(metrics, agentTurn?.metrics ?? {});
      if (spoken.ttsFirstByteMs !== undefined) metrics.tts_ttfb = spoken.ttsFirstByteMs;
      const { text, interrupted, truncated } = spoken;
      const latency = latencyMessage(metrics);
      if (latency) this.live(latency);
      this.record(() =>
        this.callLog.addTurn({
          speaker: 'agent',
          text,
          startMs: Math.round(turnStart),
          endMs: Math.round(this.now()),
          interrupted,
          truncated,
          citations: agentTurn?.citations ?? [],
          metrics,
        }),
      );
      for (const t of agentTurn?.toolCalls ?? []) this.record(() => this.callLog.event('tool.called', toolCalledEvent(t)));
      // History keeps what the caller actually heard.
      if (text) this.history.push({ role: 'assistant', content: text });
      const action = agentTurn?.action;
      if (!action || interrupted) return;
      if (action.type === 'end_call') return this.finish({ status: 'completed', reason: agentEndReason(action), action });
      this.record(() => this.callLog.event('transfer.requested', { to: action.to, reason: action.reason }));
      this.finish({ status: 'completed', reason: 'transferred', action });
    };
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
    this.record(() => this.callLog.event('hangup.requested', { reason }));
    this.finish({ status: 'completed', reason });
  }

  /** Hands the caller to a person (the API's transfer): the transport's owner connects them to `to`. */
  transfer(to: string, reason: string): void {
    this.record(() => this.callLog.event('transfer.requested', { to, reason }));
    this.finish({ status: 'completed', reason: 'transferred', action: { type: 'transfer_call', to, reason } });
  }

  private finish(outcome: CallOutcome): void {
    if (this.outcome) return;
    this.outcome = outcome;
    this.turns.stop();
    this.finished?.(outcome);
  }

  /** Tells the caller's screen, if the transport has one (a browser call). */
  private live(message: LiveMessage): void {
    if (!this.outcome) this.p.transport.notify?.(message);
  }

  private setState(state: AgentState): void {
    if (state === this.state) return;
    this.state = state;
    this.live({ type: 'agent.state', state });
  }

  /**
   * A provider failed with no engine left to take over (a chain's last, or a chain of one): its stage, name, status
   * and short reason only (publicFailure), in the call's events and the operator's provider_errors_total.
   */
  private providerFailed(stage: 'stt' | 'llm' | 'tts', err: unknown): void {
    const { status, reason } = publicFailure(err);
    const provider = err instanceof ProviderError ? err.provider : stage === 'stt' ? this.p.stt.provider : this.p.tts.provider;
    this.record(() => this.callLog.event('provider.failed', { stage, provider, status, reason }));
  }

  /** Queues a database write behind the previous ones; a failed write is logged, the call goes on. */
  private record(write: () => Promise<unknown>): void {
    this.records = this.records.then(write).catch((err) => this.p.log.error({ err, callId: this.callLog.callId }, 'could not record'));
  }
}

/** Passes the agent's events on, keeping the text as it comes (what a dropped reply produced). */
async function* countOutput(events: AsyncIterable<AgentEvent>, produced: { text: string }): AsyncGenerator<AgentEvent> {
  for await (const event of events) {
    if (event.type === 'text') produced.text += event.text;
    yield event;
  }
}

/** Passes the sentences on to the speaker, counting the characters given to the TTS (waste if the turn resumes). */
async function* countSpoken(sentences: AsyncIterable<string>, turn: { ttsChars: number }): AsyncGenerator<string> {
  for await (const sentence of sentences) {
    turn.ttsChars += sentence.length;
    yield sentence;
  }
}
