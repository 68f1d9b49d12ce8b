// Fallback chain: the first LLM that starts answering wins. A provider that fails before its first chunk
// (auth, rate limit, outage, timeout) hands over to the next without the caller noticing more than a delay.
import { ProviderError } from '../../lib/provider-error.js';
import type { ChatRequest, LLM, LlmChunk } from './llm.js';

export class FallbackLlm implements LLM {
  constructor(
    private readonly chain: LLM[],
    private readonly onFallback: (failed: LLM, err: unknown) => void = () => {},
  ) {
    if (chain.length === 0) throw new Error('a fallback chain needs at least one LLM');
  }

  get provider(): string {
    return this.chain[0]!.provider;
  }

  get model(): string {
    return this.chain[0]!.model;
  }

  async *chat(request: ChatRequest): AsyncIterable<LlmChunk> {
    let lastError: unknown;
    for (const llm of this.chain) {
      const iterator = llm.chat(request)[Symbol.asyncIterator]();
      let first: IteratorResult<LlmChunk>;
      try {
        first = await iterator.next();
      } catch (err) {
        if (request.signal?.aborted) throw err;
        lastError = err;
        this.onFallback(llm, err);
        continue;
      }
      if (first.done) return;
      yield first.value;
      // Once a provider has started answering, its words are being spoken: no switching mid-sentence.
      for (let r = await iterator.next(); !r.done; r = await iterator.next()) yield r.value;
      return;
    }
    throw lastError instanceof ProviderError
      ? lastError
      : new ProviderError('llm', `every LLM in the chain failed: ${String(lastError)}`, true);
  }
}
