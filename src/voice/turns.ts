// Turn-taking: decides, from the VAD, the STT, keypad digits and whether the agent is talking, when the caller's
// turn is over (endpointing, a VAD stuck on noise, a keypad entry), when the caller interrupts the agent (barge-in
// vs backchannel), when to prompt a silent caller, and when the call has lasted long enough; with previews on, also
// when the caller's words are complete enough to prepare a reply before the turn ends (and when that no longer
// holds); with resumption on, when the caller goes on after their turn ended but before any of the reply was heard
// (the reply is dropped and the turn taken up again). Pure apart from its clock: it says what it decided
// (TurnDecision) and the call session acts on it.
import type { Clock, Timer } from './clock.js';
import { endpointingDelay } from './endpointing.js';
import type { SttEvent } from './stt/stt.js';
import type { VadEvent } from './vad/vad.js';

export interface TurnRules {
  /** Silence after the caller's last words before the turn is taken as finished. */
  endpointingMs: number;
  /**
   * Read the words (endpointing.ts): shorter than endpointingMs after a complete question or sentence, longer after
   * "um", "and", "my number is four five". Off (or absent): always endpointingMs.
   */
  adaptiveEndpointing?: boolean;
  /** Caller speech shorter than this does not interrupt the agent (noises, "uh-huh"). */
  minInterruptionMs: number;
  silencePromptMs: number;
  maxDurationMs: number;
}

/**
 * After the STT's last words, this long past the endpointing time with no new words ends the turn even though
 * the VAD still hears speech: loud background talk or a TV can hold a VAD open (Silero fails at babble 10 dB,
 * bench:vad), and the caller must not wait for the call's maximum duration.
 */
export const STUCK_SPEECH_GRACE_MS = 1500;
/** Keypad digits pressed less than this apart are one entry ("1 2 3 4" for a PIN); '#' ends an entry at once. */
export const DTMF_GAP_MS = 1500;
/** An entry this long is taken at once. */
const MAX_DIGITS = 32;
/**
 * A caller turn is taken up again (turn-resumed) at most this many times in a row: a caller whose breathing or
 * background the VAD hears as speech must not keep the agent silent. Past it, speech before the reply's audio is
 * an interruption as it was before resumption (barge-in rules).
 */
export const MAX_RESUMES = 3;

export type TurnDecision =
  /** The caller's turn is over: the agent answers `text` (what it says replaces any reply in progress). */
  | { type: 'turn'; text: string; startMs: number; endMs: number; metrics: Record<string, number> }
  /**
   * The caller has stopped and the STT has given its words, but the endpointing time still runs: a reply to `text`
   * may be prepared, not spoken. The turn that follows with the same text may use it (only `previews` on).
   */
  | { type: 'turn-preview'; text: string }
  /**
   * The caller spoke again after their turn ended, before any audio of the reply was sent: drop the reply, the
   * turn goes on (its next `turn` carries `text`, the words so far, and more). `afterMs`: from the turn's end to
   * the speech; `resumes`: how many times in a row (at most MAX_RESUMES). Only with `resumption` on.
   */
  | { type: 'turn-resumed'; text: string; afterMs: number; resumes: number }
  /** The last preview no longer holds (the caller speaks again, or the agent does): drop what was prepared. */
  | { type: 'turn-preview-cancel'; reason: 'caller_resumed' | 'agent_speaking' }
  /** The caller interrupts the agent: stop talking and drop the queued audio. */
  | { type: 'barge-in'; speechMs: number; voicedMs: number }
  /** The turn was ended on the STT's words while the VAD still hears speech (it is stuck on noise). */
  | { type: 'turn-forced'; wordsMsAgo: number }
  /** A keypad digit (before it is part of an entry). */
  | { type: 'digit'; digit: string }
  /** The caller has been silent for silencePromptMs: ask whether they are there; the second time, say goodbye. */
  | { type: 'silence-prompt' }
  | { type: 'silence-goodbye' }
  | { type: 'max-duration' };

export class TurnDetector {
  private callerSpeaking = false;
  private speechStartedAt = 0;
  /** Voiced caller audio since the caller started speaking over the agent. */
  private interruptVoicedMs = 0;
  private endedAt = 0;
  private heardText = '';
  private lastFinalAt = 0;
  /** The STT gave a final (even an empty one) since the speech last ended; what its last words said of themselves. */
  private sttCaughtUp = false;
  private sttEndOfTurn: boolean | undefined;
  private sttConfidence: number | undefined;
  /** A reply of the agent is under way (thinking or speaking). */
  private replying = false;
  private agentSpeaking = false;
  private digits = '';
  private silencePrompts = 0;
  private stopped = false;
  private endpointTimer: Timer | undefined;
  private silenceTimer: Timer | undefined;
  private stuckTimer: Timer | undefined;
  private dtmfTimer: Timer | undefined;
  private maxTimer: Timer | undefined;
  /** The text of the last turn-preview not yet cancelled or followed by its turn. */
  private previewed: string | undefined;
  /** The STT has given a final since the caller last started speaking: the words are complete so far. */
  private finalSinceSpeech = false;
  /** The STT has given interim words since its last final: more words are coming (a streaming STT's mid-speech final). */
  private wordsPending = false;
  /** The spoken turn the reply under way answers, until the reply's first audio: the caller may still take it up. */
  private openTurn: { text: string; startedAt: number; decidedAt: number } | undefined;
  /** Turns taken up again since the agent was last heard. */
  private resumes = 0;

  constructor(
    private readonly rules: TurnRules,
    private readonly clock: Clock,
    private readonly decide: (decision: TurnDecision) => void,
    /**
     * previews: say turn-preview / turn-preview-cancel (preemptive replies); off, they are never said.
     * resumption: say turn-resumed when the caller goes on before the reply's first audio (agentAudioStarted).
     */
    private readonly opts: { previews?: boolean; resumption?: boolean } = {},
  ) {}

  /** When the caller's last speech (or keypad entry) ended, on the clock: voice-to-voice is measured from it. */
  get speechEndedAt(): number {
    return this.endedAt;
  }

  /** The call starts: its maximum duration runs, and the silence prompt unless the agent speaks first. */
  start(opts: { agentSpeaksFirst: boolean }): void {
    this.maxTimer = this.clock.setTimeout(() => this.decide({ type: 'max-duration' }), this.rules.maxDurationMs);
    if (!opts.agentSpeaksFirst) this.armSilenceTimer();
  }

  /** The call is over: no more decisions. */
  stop(): void {
    this.stopped = true;
    for (const t of [this.maxTimer, this.endpointTimer, this.silenceTimer, this.stuckTimer, this.dtmfTimer]) this.clock.clearTimeout(t);
  }

  // ---- what the session tells it ----

  /** The VAD's verdict on one caller frame (`voiced`: the frame itself is speech), `frameMs` long. */
  vad(event: VadEvent | null, voiced: boolean, frameMs: number): void {
    if (this.stopped) return;
    if (event === 'speech-start') this.onSpeechStart();
    else if (event === 'speech-end') this.onSpeechEnd();
    else if (this.callerSpeaking && this.agentSpeaking && voiced) {
      // Only voiced audio counts towards an interruption: the pauses inside "Sorry, stop" do not, and neither
      // does the VAD's hangover after a short "uh-huh".
      this.interruptVoicedMs += frameMs;
      if (this.interruptVoicedMs >= this.rules.minInterruptionMs) this.bargeIn();
    }
  }

  stt(event: SttEvent): void {
    if (this.stopped) return;
    if (event.type === 'final') {
      this.sttCaughtUp = true;
      this.sttEndOfTurn = event.endOfTurn;
      if (event.text.trim()) this.sttConfidence = event.confidence;
      // Caught up with nothing new: the words heard may now end the turn sooner.
      if (!event.text.trim() && this.rules.adaptiveEndpointing) this.maybeEndTurn();
    }
    if ((event.type !== 'final' && event.type !== 'interim') || !event.text.trim()) return;
    this.clock.clearTimeout(this.stuckTimer);
    this.wordsPending = event.type === 'interim';
    if (event.type === 'interim') return;
    this.heardText = `${this.heardText} ${event.text.trim()}`.trim();
    this.lastFinalAt = this.clock.now();
    this.finalSinceSpeech = true;
    this.maybeEndTurn();
    this.maybePreview();
    if (this.callerSpeaking)
      this.stuckTimer = this.clock.setTimeout(() => this.endStuckSpeech(), this.rules.endpointingMs + STUCK_SPEECH_GRACE_MS);
  }

  /** A keypad digit interrupts the agent like speech; the entry becomes a caller turn the agent answers. */
  digit(digit: string): void {
    if (this.stopped || !/^[0-9*#]$/.test(digit)) return;
    this.decide({ type: 'digit', digit });
    if (this.agentSpeaking) this.bargeIn();
    this.clock.clearTimeout(this.silenceTimer);
    this.clock.clearTimeout(this.dtmfTimer);
    if (digit !== '#') this.digits += digit;
    if (digit === '#' || this.digits.length >= MAX_DIGITS) this.submitDigits();
    else this.dtmfTimer = this.clock.setTimeout(() => this.submitDigits(), DTMF_GAP_MS);
  }

  /** A reply of the agent started (it replaces any other). */
  replyStarted(): void {
    this.replying = true;
    // A reply that does not answer a turn just ended (a goodbye at the maximum duration) is not taken back.
    this.openTurn = undefined;
  }

  /** The agent's audio started: the caller is not silent at us. */
  agentSpeakingStarted(): void {
    this.agentSpeaking = true;
    // Words heard from now wait to be a barge-in or a backchannel: a reply prepared for them no longer holds.
    this.cancelPreview('agent_speaking');
    this.clock.clearTimeout(this.silenceTimer);
  }

  /**
   * The reply's first audio is being sent to the caller: from now on speech over it is an interruption or a
   * backchannel, never the caller's turn going on.
   */
  agentAudioStarted(): void {
    this.openTurn = undefined;
    this.resumes = 0;
  }

  /** The session stored the caller's last turn (its reply ended without audio): it is not taken up again. */
  callerTurnStored(): void {
    this.openTurn = undefined;
  }

  /**
   * The agent's reply is over. Words the caller said over it that did not interrupt it were a backchannel
   * ("uh-huh"): dropped, unless the caller is still speaking.
   */
  replyEnded(interrupted: boolean): void {
    if (!interrupted && !this.callerSpeaking) this.heardText = '';
    this.openTurn = undefined;
    this.replying = false;
    this.agentSpeaking = false;
    this.armSilenceTimer();
  }

  // ---- the rules ----

  private onSpeechStart(): void {
    this.callerSpeaking = true;
    this.speechStartedAt = this.clock.now();
    this.finalSinceSpeech = false;
    this.cancelPreview('caller_resumed');
    this.clock.clearTimeout(this.endpointTimer);
    this.clock.clearTimeout(this.silenceTimer);
    this.interruptVoicedMs = 0;
    if (this.openTurn && this.replying && this.resumes < MAX_RESUMES) this.resume(this.openTurn);
    if (this.agentSpeaking && this.rules.minInterruptionMs === 0) this.bargeIn();
  }

  /**
   * The caller goes on before the reply to their turn was heard (VAD speech: a noise too short for the VAD does not
   * count): the agent had not answered yet, so the turn is not over. Its words and start are taken back; the reply
   * is dropped (the session aborts it) and the turn ends again as any turn does, with all the words.
   */
  private resume(turn: NonNullable<TurnDetector['openTurn']>): void {
    this.openTurn = undefined;
    this.resumes++;
    this.replying = false;
    this.agentSpeaking = false;
    // Words the STT gave after the turn ended (a late final) follow the turn's.
    this.heardText = `${turn.text} ${this.heardText}`.trim();
    this.speechStartedAt = turn.startedAt;
    this.decide({
      type: 'turn-resumed',
      text: this.heardText,
      afterMs: Math.round(this.clock.now() - turn.decidedAt),
      resumes: this.resumes,
    });
  }

  private onSpeechEnd(): void {
    this.clock.clearTimeout(this.stuckTimer);
    this.callerSpeaking = false;
    this.endedAt = this.clock.now();
    this.sttCaughtUp = false;
    if (!this.replying) this.armSilenceTimer();
    this.clock.clearTimeout(this.endpointTimer);
    this.endpointTimer = this.clock.setTimeout(() => this.maybeEndTurn(), this.endpointingMs());
    this.maybePreview();
  }

  /**
   * The caller is silent, the STT has given the words of their last speech, and the turn has not ended yet: a reply
   * to them may be prepared.
   */
  private maybePreview(): void {
    if (
      !this.opts.previews ||
      this.stopped ||
      this.callerSpeaking ||
      this.agentSpeaking ||
      !this.heardText ||
      !this.finalSinceSpeech ||
      this.wordsPending
    )
      return;
    if (this.previewed === this.heardText) return;
    this.previewed = this.heardText;
    this.decide({ type: 'turn-preview', text: this.heardText });
  }

  private cancelPreview(reason: 'caller_resumed' | 'agent_speaking'): void {
    if (this.previewed === undefined || this.stopped) return;
    this.previewed = undefined;
    this.decide({ type: 'turn-preview-cancel', reason });
  }

  /** The silence that ends the turn after the words heard so far (asked again as new words arrive). */
  private endpointingMs(): number {
    if (!this.rules.adaptiveEndpointing) return this.rules.endpointingMs;
    const hints = { sttCaughtUp: this.sttCaughtUp, endOfTurn: this.sttEndOfTurn, confidence: this.sttConfidence };
    return endpointingDelay(this.heardText, this.rules.endpointingMs, hints);
  }

  /** The turn ends when the caller has been silent for the endpointing time and the STT has given its text. */
  private maybeEndTurn(): void {
    if (this.callerSpeaking || !this.heardText || this.stopped) return;
    // While the agent talks, words wait: they become part of the turn if the caller goes on to interrupt
    // ("Sorry, | stop there"), or are dropped as a backchannel ("uh-huh") when the agent finishes.
    if (this.agentSpeaking) return;
    const silentFor = this.clock.now() - this.endedAt;
    const endpointingMs = this.endpointingMs();
    if (silentFor < endpointingMs) {
      // Timers may fire a fraction of a millisecond early on this clock: wait out the rest.
      this.clock.clearTimeout(this.endpointTimer);
      this.endpointTimer = this.clock.setTimeout(() => this.maybeEndTurn(), endpointingMs - silentFor + 1);
      return;
    }
    const text = this.heardText;
    this.heardText = '';
    this.previewed = undefined;
    this.silencePrompts = 0;
    const metrics = { endpointing: Math.round(silentFor), stt_final: Math.max(0, Math.round(this.lastFinalAt - this.endedAt)) };
    const turn = { text, startedAt: this.speechStartedAt, decidedAt: this.clock.now() };
    this.decide({ type: 'turn', text, startMs: Math.round(this.speechStartedAt), endMs: Math.round(this.endedAt), metrics });
    // After the session started the reply to it (replyStarted): until its first audio the caller may take it up.
    if (this.opts.resumption && !this.stopped) this.openTurn = turn;
  }

  /**
   * The STT has had nothing new to say for a while, yet the VAD still hears speech: the VAD is stuck on background
   * noise. The turn ends at the last words. Until the VAD hears silence again, turns end on STT finals alone, and
   * the noise does not count as an interruption (callerSpeaking stays false).
   */
  private endStuckSpeech(): void {
    if (!this.callerSpeaking || !this.heardText || this.stopped || this.agentSpeaking) return;
    this.callerSpeaking = false;
    this.endedAt = this.lastFinalAt;
    this.decide({ type: 'turn-forced', wordsMsAgo: Math.round(this.clock.now() - this.lastFinalAt) });
    this.maybeEndTurn();
  }

  private submitDigits(): void {
    const digits = this.digits;
    this.digits = '';
    if (!digits || this.stopped) return;
    const at = Math.round(this.clock.now());
    this.endedAt = this.clock.now();
    this.previewed = undefined;
    this.silencePrompts = 0;
    // A keypad entry is not taken up again by speech.
    this.openTurn = undefined;
    this.decide({ type: 'turn', text: `(pressed on the keypad: ${digits.split('').join(' ')})`, startMs: at, endMs: at, metrics: {} });
  }

  private bargeIn(): void {
    if (!this.replying) return;
    this.agentSpeaking = false;
    // The reply is stopped as an interruption: its turn stands.
    this.openTurn = undefined;
    this.decide({
      type: 'barge-in',
      speechMs: Math.round(this.clock.now() - this.speechStartedAt),
      voicedMs: Math.round(this.interruptVoicedMs),
    });
  }

  private armSilenceTimer(): void {
    this.clock.clearTimeout(this.silenceTimer);
    if (this.stopped) return;
    this.silenceTimer = this.clock.setTimeout(() => {
      if (this.callerSpeaking || this.agentSpeaking || this.stopped) return;
      this.silencePrompts++;
      this.decide({ type: this.silencePrompts > 1 ? 'silence-goodbye' : 'silence-prompt' });
    }, this.rules.silencePromptMs);
  }
}
