// OpenAI embeddings through the official SDK (also any OpenAI-compatible server via baseURL). The SDK retries
// 408/409/429/5xx itself, honouring Retry-After; what still fails becomes a ProviderError.
import OpenAI from 'openai';
import { toProviderError } from '../../lib/openai-error.js';
import { ProviderError } from '../../lib/provider-error.js';
import { type EmbedOptions, type Embedder, l2normalize } from './embedder.js';

const NATIVE_DIMENSIONS: Record<string, number> = {
  'text-embedding-3-small': 1536,
  'text-embedding-3-large': 3072,
  'text-embedding-ada-002': 1536,
};

export interface OpenAIEmbedderOptions {
  apiKey: string;
  model?: string;
  /** Shortened output (text-embedding-3 models only). */
  dimensions?: number;
  baseURL?: string;
  maxRetries?: number;
  timeoutMs?: number;
}

export class OpenAIEmbedder implements Embedder {
  readonly model: string;
  readonly dimensions: number;
  /** The API takes up to 2048 inputs; smaller batches keep one failed call cheap to retry. */
  readonly maxBatchSize = 128;
  private readonly client: OpenAI;
  private readonly requestDimensions: number | undefined;

  constructor(opts: OpenAIEmbedderOptions) {
    this.model = opts.model ?? 'text-embedding-3-small';
    const native = NATIVE_DIMENSIONS[this.model];
    if (opts.dimensions !== undefined && !this.model.startsWith('text-embedding-3')) {
      throw new Error(`dimensions is only supported by text-embedding-3 models, not ${this.model}`);
    }
    if (opts.dimensions === undefined && native === undefined) {
      throw new Error(`unknown embedding model ${this.model}: give its dimensions`);
    }
    this.requestDimensions = opts.dimensions;
    this.dimensions = opts.dimensions ?? native!;
    this.client = new OpenAI({
      apiKey: opts.apiKey,
      baseURL: opts.baseURL,
      maxRetries: opts.maxRetries ?? 4,
      timeout: opts.timeoutMs ?? 30_000,
    });
  }

  async embed(texts: string[], opts: EmbedOptions = {}): Promise<Float32Array[]> {
    if (texts.length === 0) return [];
    try {
      // The SDK asks for base64 by default and decodes it to numbers; we keep its default for smaller responses.
      const res = await this.client.embeddings.create(
        { model: this.model, input: texts, ...(this.requestDimensions && { dimensions: this.requestDimensions }) },
        { signal: opts.signal },
      );
      if (res.usage) opts.onUsage?.(res.usage.prompt_tokens);
      const out = new Array<Float32Array>(texts.length);
      for (const d of res.data) out[d.index] = l2normalize(Float32Array.from(d.embedding));
      if (out.some((v) => !v || v.length !== this.dimensions)) {
        throw new ProviderError(
          'openai',
          `embeddings response does not match the request (${this.dimensions} dims x ${texts.length})`,
          false,
        );
      }
      return out;
    } catch (err) {
      throw toProviderError(err);
    }
  }
}
