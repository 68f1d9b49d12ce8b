// Agent settings per tenant and preferences per user. The tenant settings are declared once
// (`tenantSettingsSchema`); the PUT body, the GET view, their types and the stored JSON's types are derived from
// it (lib/schema-forms.ts). PUT merges: what a request leaves out keeps its value (the tools list is replaced
// whole); provider keys and tool header values are sealed at rest and only reported as configured.
import { and, eq } from 'drizzle-orm';
import { z } from 'zod';
import type { Db } from '../db/client.js';
import { tenantConfigs, userPreferences } from '../db/schema.js';
import { toolParametersSchema } from '../lib/json-schema.js';
import { deepMerge, type KeptSecret, patchSchemaOf, type Sealed, type SecretStatus, sealed, viewOf, type ViewOf, viewSchemaOf } from '../lib/schema-forms.js';
import { ENGINE_NAMES, PROVIDER_KEY_NAMES, type ProviderKeyName } from '../providers/engines.js';
import { BUILT_IN_TOOL_NAMES } from '../voice/agent.js';
import type { SecretBox } from './secret-box.js';

export type { SecretStatus } from '../lib/schema-forms.js';
// Engine names and key names come from the engine table.
export { PROVIDER_KEY_NAMES, type ProviderKeyName };

const model = z.string().min(1).max(200);
export const ragSchema = z.strictObject({
  enabled: z.boolean().default(true),
  top_k: z.number().int().min(1).max(50).default(5),
  min_score: z.number().min(0).max(1).default(0.2),
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
  /** Caller speech must last this long to interrupt the agent (shorter: a noise or an "uh-huh"). */
  min_interruption_ms: z.number().int().min(0).max(3000).default(400),
  /** The agent checks in after this long without a word from the caller. */
  silence_prompt_s: z.number().int().min(3).max(600).default(12),
  max_duration_s: z.number().int().min(30).max(4 * 3600).default(1800),
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
    .strictObject({ provider: z.enum(ENGINE_NAMES.tts).default('local'), model: model.optional(), voice: z.string().min(1).max(200).optional() })
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
    .record(headerName, sealed(z.string().min(1).max(4000).regex(/^[\t\x20-\x7e]+$/, 'must be printable ASCII')))
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
});

/** The settings as stored and used: defaults filled, secrets sealed. */
export type TenantSettings = z.output<typeof tenantSettingsSchema>;
/** The stored JSON (db/schema.ts): as written, possibly from before a key with a default existed. */
export type StoredTenantSettings = z.input<typeof tenantSettingsSchema>;
export type RagSettings = TenantSettings['rag'];
export type CallSettings = TenantSettings['call'];
export type ProviderSettings = TenantSettings['providers'];
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
 * (services/phone-numbers.ts, services/calls.ts), with the settings' limits; a key left out keeps the tenant's value.
 */
export const agentOverridesSchema = patchSchemaOf(tenantSettingsSchema.pick({ agent_name: true, system_prompt: true, greeting: true, language: true }));
export type AgentOverrides = z.output<typeof agentOverridesSchema>;

export class SettingsService {
  constructor(
    private readonly db: Db,
    private readonly box: SecretBox,
  ) {}

  async getTenant(tenantId: string): Promise<TenantSettingsView> {
    const [row] = await this.db.select().from(tenantConfigs).where(eq(tenantConfigs.tenantId, tenantId));
    return this.view(row);
  }

  /**
   * The settings and the provider keys in clear, from one read: for the provider registries only, never for an
   * HTTP response.
   */
  async forProviders(tenantId: string): Promise<{ settings: TenantSettingsView; keys: Partial<Record<ProviderKeyName, string>>; tools: TenantTool[] }> {
    const [row] = await this.db.select().from(tenantConfigs).where(eq(tenantConfigs.tenantId, tenantId));
    const stored = settingsOf(row);
    // A key or header that no longer opens (SECRET_KEY changed) is left out; the settings show it as not configured.
    const keys = this.openAll(stored.provider_keys) as Partial<Record<ProviderKeyName, string>>;
    const tools = stored.tools.map((t) => ({ ...t, headers: this.openAll(t.headers) }));
    return { settings: this.viewOf(stored, row), keys, tools };
  }

  /** The stored settings with `patch` merged in, checked as a whole by the one schema, then stored. */
  async putTenant(tenantId: string, patch: TenantSettingsPatch): Promise<TenantSettingsView> {
    return this.db.transaction(async (tx) => {
      const [row] = await tx.select().from(tenantConfigs).where(eq(tenantConfigs.tenantId, tenantId)).for('update');
      const current = settingsOf(row);
      const sealedPatch = {
        ...patch,
        provider_keys: patch.provider_keys && this.sealKeys(patch.provider_keys),
        tools: patch.tools && this.sealTools(patch.tools, current.tools),
      };
      const next = tenantSettingsSchema.parse(deepMerge(current, sealedPatch));
      const values = {
        agentName: next.agent_name,
        systemPrompt: next.system_prompt,
        greeting: next.greeting,
        language: next.language,
        rag: next.rag,
        call: next.call,
        providers: next.providers,
        providerKeys: next.provider_keys,
        tools: next.tools,
      };
      const [saved] = row
        ? await tx.update(tenantConfigs).set(values).where(eq(tenantConfigs.id, row.id)).returning()
        : await tx.insert(tenantConfigs).values({ tenantId, ...values }).returning();
      return this.view(saved);
    });
  }

  /** Keys in clear sealed; null (remove) and undefined (keep) passed on for the merge. */
  private sealKeys(keys: NonNullable<TenantSettingsPatch['provider_keys']>) {
    return Object.fromEntries(Object.entries(keys).map(([name, value]) => [name, typeof value === 'string' ? this.box.seal(value) : value]));
  }

  /**
   * The new tools list with its header values sealed. A header sent back as `{configured: true}` keeps the value
   * stored under the same tool and header name; when there is none the whole PUT is refused.
   */
  private sealTools(tools: NonNullable<TenantSettingsPatch['tools']>, stored: StoredTool[]): StoredTool[] {
    const issues: z.core.$ZodIssue[] = [];
    const sealedTools = tools.map((tool, i) => {
      const before = stored.find((s) => s.name === tool.name)?.headers ?? {};
      const headers: Record<string, Sealed> = {};
      for (const [name, value] of Object.entries<string | KeptSecret>(tool.headers ?? {})) {
        if (typeof value === 'string') headers[name] = this.box.seal(value) as Sealed;
        else {
          const kept = Object.entries(before).find(([n, v]) => n.toLowerCase() === name.toLowerCase() && this.box.open(v) !== undefined);
          if (kept) headers[name] = kept[1];
          else issues.push({ code: 'custom', path: ['tools', i, 'headers', name], message: 'has no stored value to keep; send the value', input: value });
        }
      }
      return { ...tool, headers };
    });
    if (issues.length) throw new z.ZodError(issues);
    return sealedTools;
  }

  private openAll(sealedValues: Record<string, string | undefined>): Record<string, string> {
    const open: Record<string, string> = {};
    for (const [name, s] of Object.entries(sealedValues)) {
      const plain = s === undefined ? undefined : this.box.open(s);
      if (plain !== undefined) open[name] = plain;
    }
    return open;
  }

  private secretStatus(sealedValue: string | undefined): SecretStatus {
    const plain = sealedValue ? this.box.open(sealedValue) : undefined;
    // Short secrets would be mostly given away by their last four characters.
    return { configured: plain !== undefined, last4: plain && plain.length >= 12 ? plain.slice(-4) : null };
  }

  private view(row: Row | undefined): TenantSettingsView {
    return this.viewOf(settingsOf(row), row);
  }

  private viewOf(settings: TenantSettings, row: Row | undefined): TenantSettingsView {
    return { ...viewOf(tenantSettingsSchema, settings, (s) => this.secretStatus(s)), updated_at: row?.updatedAt.toISOString() ?? null };
  }

  async getUser(tenantId: string, userId: string) {
    const [row] = await this.db
      .select()
      .from(userPreferences)
      .where(and(eq(userPreferences.tenantId, tenantId), eq(userPreferences.userId, userId)));
    return userView(row);
  }

  async putUser(tenantId: string, userId: string, patch: { preferred_voice?: string | null; preferred_model?: string | null }) {
    const values = {
      ...(patch.preferred_voice !== undefined && { preferredVoice: patch.preferred_voice }),
      ...(patch.preferred_model !== undefined && { preferredModel: patch.preferred_model }),
    };
    const [row] = await this.db
      .insert(userPreferences)
      .values({ tenantId, userId, ...values })
      .onConflictDoUpdate({ target: userPreferences.userId, set: { ...values, updatedAt: new Date() } })
      .returning();
    return userView(row);
  }
}

type Row = typeof tenantConfigs.$inferSelect;

/** A row's settings, read through the schema: a tenant with no row, or a key stored before it existed, gets its default. */
function settingsOf(row: Row | undefined): TenantSettings {
  if (!row) return tenantSettingsSchema.parse({});
  return tenantSettingsSchema.parse({
    agent_name: row.agentName ?? undefined,
    system_prompt: row.systemPrompt,
    greeting: row.greeting,
    language: row.language ?? undefined,
    rag: row.rag,
    call: row.call,
    providers: row.providers,
    provider_keys: row.providerKeys,
    tools: row.tools,
  });
}

function userView(row: typeof userPreferences.$inferSelect | undefined) {
  return {
    preferred_voice: row?.preferredVoice ?? null,
    preferred_model: row?.preferredModel ?? null,
    updated_at: row?.updatedAt.toISOString() ?? null,
  };
}
