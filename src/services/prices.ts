// The price table: what one unit of each component costs (USD), as list prices the platform charges by default and
// per-tenant overrides the platform admin sets (tenant_billing.prices). Turns a usage line into its cost.
//
// Keys are `component:provider:unit` or, more precise, `component:provider:model:unit`; the most precise key wins,
// a tenant's override before the list price. Anything not listed costs 0: the local engines (pocketsphinx, espeak,
// the local responder and embedder) and browser audio are free, and still recorded.

export type UsageComponent = 'telephony' | 'stt' | 'llm' | 'tts' | 'embeddings';
/** seconds (telephony, stt), input/output tokens (llm), characters (tts), tokens (embeddings). */
export type UsageUnit = 'seconds' | 'input_tokens' | 'output_tokens' | 'characters' | 'tokens';

/** Who pays the vendor: the platform (its keys, the local engines) or the tenant (its own key or own server). */
export type BilledTo = 'platform' | 'tenant';

/** One line of usage: what was used, of which engine, and who pays the vendor for it. */
export interface UsageKey {
  component: UsageComponent;
  provider: string;
  model: string;
  unit: UsageUnit;
  billedTo: BilledTo;
}

export interface UsageLine extends UsageKey {
  quantity: number;
}

const perMinute = (usd: number) => usd / 60;
const perMillion = (usd: number) => usd / 1_000_000;
const perThousand = (usd: number) => usd / 1000;

/**
 * List prices (USD per unit) as the vendors published them when this was written; an operator who pays other
 * rates overrides them per tenant. Telephony is the carrier's per-minute rate for the call's whole length.
 */
export const LIST_PRICES: Readonly<Record<string, number>> = {
  'telephony:twilio:seconds': perMinute(0.014),
  'telephony:livekit:seconds': perMinute(0.01),
  'stt:deepgram:seconds': perMinute(0.0077),
  'llm:openai:input_tokens': perMillion(0.15),
  'llm:openai:output_tokens': perMillion(0.6),
  'llm:openai:gpt-4o-mini:input_tokens': perMillion(0.15),
  'llm:openai:gpt-4o-mini:output_tokens': perMillion(0.6),
  'llm:openai:gpt-4o:input_tokens': perMillion(2.5),
  'llm:openai:gpt-4o:output_tokens': perMillion(10),
  'llm:openai:gpt-4.1:input_tokens': perMillion(2),
  'llm:openai:gpt-4.1:output_tokens': perMillion(8),
  'llm:openai:gpt-4.1-mini:input_tokens': perMillion(0.4),
  'llm:openai:gpt-4.1-mini:output_tokens': perMillion(1.6),
  'llm:openai:gpt-4.1-nano:input_tokens': perMillion(0.1),
  'llm:openai:gpt-4.1-nano:output_tokens': perMillion(0.4),
  'llm:anthropic:input_tokens': perMillion(1),
  'llm:anthropic:output_tokens': perMillion(5),
  'llm:anthropic:claude-haiku-4-5:input_tokens': perMillion(1),
  'llm:anthropic:claude-haiku-4-5:output_tokens': perMillion(5),
  'llm:anthropic:claude-sonnet-4-5:input_tokens': perMillion(3),
  'llm:anthropic:claude-sonnet-4-5:output_tokens': perMillion(15),
  'tts:elevenlabs:characters': perThousand(0.05),
  'embeddings:openai:tokens': perMillion(0.02),
  'embeddings:openai:text-embedding-3-small:tokens': perMillion(0.02),
  'embeddings:openai:text-embedding-3-large:tokens': perMillion(0.13),
  'embeddings:openai:text-embedding-ada-002:tokens': perMillion(0.1),
};

/** A price key as the admin writes it: 2 to 4 parts, lower-case names, dots and dashes allowed in the model. */
export const PRICE_KEY =
  /^(telephony|stt|llm|tts|embeddings):[a-z0-9_]+(:[A-Za-z0-9._-]+)?:(seconds|input_tokens|output_tokens|characters|tokens)$/;

export interface PriceLine {
  component: UsageComponent;
  provider: string;
  model: string;
  unit: UsageUnit;
}

/** USD per unit for this line: the tenant's override, else the list price; the model's price before the provider's. */
export function unitPrice(line: PriceLine, overrides: Readonly<Record<string, number>> = {}): number {
  const precise = `${line.component}:${line.provider}:${line.model}:${line.unit}`;
  const general = `${line.component}:${line.provider}:${line.unit}`;
  for (const table of [overrides, LIST_PRICES]) {
    if (line.model && Object.hasOwn(table, precise)) return table[precise]!;
    if (Object.hasOwn(table, general)) return table[general]!;
  }
  return 0;
}
