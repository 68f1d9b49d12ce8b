// The analysis by OpenAI (or an OpenAI-compatible server): one chat completion with structured outputs
// (`response_format: json_schema`, strict), so the answer is JSON in the schema; checked again here all the same.
import OpenAI from 'openai';
import { toProviderError } from '../lib/openai-error.js';
import {
  type AnalysisInput,
  type AnalysisResult,
  type Analyzer,
  answerSchema,
  InvalidAnalysis,
  resultOf,
  systemPrompt,
  toStrictJsonSchema,
  userPrompt,
  withOneRetry,
} from './analyzer.js';

export interface OpenAiAnalyzerOptions {
  apiKey: string;
  model?: string;
  baseURL?: string;
  provider?: string;
  /** The outbound guard's fetch, for a server the tenant chose. */
  fetch?: typeof fetch;
  timeoutMs?: number;
}

export class OpenAiAnalyzer implements Analyzer {
  readonly engine: string;
  readonly model: string;
  private readonly client: OpenAI;

  constructor(opts: OpenAiAnalyzerOptions) {
    this.engine = opts.provider ?? 'openai';
    this.model = opts.model ?? 'gpt-4o-mini';
    // Off the call's path: time for a long transcript, and the SDK's retries for transient failures.
    this.client = new OpenAI({
      apiKey: opts.apiKey,
      baseURL: opts.baseURL,
      maxRetries: 2,
      timeout: opts.timeoutMs ?? 60_000,
      fetch: opts.fetch,
    });
  }

  analyze(input: AnalysisInput): Promise<AnalysisResult> {
    return withOneRetry(() => this.once(input));
  }

  private async once(input: AnalysisInput): Promise<AnalysisResult> {
    let completion: OpenAI.Chat.Completions.ChatCompletion;
    try {
      completion = await this.client.chat.completions.create(
        {
          model: this.model,
          messages: [
            { role: 'system', content: systemPrompt(input) },
            { role: 'user', content: userPrompt(input) },
          ],
          response_format: {
            type: 'json_schema',
            json_schema: { name: 'call_analysis', schema: toStrictJsonSchema(answerSchema(input)), strict: true },
          },
        },
        { signal: input.signal },
      );
    } catch (err) {
      throw toProviderError(err, this.engine);
    }
    const message = completion.choices[0]?.message;
    if (message?.refusal) throw new InvalidAnalysis('The model refused to analyse the call');
    if (completion.choices[0]?.finish_reason === 'length') throw new InvalidAnalysis('The model’s answer was cut off (length)');
    let answer: unknown;
    try {
      answer = JSON.parse(message?.content ?? '');
    } catch {
      throw new InvalidAnalysis('The model’s answer is not JSON');
    }
    return resultOf(input, answer, this.engine, this.model);
  }
}
