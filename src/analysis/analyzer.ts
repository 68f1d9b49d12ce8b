// What an analysis engine is given (the conversation, the tenant's outcomes, rubric and extraction schema) and what
// it returns; the JSON Schema the cloud models answer in, and the check of their answer against it.
import { checkArguments, type JsonSchema, type ObjectSchema } from '../lib/json-schema.js';

export interface AnalysisTurn {
  speaker: 'caller' | 'agent' | 'system';
  text: string;
}

export interface AnalysisInput {
  agentName: string;
  direction: string;
  /** The call's final status (completed, failed, busy, no_answer, ...). */
  status: string;
  /** Why it ended, from its call.ended event. */
  endReason: string | null;
  turns: AnalysisTurn[];
  /** Types of the call's events in order (transfer.requested, tool.called, ...). */
  events: string[];
  outcomes: string[];
  rubric: string | null;
  extractionSchema: ObjectSchema | null;
  signal?: AbortSignal;
}

export interface AnalysisResult {
  summary: string;
  outcome: string | null;
  success: { passed: boolean | null; reason: string };
  extracted: Record<string, unknown>;
  engine: string;
  model: string | null;
  /** True when the engine could not do all of it (the local engine: no rubric, only the fields its rules find). */
  partial: boolean;
  /** The extracted fields present in `extracted` (top-level names). */
  filled: string[];
  /** What the engine could not do, in words (the local engine says so here). */
  notes?: string;
}

export interface Analyzer {
  readonly engine: string;
  readonly model: string | null;
  analyze(input: AnalysisInput): Promise<AnalysisResult>;
}

/** The model's answer did not match the schema (an engine retries once, then the job fails with this reason). */
export class InvalidAnalysis extends Error {}

/** The conversation as the model reads it: the latest part when it is long (the end of a call says how it went). */
const MAX_TRANSCRIPT_CHARS = 24_000;

export function transcriptText(turns: AnalysisTurn[]): string {
  const lines = turns.filter((t) => t.speaker !== 'system').map((t) => `${t.speaker === 'caller' ? 'Caller' : 'Agent'}: ${t.text}`);
  let text = lines.join('\n');
  if (text.length > MAX_TRANSCRIPT_CHARS) text = `[earlier turns left out]\n${text.slice(-MAX_TRANSCRIPT_CHARS)}`;
  return text || '(no one spoke)';
}

export function systemPrompt(input: AnalysisInput): string {
  return [
    `You analyse a finished conversation between a caller and ${input.agentName}, an automated agent, for the business that runs the agent.`,
    'Answer with: a summary (at most three sentences, plain words); the outcome, exactly one of the allowed values;',
    'whether the call succeeded by the rubric, with a one-sentence reason; and the fields to extract, taken only from',
    'what was said (leave a field out, or null, when the conversation does not give it; never invent one).',
    `Allowed outcomes: ${input.outcomes.join(', ')}.`,
    `Rubric: ${input.rubric ?? 'the call succeeded when the caller’s request was handled or correctly passed on.'}`,
  ].join('\n');
}

export function userPrompt(input: AnalysisInput): string {
  return [
    `Channel: ${input.direction}. Final status: ${input.status}${input.endReason ? ` (${input.endReason})` : ''}.`,
    input.events.length ? `Events: ${input.events.join(', ')}.` : 'Events: none.',
    '',
    'Transcript:',
    transcriptText(input.turns),
  ].join('\n');
}

/** The answer's schema (our subset): summary, outcome, success and the tenant's fields under `extracted`. */
export function answerSchema(input: AnalysisInput): ObjectSchema {
  return {
    type: 'object',
    properties: {
      summary: { type: 'string', description: 'At most three sentences.' },
      outcome: { type: 'string', enum: input.outcomes },
      success: {
        type: 'object',
        properties: { passed: { type: 'boolean' }, reason: { type: 'string' } },
        required: ['passed', 'reason'],
      },
      extracted: input.extractionSchema ?? { type: 'object', properties: {} },
    },
    required: ['summary', 'outcome', 'success', 'extracted'],
  };
}

/** Plain JSON Schema (what Anthropic's input_schema takes): our subset, with extra properties refused. */
export function toJsonSchema(s: JsonSchema): Record<string, unknown> {
  if (s.type === 'array') return { ...s, items: toJsonSchema(s.items) };
  if (s.type !== 'object') return { ...s };
  return {
    ...s,
    properties: Object.fromEntries(Object.entries(s.properties).map(([k, v]) => [k, toJsonSchema(v)])),
    required: s.required ?? [],
    additionalProperties: false,
  };
}

/**
 * OpenAI's strict structured outputs: every property listed in `required` and `additionalProperties: false` on every
 * object, so a property the tenant left optional becomes required-but-nullable (`withoutNulls` undoes it).
 */
export function toStrictJsonSchema(s: JsonSchema): Record<string, unknown> {
  if (s.type === 'array') return { ...s, items: toStrictJsonSchema(s.items) };
  if (s.type !== 'object') return { ...s };
  const required = new Set(s.required ?? []);
  const properties = Object.fromEntries(
    Object.entries(s.properties).map(([k, v]) => {
      const strict = toStrictJsonSchema(v);
      if (required.has(k)) return [k, strict];
      const nullable: Record<string, unknown> = { ...strict, type: [strict.type, 'null'] };
      if (Array.isArray(strict.enum)) nullable.enum = [...(strict.enum as unknown[]), null];
      return [k, nullable];
    }),
  );
  return { ...s, properties, required: Object.keys(s.properties), additionalProperties: false };
}

/** An answer with the nulls of optional properties removed (the strict form's way of leaving a field out). */
export function withoutNulls(s: JsonSchema, v: unknown): unknown {
  if (s.type === 'array' && Array.isArray(v)) return v.map((x) => withoutNulls(s.items, x));
  if (s.type !== 'object' || typeof v !== 'object' || v === null || Array.isArray(v)) return v;
  const required = new Set(s.required ?? []);
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (x === null && !required.has(k)) continue;
    const prop = Object.hasOwn(s.properties, k) ? s.properties[k] : undefined;
    out[k] = prop ? withoutNulls(prop, x) : x;
  }
  return out;
}

/** The model's answer as a result, or InvalidAnalysis saying what is wrong with it. */
export function resultOf(input: AnalysisInput, answer: unknown, engine: string, model: string | null): AnalysisResult {
  const schema = answerSchema(input);
  const value = withoutNulls(schema, answer);
  const problems = checkArguments(schema, value).map((p) => p.replace('is not an argument of this tool', 'is not in the schema'));
  if (problems.length) throw new InvalidAnalysis(`The model's answer does not match the schema: ${problems.slice(0, 5).join('; ')}`);
  const a = value as { summary: string; outcome: string; success: { passed: boolean; reason: string }; extracted: Record<string, unknown> };
  return {
    summary: a.summary,
    outcome: a.outcome,
    success: a.success,
    extracted: a.extracted,
    engine,
    model,
    partial: false,
    filled: Object.keys(a.extracted),
  };
}

/** One engine call, retried once when the answer does not match the schema. */
export async function withOneRetry(attempt: () => Promise<AnalysisResult>): Promise<AnalysisResult> {
  try {
    return await attempt();
  } catch (err) {
    if (!(err instanceof InvalidAnalysis)) throw err;
    return attempt();
  }
}
