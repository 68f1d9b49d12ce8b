// The tenant settings, declared once (`tenantSettingsSchema`): the PUT body, the GET view, their types, the stored
// JSON's types and the agent overrides are derived from it (lib/schema-forms.ts). No database here: db/schema.ts
// types its JSON columns with these (types only), and services/settings.ts reads and writes them.
import { z } from 'zod';
import { toolParametersSchema } from '../lib/json-schema.js';
import { patchSchemaOf, sealed, type ViewOf, viewSchemaOf } from '../lib/schema-forms.js';
import { ENGINE_NAMES, PROVIDER_KEY_NAMES, type ProviderKeyName } from '../providers/engines.js';
import { DEFAULT_MIN_RELEVANCE } from '../rag/bm25.js';
import { BUILT_IN_TOOL_NAMES } from '../voice/tools/built-in.js';
export type { SecretStatus } from '../lib/schema-forms.js';
// Engine names and key names come from the engine table.
export { PROVIDER_KEY_NAMES, type ProviderKeyName };

const model = z.string().min(1).max(200);
export const ragSchema = z.strictObject({
  enabled: z.boolean().default(true),
  top_k: z.number().int().min(1).max(50).default(5),
  /**
   * Deprecated: a cosine floor that now applies only to results matching no word of the question (found by the
   * vectors alone). It used to drop full-text matches too, and kept a third of the right answers out (issue 21).
   */
  min_score: z.number().min(0).max(1).default(0.2),
  /**
   * The answerability gate: when no passage carries at least this share of the question's weight (BM25 relevance,
   * 0..1), the agent gets no knowledge for it and says it does not know. 0 turns the gate off. Default chosen on
   * data (npm run bench:rag: trade-off between questions answered and off-topic questions kept quiet).
   */
  min_relevance: z.number().min(0).max(1).default(DEFAULT_MIN_RELEVANCE),
});

export const callSchema = z.strictObject({
  /** Where transfer_call sends callers (E.164); null: no transfers, the agent says so. */
  transfer_number: z
    .string()
    .regex(/^\+[1-9]\d{6,14}$/, 'must be an E.164 number such as +14155550100')
    .nullable()
    .default(null),
  /** Silence after the caller's last words before the agent answers. */
  endpointing_ms: z.number().int().min(100).max(5000).default(700),
  /**
   * The reply is prepared (knowledge search and the model's answer) as soon as the caller stops and the words are
   * recognised, while the endpointing time runs; it is spoken only once the turn ends with the same words, else
   * dropped (its tokens are counted). Faster answers for some wasted tokens; off: the reply starts at the end of turn.
   */
  preemptive_generation: z.boolean().default(true),
  /**
   * Read the caller's words: endpointing_ms is the base, shortened after a complete question or sentence and lengthened
   * after "um", a trailing "and"/"to"/"the" or digits being dictated (npm run bench:turns). Off: always endpointing_ms.
   */
  adaptive_endpointing: z.boolean().default(true),
  /**
   * A caller who goes on after the turn ended but before any of the reply was heard ("Yes." ... "And the receipt
   * too?") has not been answered: the reply is dropped (its tokens are counted) and the turn goes on, stored as one.
   * Off: that speech interrupts the reply like any barge-in and the rest is a turn of its own.
   */
  turn_resumption: z.boolean().default(true),
  /** Caller speech must last this long to interrupt the agent (shorter: a noise or an "uh-huh"). */
  min_interruption_ms: z.number().int().min(0).max(3000).default(400),
  /** The agent checks in after this long without a word from the caller. */
  silence_prompt_s: z.number().int().min(3).max(600).default(12),
  max_duration_s: z
    .number()
    .int()
    .min(30)
    .max(4 * 3600)
    .default(1800),
  /**
   * Voice activity detection. Silero (a small neural model) by default: measured (npm run bench:vad) it keeps
   * hearing speech in noise where the energy detector fails, with 5x fewer false starts; energy reacts ~25 ms
   * sooner on clean lines and needs no model.
   */
  vad: z.enum(['silero', 'energy']).default('silero'),
  /** Media-stream and browser calls are recorded as stereo WAV (caller left, agent right) unless switched off. */
  recording: z.boolean().default(true),
  /** Inbound phone calls: Twilio Media Streams to our websocket, or SIP into a LiveKit room. A number may override it. */
  telephony_mode: z.enum(['media_stream', 'livekit']).default('media_stream'),
});
export const providersSchema = z.strictObject({
  stt: z
    .strictObject({
      provider: z.enum(ENGINE_NAMES.stt).default('local'),
      model: model.optional(),
      language: z.string().max(20).optional(),
      /**
       * The local engine's language model: 'domain' is built from the tenant's documents plus generic caller
       * phrasing (measured in bench:local-stt: a question's key words heard 0.67 of the time vs 0.46), 'general' is
       * any English. With no documents, 'domain' uses the general model.
       */
      local_model: z.enum(['domain', 'general']).default('domain'),
    })
    .prefault({}),
  llm: z
    .strictObject({
      provider: z.enum(ENGINE_NAMES.llm).default('local'),
      model: model.optional(),
      /** The server's API root: the SDK appends paths to it, so a query or fragment would swallow them. */
      base_url: z
        .url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' })
        .max(2000)
        .refine((u) => !/[?#]/.test(u), 'must not contain a query string or fragment')
        .refine((u) => !/^[a-z]+:\/\/[^/?#]*@/i.test(u), 'must not contain credentials; send the key in provider_keys.openai_compatible')
        .optional(),
      temperature: z.number().min(0).max(2).optional(),
    })
    .prefault({}),
  tts: z
    .strictObject({
      provider: z.enum(ENGINE_NAMES.tts).default('local'),
      model: model.optional(),
      voice: z.string().min(1).max(200).optional(),
    })
    .prefault({}),
  embeddings: z
    .strictObject({
      provider: z.enum(ENGINE_NAMES.embeddings).default('local'),
      model: model.optional(),
      dimensions: z.number().int().min(8).max(4096).optional(),
    })
    .prefault({}),
});

/** Provider name -> the tenant's own API key; without one the platform's key (if any) is used. */
const providerKeysSchema = z.strictObject(
  Object.fromEntries(PROVIDER_KEY_NAMES.map((n) => [n, sealed(z.string().trim().min(8).max(500)).optional()])) as Record<
    ProviderKeyName,
    z.ZodOptional<ReturnType<typeof sealed>>
  >,
);

/** Headers the platform sets on tool requests; a tool cannot replace them. */
const PLATFORM_HEADERS = new Set(['host', 'content-type', 'content-length', 'transfer-encoding', 'connection', 'user-agent', 'accept']);
const MAX_TOOLS = 20;

const headerName = z
  .string()
  .regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$/, 'must be an HTTP header name')
  .refine((n) => !PLATFORM_HEADERS.has(n.toLowerCase()) && !n.toLowerCase().startsWith('x-voice-'), 'is set by the platform');

/** One tool: header values are sealed, in clear only where the tool is called (`forProviders`). */
const toolSchema = z.strictObject({
  name: z
    .string()
    .regex(/^[a-z][a-z0-9_]{0,63}$/, 'must be 1 to 64 lowercase letters, digits or _, starting with a letter')
    .refine((n) => !(BUILT_IN_TOOL_NAMES as readonly string[]).includes(n), 'is the name of a built-in tool'),
  description: z.string().trim().min(1).max(1000),
  parameters: toolParametersSchema,
  url: z
    .url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' })
    .max(2000)
    .refine((u) => !/^[a-z]+:\/\/[^/?#]*@/i.test(u), 'must not contain credentials; send them in headers'),
  method: z.enum(['POST', 'GET']).default('POST'),
  timeout_ms: z.number().int().min(100).max(30_000).default(5000),
  headers: z
    .record(
      headerName,
      sealed(
        z
          .string()
          .min(1)
          .max(4000)
          .regex(/^[\t\x20-\x7e]+$/, 'must be printable ASCII'),
      ),
    )
    .refine((h) => Object.keys(h).length <= 10, 'at most 10 headers')
    .refine((h) => new Set(Object.keys(h).map((k) => k.toLowerCase())).size === Object.keys(h).length, 'header names must be unique')
    .default({}),
});
const toolsSchema = z
  .array(toolSchema)
  .max(MAX_TOOLS)
  .superRefine((tools, ctx) => {
    const seen = new Set<string>();
    tools.forEach((t, i) => {
      if (seen.has(t.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: 'is used by another tool' });
      seen.add(t.name);
    });
  })
  .describe(
    'The tenant’s HTTP tools (at most 20). Given, it replaces the whole list ([] removes every tool); left out, the ' +
      'tools stay as they are. Header values are write-only: send a header back as the GET shows it ' +
      '({"configured": true, ...}) to keep its stored value.',
  );

/** The outcomes an analysis chooses from when the tenant names none of its own. */
export const DEFAULT_OUTCOMES = ['resolved', 'transferred', 'voicemail', 'abandoned', 'failed'] as const;
/** A tenant's extraction schema as JSON text: bounded, so a prompt and a stored settings row stay small. */
const MAX_EXTRACTION_SCHEMA_CHARS = 20_000;

/** Post-call analysis (analysis/): summary, outcome, success against the rubric, fields into the tenant's schema. */
export const analysisSchema = z.strictObject({
  /** Off by default: an analysis with a cloud model spends the tenant's tokens on every call. */
  enabled: z.boolean().default(false),
  /** The tenant's own outcomes (null: resolved, transferred, voicemail, abandoned, failed). */
  outcomes: z
    .array(z.string().regex(/^[a-z][a-z0-9_]{0,63}$/, 'must be 1 to 64 lowercase letters, digits or _, starting with a letter'))
    .min(1)
    .max(20)
    .refine((o) => new Set(o).size === o.length, 'outcomes must be unique')
    .nullable()
    .default(null),
  /** What a successful call is, in the tenant's words; the model judges the conversation against it. */
  rubric: z.string().trim().max(4_000).nullable().default(null),
  /**
   * The fields to extract (a JSON Schema object of the subset tools use: at most 5 levels, 50 properties per
   * object). Given in a PUT, it replaces the stored schema whole; null or absent: nothing is extracted.
   */
  extraction_schema: toolParametersSchema
    .refine(
      (s) => JSON.stringify(s).length <= MAX_EXTRACTION_SCHEMA_CHARS,
      `must be at most ${MAX_EXTRACTION_SCHEMA_CHARS} characters as JSON`,
    )
    // Optional rather than defaulting to null: the GET form is derived through the schema's preprocess only so.
    .nullable()
    .optional(),
});

/** How long calls and recordings are kept (services/retention.ts): days after the call was made; null keeps them. */
export const retentionSchema = z.strictObject({
  /** Ended calls older than this are deleted with their transcript, events, analysis and recording. */
  calls_days: z.number().int().min(1).max(36_500).nullable().default(null),
  /** Recordings older than this are deleted; the calls stay. */
  recordings_days: z.number().int().min(1).max(36_500).nullable().default(null),
});

/**
 * THE tenant settings: every key, its limits and its default. A key added here is accepted by the PUT, stored,
 * and shown by the GET (test/settings-roundtrip.test.ts checks it).
 */
export const tenantSettingsSchema = z.strictObject({
  agent_name: z.string().trim().min(1).max(100).default('Assistant'),
  system_prompt: z.string().max(20_000).nullable().default(null),
  greeting: z.string().max(1_000).nullable().default(null),
  language: z
    .string()
    .regex(/^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$/, 'must be a language tag such as en or en-US')
    .default('en'),
  rag: ragSchema.prefault({}),
  /** Call behaviour: transfer number, endpointing, interruptions, silence prompts, maximum duration. */
  call: callSchema.prefault({}),
  providers: providersSchema.prefault({}),
  provider_keys: providerKeysSchema.prefault({}),
  tools: toolsSchema.default([]),
  analysis: analysisSchema.prefault({}),
  /** Deletes calls and/or recordings older than N days (null: kept forever), hourly, in bounded batches. */
  retention: retentionSchema.prefault({}),
});

/** The settings as stored and used: defaults filled, secrets sealed. */
export type TenantSettings = z.output<typeof tenantSettingsSchema>;
/** The stored JSON (db/schema.ts): as written, possibly from before a key with a default existed. */
export type StoredTenantSettings = z.input<typeof tenantSettingsSchema>;
export type RagSettings = TenantSettings['rag'];
export type CallSettings = TenantSettings['call'];
export type ProviderSettings = TenantSettings['providers'];
export type AnalysisSettings = TenantSettings['analysis'];
/** A tool as stored: header values sealed. */
export type StoredTool = TenantSettings['tools'][number];
/** A tenant's tool with its header values in clear: only where the tool is called (`forProviders`), never in a response. */
export type TenantTool = Omit<StoredTool, 'headers'> & { headers: Record<string, string> };

/**
 * What a PUT sends: every key optional (left out keeps its value), objects merged, `tools` replaced whole with
 * header values in clear or as `KeptSecret`; a provider key in clear sets it, null removes it.
 */
export const tenantSettingsPatchSchema = patchSchemaOf(tenantSettingsSchema);
export type TenantSettingsPatch = z.output<typeof tenantSettingsPatchSchema>;

/** What GET (and PUT) return: the settings with each secret as configured/last4, and when they last changed. */
export const tenantSettingsViewSchema = viewSchemaOf(tenantSettingsSchema.extend({ updated_at: z.string().nullable() }));
export type TenantSettingsView = z.output<typeof tenantSettingsViewSchema>;
/** A tool as the API shows it: header values only as configured/last4. */
export type ToolView = ViewOf<StoredTool>;

/**
 * The agent's own fields, every one optional: what a phone number or a single call overrides
 * (services/phone-numbers.ts, services/calls.ts), with the settings' limits; a key left out keeps the tenant's value,
 * and null (greeting, system_prompt) means none, as it does in the settings.
 */
export const agentOverridesSchema = patchSchemaOf(
  tenantSettingsSchema.pick({ agent_name: true, system_prompt: true, greeting: true, language: true }),
);
export type AgentOverrides = z.output<typeof agentOverridesSchema>;
