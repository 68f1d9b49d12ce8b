// The agent's voice within a reply: the agent's streamed text cut into sentences as they complete, and sentences
// turned into audio on the transport, one mark per sentence, so the call knows what the caller actually heard:
// the sentences whose marks were reached, and of the sentence cut by a barge-in the words its played audio covered.
import type { AgentEvent, TurnResult } from './agent.js';
import { type AudioFrame, durationMs, StreamResampler } from './audio.js';
import type { Clock } from './clock.js';
import { SentenceSplitter } from './sentences.js';
import type { Transport } from './transports/transport.js';
import type { TTS } from './tts/tts.js';

export interface Spoken {
  /** What the caller heard: the sentences whose marks were reached, then the words heard of the one cut short. */
  text: string;
  /** Playback was cut short (barge-in, hang-up) or the reply aborted. */
  interrupted: boolean;
  /** `text` ends with part of a sentence (an estimate from the audio played of it: see heardWords). */
  truncated: boolean;
  /** From asking the TTS for the first sentence to its first audio. */
  ttsFirstByteMs?: number;
}

/**
 * The agent's reply as sentences while it streams: the LLM keeps writing while the first sentence is spoken.
 * `result` is the agent's turn (undefined when it failed or was aborted: the sentences then just end).
 */
export function sentencesOf(
  reply: AsyncIterable<AgentEvent>,
  onError: (err: unknown) => void,
): { sentences: AsyncIterable<string>; result: Promise<TurnResult | undefined> } {
  const sentences: string[] = [];
  let notify: (() => void) | undefined;
  let llmDone = false;
  let turn: TurnResult | undefined;
  const result = (async () => {
    const splitter = new SentenceSplitter();
    try {
      for await (const event of reply) {
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
  })()
    // Handled here at once: an abort before the first sentence rejects while the speaker is still waiting.
    .catch(onError)
    .then(() => turn);
  return {
    sentences: {
      [Symbol.asyncIterator]: async function* () {
        let i = 0;
        for (;;) {
          if (i < sentences.length) yield sentences[i++]!;
          else if (llmDone) return;
          else await new Promise<void>((r) => (notify = r));
        }
      },
    },
    result,
  };
}

/** One sentence on its way to the caller: when its audio was first queued, how much, and when its mark came back. */
interface Queued {
  text: string;
  firstSentAt: number;
  sentMs: number;
  /** Set once all its audio is queued. */
  mark?: Promise<boolean>;
  /** When the mark resolved (reached, or dropped by clear/close). */
  markAt?: number;
}

/**
 * The words of `sentence` heard when `fraction` of its audio was played: speaking time taken as proportional to
 * characters (a space counts as one), and only words heard to their end. Engines give no word timings we could
 * trust across vendors; at a steady speaking rate this is within a word or so.
 */
export function heardWords(sentence: string, fraction: number): string {
  const words = sentence.split(/\s+/).filter(Boolean);
  const total = words.reduce((n, w) => n + w.length + 1, 0) - 1;
  let budget = Math.max(0, Math.min(1, fraction)) * total + 1e-9;
  const heard: string[] = [];
  for (const w of words) {
    budget -= w.length + (heard.length ? 1 : 0);
    if (budget < 0) break;
    heard.push(w);
  }
  return heard.join(' ');
}

/**
 * Synthesizes and queues sentences in order, one mark per sentence; resolves once the last mark is reached or
 * dropped with what the caller heard: the sentences whose mark was reached, and of the first one cut short the words
 * its played audio covered. That sentence began playing when the mark before it was reached (or when its first audio
 * was queued, if later) and stopped at the abort (barge-in) or when its mark was dropped: the timing every transport
 * has, since marks come back when the caller's side has played the audio (Twilio's mark echo).
 */
export async function speak(
  out: { transport: Transport; tts: TTS; clock: Clock; onSentence?: (sentence: string) => void },
  sentences: Iterable<string> | AsyncIterable<string>,
  signal: AbortSignal,
  onFirstAudio?: (atMs: number) => void,
): Promise<Spoken> {
  const { transport, tts, clock } = out;
  const queued: Queued[] = [];
  let abortedAt: number | undefined;
  const onAbort = () => (abortedAt ??= clock.now());
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });
  let ttsFirstByteMs: number | undefined;
  let first = true;
  try {
    for await (const sentence of sentences) {
      if (signal.aborted) break;
      const asked = clock.now();
      let toTransport: StreamResampler | undefined;
      let current: Queued | undefined;
      let started = false;
      const send = (frame: AudioFrame) => {
        current ??= queued[queued.push({ text: sentence, firstSentAt: clock.now(), sentMs: 0 }) - 1]!;
        current.sentMs += durationMs(frame.pcm.length, frame.sampleRate);
        transport.send(frame);
      };
      for await (const frame of tts.synthesize(sentence, { signal })) {
        if (signal.aborted) break;
        if (!started) {
          started = true;
          out.onSentence?.(sentence);
        }
        if (first) {
          first = false;
          ttsFirstByteMs = Math.round(clock.now() - asked);
          onFirstAudio?.(clock.now());
        }
        if (frame.sampleRate === transport.sampleRate) send(frame);
        else {
          // One resampler per sentence: its audio is one continuous stream.
          toTransport ??= new StreamResampler(frame.sampleRate, transport.sampleRate);
          send({ ...frame, pcm: toTransport.push(frame.pcm), sampleRate: transport.sampleRate });
        }
      }
      if (signal.aborted) break;
      const tail = toTransport?.flush();
      if (tail?.length) send({ pcm: tail, sampleRate: transport.sampleRate, timestampMs: 0 });
      const q: Queued | undefined = current;
      if (!q) continue;
      q.mark = transport.mark(`s${queued.length - 1}`).then((reached) => {
        q.markAt = clock.now();
        return reached;
      });
    }
    const played = await Promise.all(queued.map((q) => q.mark ?? false));
    const cutAt = played.indexOf(false);
    const whole = (cutAt < 0 ? queued : queued.slice(0, cutAt)).map((q) => q.text);
    const partial = cutAt < 0 ? '' : heardOfCut(queued, cutAt, abortedAt);
    return {
      text: [...whole, partial].filter(Boolean).join(' '),
      interrupted: signal.aborted || cutAt >= 0,
      truncated: partial !== '',
      ttsFirstByteMs,
    };
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

/** The words heard of `queued[i]`, the first sentence whose audio was not all played. */
function heardOfCut(queued: Queued[], i: number, abortedAt: number | undefined): string {
  const cut = queued[i]!;
  const previous = queued[i - 1];
  const startedAt = Math.max(cut.firstSentAt, previous?.markAt ?? -Infinity);
  const stoppedAt = abortedAt ?? cut.markAt;
  if (stoppedAt === undefined || !(cut.sentMs > 0)) return '';
  // Audio still being synthesized when cut: what was queued stands in for the whole (an overestimate then).
  return heardWords(cut.text, (stoppedAt - startedAt) / cut.sentMs);
}
