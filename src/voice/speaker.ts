// The agent's voice within a reply: the agent's streamed text cut into sentences as they complete, and sentences
// turned into audio on the transport, one mark per sentence, so the call knows what the caller actually heard.
import type { AgentEvent, TurnResult } from './agent.js';
import { StreamResampler } from './audio.js';
import type { Clock } from './clock.js';
import { SentenceSplitter } from './sentences.js';
import type { Transport } from './transports/transport.js';
import type { TTS } from './tts/tts.js';

export interface Spoken {
  /** The sentences the caller heard in full (their marks were reached). */
  text: string;
  /** Playback was cut short (barge-in, hang-up) or the reply aborted. */
  interrupted: boolean;
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

/**
 * Synthesizes and queues sentences in order, one mark per sentence; resolves with the text the caller heard in full
 * (sentences whose mark was reached) once the last mark is reached or dropped.
 */
export async function speak(
  out: { transport: Transport; tts: TTS; clock: Clock; onSentence?: (sentence: string) => void },
  sentences: Iterable<string> | AsyncIterable<string>,
  signal: AbortSignal,
  onFirstAudio?: (atMs: number) => void,
): Promise<Spoken> {
  const { transport, tts, clock } = out;
  const marks: Promise<boolean>[] = [];
  const queued: string[] = [];
  let ttsFirstByteMs: number | undefined;
  let first = true;
  for await (const sentence of sentences) {
    if (signal.aborted) break;
    const asked = clock.now();
    let toTransport: StreamResampler | undefined;
    let started = false;
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
      if (frame.sampleRate === transport.sampleRate) transport.send(frame);
      else {
        // One resampler per sentence: its audio is one continuous stream.
        toTransport ??= new StreamResampler(frame.sampleRate, transport.sampleRate);
        transport.send({ ...frame, pcm: toTransport.push(frame.pcm), sampleRate: transport.sampleRate });
      }
    }
    if (signal.aborted) break;
    const tail = toTransport?.flush();
    if (tail?.length) transport.send({ pcm: tail, sampleRate: transport.sampleRate, timestampMs: 0 });
    queued.push(sentence);
    marks.push(transport.mark(`s${marks.length}`));
  }
  const played = await Promise.all(marks);
  const heard = queued.filter((_, i) => played[i]);
  return { text: heard.join(' '), interrupted: signal.aborted || heard.length < queued.length, ttsFirstByteMs };
}
