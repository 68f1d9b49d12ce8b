// The analysis by Anthropic: structured output through tool use, one tool whose input_schema is the answer's schema
// and tool_choice forcing it, so the answer is the tool call's input; checked against the schema here.
import Anthropic from '@anthropic-ai/sdk';
import { toProviderError } from '../voice/llm/anthropic-llm.js';
import {
  type AnalysisInput,
  type AnalysisResult,
  type Analyzer,
  answerSchema,
  InvalidAnalysis,
  resultOf,
  systemPrompt,
  toJsonSchema,
  userPrompt,
  withOneRetry,
} from './analyzer.js';

export interface AnthropicAnalyzerOptions {
  apiKey: string;
  model?: string;
  baseURL?: string;
  timeoutMs?: number;
}

const TOOL = 'record_call_analysis';

export class AnthropicAnalyzer implements Analyzer {
  readonly engine = 'anthropic';
  readonly model: string;
  private readonly client: Anthropic;

  constructor(opts: AnthropicAnalyzerOptions) {
    this.model = opts.model ?? 'claude-haiku-4-5';
    this.client = new Anthropic({ apiKey: opts.apiKey, baseURL: opts.baseURL, maxRetries: 2, timeout: opts.timeoutMs ?? 60_000 });
  }

  analyze(input: AnalysisInput): Promise<AnalysisResult> {
    return withOneRetry(() => this.once(input));
  }

  private async once(input: AnalysisInput): Promise<AnalysisResult> {
    let message: Anthropic.Message;
    try {
      message = await this.client.messages.create(
        {
          model: this.model,
          max_tokens: 2048,
          system: systemPrompt(input),
          messages: [{ role: 'user', content: userPrompt(input) }],
          tools: [
            {
              name: TOOL,
              description: 'Records the analysis of the call.',
              input_schema: toJsonSchema(answerSchema(input)) as Anthropic.Tool.InputSchema,
            },
          ],
          tool_choice: { type: 'tool', name: TOOL },
        },
        { signal: input.signal },
      );
    } catch (err) {
      throw toProviderError(err);
    }
    if (message.stop_reason === 'max_tokens') throw new InvalidAnalysis('The model’s answer was cut off (max_tokens)');
    const use = message.content.find((b): b is Anthropic.ToolUseBlock => b.type === 'tool_use' && b.name === TOOL);
    if (!use) throw new InvalidAnalysis('The model did not call the analysis tool');
    return resultOf(input, use.input, this.engine, this.model);
  }
}
