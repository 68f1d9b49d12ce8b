// The local responder: an LLM stand-in with no model and no network, so the product works with no keys at all.
// It answers from the knowledge passages retrieved for the turn (the sentences sharing the most words with
// the question), says plainly when it does not know, says goodbye and ends the call, and hands over to a
// human when asked (through the end_call / transfer_call tools when the session offers them).
import { randomUUID } from 'node:crypto';
import { splitSentences } from '../../rag/chunking.js';
import { terms } from '../../rag/embedders/local-embedder.js';
import type { ChatRequest, KnowledgePassage, LLM, LlmChunk, ToolCall } from './llm.js';

const GOODBYE = /\b(good ?bye|bye( bye)?|that'?s all|that is all|nothing else|hang up|have a (good|nice) (day|one))\b/i;
const HUMAN =
  /\b(a human|real person|live person|operator|representative|transfer me|customer service|(speak|talk) (to|with) (a|an|the|your|some) ?(one|body|person|human|agent|staff|colleague|manager|doctor|nurse))\b/i;
const THANKS_ONLY = /^\s*(ok(ay)?|thanks?( you)?( very much)?|great|perfect|alright|all right)[.!\s]*$/i;

/** Sentences of the answer: at most this many, from the best passage first. */
const MAX_SENTENCES = 2;

export class LocalResponder implements LLM {
  readonly provider = 'local';
  readonly model = 'local-responder-v1';

  async *chat(request: ChatRequest): AsyncIterable<LlmChunk> {
    const last = [...request.messages].reverse().find((m) => m.role === 'user');
    const said = last?.content.trim() ?? '';
    const tool = (name: string) => request.tools.find((t) => t.name === name);
    const calls: ToolCall[] = [];
    let reply: string;

    if (!said) {
      reply = 'How can I help you today?';
    } else if (GOODBYE.test(said)) {
      reply = 'Thank you for calling. Goodbye!';
      if (tool('end_call')) calls.push({ id: `local_${randomUUID()}`, name: 'end_call', arguments: { reason: 'caller said goodbye' } });
    } else if (HUMAN.test(said)) {
      if (tool('transfer_call')) {
        reply = 'Of course. Let me connect you with a colleague, please hold.';
        calls.push({ id: `local_${randomUUID()}`, name: 'transfer_call', arguments: { reason: 'caller asked for a person' } });
      } else {
        reply =
          'I am sorry, nobody else can take the call right now. I can try to answer your question, or you can call back during opening hours.';
      }
    } else if (THANKS_ONLY.test(said)) {
      reply = 'You are welcome. Is there anything else I can help you with?';
    } else {
      const answer = extractAnswer(said, request.knowledge);
      reply =
        answer ??
        'I am sorry, I do not have information about that. Could you ask in another way, or would you like to speak with someone?';
    }

    // Streamed a few words at a time, like a model, so the pipeline's sentence splitting works the same.
    const words = reply.split(/(?<=\s)/);
    for (let i = 0; i < words.length; i += 4) {
      if (request.signal?.aborted) return;
      yield { type: 'text', text: words.slice(i, i + 4).join('') };
    }
    for (const call of calls) yield { type: 'tool_call', call };
    yield { type: 'done', finishReason: calls.length ? 'tool_calls' : 'stop' };
  }
}

/**
 * The sentences of the passages that best cover the question's (stemmed) words, best passage first. A word
 * found in few candidate sentences counts more than one found in many ("Saturday" over "clinic").
 */
export function extractAnswer(question: string, knowledge: KnowledgePassage[]): string | undefined {
  const asked = new Set(terms(question));
  if (asked.size === 0 || knowledge.length === 0) return undefined;
  const candidates = knowledge.slice(0, 3).flatMap((passage, p) =>
    // Earlier passages (better retrieval rank) win ties; within a passage, reading order.
    splitSentences(passage.text).map((sentence, s) => ({
      sentence: sentence.trim(),
      words: new Set(terms(sentence)),
      order: p * 1000 + s,
    })),
  );
  const weight = new Map<string, number>();
  for (const w of asked) {
    const df = candidates.filter((c) => c.words.has(w)).length;
    if (df > 0) weight.set(w, Math.log(1 + candidates.length / df));
  }
  const best = candidates
    .map((c) => ({ ...c, score: [...c.words].reduce((sum, w) => sum + (weight.get(w) ?? 0), 0) }))
    .filter((c) => c.score > 0)
    .sort((a, b) => b.score - a.score || a.order - b.order);
  if (best.length === 0) return undefined;
  return best
    .slice(0, MAX_SENTENCES)
    .sort((a, b) => a.order - b.order)
    .map((x) => x.sentence)
    .join(' ');
}
