// Agent settings per tenant (TenantConfig) and preferences per user (TenantSettings). PUT merges: what a
// request leaves out keeps its value (the tools list is replaced whole); provider keys and tool header values
// are sealed at rest and only reported as configured.
import { and, eq } from 'drizzle-orm';
import { z } from 'zod';
import type { Db } from '../db/client.js';
import { tenantConfigs, tenantSettings } from '../db/schema.js';
import { type ObjectSchema, toolParametersSchema } from '../lib/json-schema.js';
import { BUILT_IN_TOOL_NAMES } from '../voice/tools/built-in.js';
import type { SecretBox } from './secret-box.js';

export const PROVIDER_KEY_NAMES = ['openai', 'anthropic', 'deepgram', 'elevenlabs', 'openai_compatible'] as const;
export type ProviderKeyName = (typeof PROVIDER_KEY_NAMES)[number];

const model = z.string().min(1).max(200);
export const ragSchema = z.strictObject({
  enabled: z.boolean().default(true),
  top_k: z.number().int().min(1).max(50).default(5),
  min_score: z.number().min(0).max(1).default(0.2),
});
/**
 * The agent's own fields, every one optional: what a settings PUT may change, and what a phone number or a single
 * call may override (services/phone-numbers.ts), with the same limits.
 */
export const agentFieldsSchema = z.strictObject({
  agent_name: z.string().trim().min(1).max(100).optional(),
  system_prompt: z.string().max(20_000).nullable().optional(),
  greeting: z.string().max(1_000).nullable().optional(),
  language: z
    .string()
    .regex(/^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$/, 'must be a language tag such as en or en-US')
    .optional(),
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
      provider: z.enum(['local', 'deepgram']).default('local'),
      model: model.optional(),
      language: z.string().max(20).optional(),
      /**
       * The local engine's language model: 'domain' is built from the tenant's documents plus generic caller
       * phrasing (measured in bench:local-stt: a question's key words heard 0.67 of the time vs 0.46), 'general' is
       * any English. With no documents, 'domain' uses the general model.
       */
      local_model: z.enum(['domain', 'general']).default('domain'),
    })
    .default({ provider: 'local', local_model: 'domain' }),
  llm: z
    .strictObject({
      provider: z.enum(['local', 'openai', 'anthropic', 'openai_compatible']).default('local'),
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
    .default({ provider: 'local' }),
  tts: z
    .strictObject({ provider: z.enum(['local', 'elevenlabs']).default('local'), model: model.optional(), voice: z.string().min(1).max(200).optional() })
    .default({ provider: 'local' }),
  embeddings: z
    .strictObject({
      provider: z.enum(['local', 'openai']).default('local'),
      model: model.optional(),
      dimensions: z.number().int().min(8).max(4096).optional(),
    })
    .default({ provider: 'local' }),
});

/** Headers the platform sets on tool requests; a tool cannot replace them. */
const PLATFORM_HEADERS = new Set(['host', 'content-type', 'content-length', 'transfer-encoding', 'connection', 'user-agent', 'accept']);
const MAX_TOOLS = 20;

const headerName = z
  .string()
  .regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$/, 'must be an HTTP header name')
  .refine((n) => !PLATFORM_HEADERS.has(n.toLowerCase()) && !n.toLowerCase().startsWith('x-voice-'), 'is set by the platform');
/** Sends a header value again as the GET shows it: keeps the stored value (values are never shown). */
const keptHeader = z.strictObject({ configured: z.literal(true), last4: z.string().nullable().optional() });

/** One tool as a PUT sends it: header values in clear (sealed when stored) or as `keptHeader`. */
const toolPutSchema = z.strictObject({
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
    .record(headerName, z.union([z.string().min(1).max(4000).regex(/^[\t\x20-\x7e]+$/, 'must be printable ASCII'), keptHeader]))
    .refine((h) => Object.keys(h).length <= 10, 'at most 10 headers')
    .refine((h) => new Set(Object.keys(h).map((k) => k.toLowerCase())).size === Object.keys(h).length, 'header names must be unique')
    .optional(),
});
export const toolsPutSchema = z
  .array(toolPutSchema)
  .max(MAX_TOOLS)
  .superRefine((tools, ctx) => {
    const seen = new Set<string>();
    tools.forEach((t, i) => {
      if (seen.has(t.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: 'is used by another tool' });
      seen.add(t.name);
    });
  });

/**
 * A tenant's tool. Its header values are sealed in the database, and in clear only where the tool is called
 * (`forProviders`), never in an HTTP response.
 */
export interface TenantTool {
  name: string;
  description: string;
  parameters: ObjectSchema;
  url: string;
  method: 'POST' | 'GET';
  timeout_ms: number;
  headers: Record<string, string>;
}
export type SecretStatus = { configured: boolean; last4: string | null };
/** A tool as the API shows it: header values only as configured/last4. */
export type ToolView = Omit<TenantTool, 'headers'> & { headers: Record<string, SecretStatus> };

/** The same objects with every field optional and no defaults: what a PUT may send. */
function patchOf<T extends z.ZodRawShape>(obj: z.ZodObject<T>) {
  const shape = Object.fromEntries(
    Object.entries(obj.shape).map(([k, v]) => [k, (v instanceof z.ZodDefault ? (v.unwrap() as z.ZodType) : (v as z.ZodType)).optional()]),
  );
  return z.strictObject(shape);
}
const unwrapDefault = (v: z.ZodType) => (v instanceof z.ZodDefault ? (v.unwrap() as z.ZodObject) : (v as z.ZodObject));
export const ragPatchSchema = patchOf(ragSchema);
export const callPatchSchema = patchOf(callSchema);
export const providersPatchSchema = z.strictObject(
  Object.fromEntries(Object.entries(providersSchema.shape).map(([k, v]) => [k, patchOf(unwrapDefault(v)).optional()])),
);

export type RagSettings = z.infer<typeof ragSchema>;
export type CallSettings = z.infer<typeof callSchema>;
export type ProviderSettings = z.infer<typeof providersSchema>;

export interface TenantSettingsView {
  agent_name: string;
  system_prompt: string | null;
  greeting: string | null;
  language: string;
  rag: RagSettings;
  call: CallSettings;
  providers: ProviderSettings;
  provider_keys: Record<ProviderKeyName, SecretStatus>;
  tools: ToolView[];
  updated_at: string | null;
}

export interface TenantSettingsPatch {
  agent_name?: string;
  system_prompt?: string | null;
  greeting?: string | null;
  language?: string;
  rag?: Partial<RagSettings>;
  call?: Partial<CallSettings>;
  providers?: { [K in keyof ProviderSettings]?: Partial<ProviderSettings[K]> };
  /** A string sets the key, null removes it, an absent name keeps it. */
  provider_keys?: Partial<Record<ProviderKeyName, string | null>>;
  /** Replaces the whole list when given. */
  tools?: z.infer<typeof toolsPutSchema>;
}

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
    const keys: Partial<Record<ProviderKeyName, string>> = {};
    for (const [name, sealed] of Object.entries(row?.providerKeys ?? {})) {
      const plain = this.box.open(sealed);
      if (plain !== undefined) keys[name as ProviderKeyName] = plain;
    }
    // A header that no longer opens (SECRET_KEY changed) is left out; the settings show it as not configured.
    const tools = storedTools(row).map((t) => ({ ...t, headers: this.openAll(t.headers) }));
    return { settings: this.view(row), keys, tools };
  }

  async putTenant(tenantId: string, patch: TenantSettingsPatch): Promise<TenantSettingsView> {
    return this.db.transaction(async (tx) => {
      const [row] = await tx.select().from(tenantConfigs).where(eq(tenantConfigs.tenantId, tenantId)).for('update');
      const current = this.view(row);
      const providers = providersSchema.parse({
        stt: { ...current.providers.stt, ...patch.providers?.stt },
        llm: { ...current.providers.llm, ...patch.providers?.llm },
        tts: { ...current.providers.tts, ...patch.providers?.tts },
        embeddings: { ...current.providers.embeddings, ...patch.providers?.embeddings },
      });
      const keys = { ...(row?.providerKeys ?? {}) };
      for (const [name, value] of Object.entries(patch.provider_keys ?? {})) {
        if (value === null) delete keys[name];
        else if (value !== undefined) keys[name] = this.box.seal(value);
      }
      const tools = patch.tools === undefined ? storedTools(row) : this.sealTools(patch.tools, storedTools(row));
      const values = {
        agentName: patch.agent_name ?? current.agent_name,
        systemPrompt: patch.system_prompt === undefined ? current.system_prompt : patch.system_prompt,
        greeting: patch.greeting === undefined ? current.greeting : patch.greeting,
        language: patch.language ?? current.language,
        rag: ragSchema.parse({ ...current.rag, ...patch.rag }),
        call: callSchema.parse({ ...current.call, ...patch.call }),
        providers,
        providerKeys: keys,
        tools: tools as unknown as Record<string, unknown>[],
      };
      const [saved] = row
        ? await tx.update(tenantConfigs).set(values).where(eq(tenantConfigs.id, row.id)).returning()
        : await tx.insert(tenantConfigs).values({ tenantId, ...values }).returning();
      return this.view(saved);
    });
  }

  /**
   * The new tools list with its header values sealed. A header sent back as `{configured: true}` keeps the value
   * stored under the same tool and header name; when there is none the whole PUT is refused.
   */
  private sealTools(tools: z.infer<typeof toolsPutSchema>, stored: TenantTool[]): TenantTool[] {
    const issues: z.core.$ZodIssue[] = [];
    const sealed = tools.map((tool, i) => {
      const before = stored.find((s) => s.name === tool.name)?.headers ?? {};
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(tool.headers ?? {})) {
        if (typeof value === 'string') headers[name] = this.box.seal(value);
        else {
          const kept = Object.entries(before).find(([n, v]) => n.toLowerCase() === name.toLowerCase() && this.box.open(v) !== undefined);
          if (kept) headers[name] = kept[1];
          else issues.push({ code: 'custom', path: ['tools', i, 'headers', name], message: 'has no stored value to keep; send the value', input: value });
        }
      }
      return { ...tool, headers };
    });
    if (issues.length) throw new z.ZodError(issues);
    return sealed;
  }

  private openAll(sealed: Record<string, string>): Record<string, string> {
    const open: Record<string, string> = {};
    for (const [name, s] of Object.entries(sealed)) {
      const plain = this.box.open(s);
      if (plain !== undefined) open[name] = plain;
    }
    return open;
  }

  private secretStatus(sealed: string | undefined): SecretStatus {
    const plain = sealed ? this.box.open(sealed) : undefined;
    // Short secrets would be mostly given away by their last four characters.
    return { configured: plain !== undefined, last4: plain && plain.length >= 12 ? plain.slice(-4) : null };
  }

  private view(row: typeof tenantConfigs.$inferSelect | undefined): TenantSettingsView {
    const provider_keys = {} as TenantSettingsView['provider_keys'];
    for (const name of PROVIDER_KEY_NAMES) provider_keys[name] = this.secretStatus(row?.providerKeys[name]);
    const tools = storedTools(row).map((t) => ({ ...t, headers: Object.fromEntries(Object.entries(t.headers).map(([n, s]) => [n, this.secretStatus(s)])) }));
    return {
      agent_name: row?.agentName ?? 'Assistant',
      system_prompt: row?.systemPrompt ?? null,
      greeting: row?.greeting ?? null,
      language: row?.language ?? 'en',
      rag: ragSchema.parse(row?.rag ?? {}),
      call: callSchema.parse(row?.call ?? {}),
      providers: providersSchema.parse(row?.providers ?? {}),
      provider_keys,
      tools,
      updated_at: row?.updatedAt.toISOString() ?? null,
    };
  }

  async getUser(tenantId: string, userId: string) {
    const [row] = await this.db
      .select()
      .from(tenantSettings)
      .where(and(eq(tenantSettings.tenantId, tenantId), eq(tenantSettings.userId, userId)));
    return userView(row);
  }

  async putUser(tenantId: string, userId: string, patch: { preferred_voice?: string | null; preferred_model?: string | null }) {
    const values = {
      ...(patch.preferred_voice !== undefined && { preferredVoice: patch.preferred_voice }),
      ...(patch.preferred_model !== undefined && { preferredModel: patch.preferred_model }),
    };
    const [row] = await this.db
      .insert(tenantSettings)
      .values({ tenantId, userId, ...values })
      .onConflictDoUpdate({ target: tenantSettings.userId, set: { ...values, updatedAt: new Date() } })
      .returning();
    return userView(row);
  }
}

/** The tools as stored, header values sealed; validated on the way in (toolsPutSchema), JSON to the database. */
const storedTools = (row: typeof tenantConfigs.$inferSelect | undefined) => (row?.tools ?? []) as unknown as TenantTool[];

function userView(row: typeof tenantSettings.$inferSelect | undefined) {
  return {
    preferred_voice: row?.preferredVoice ?? null,
    preferred_model: row?.preferredModel ?? null,
    updated_at: row?.updatedAt.toISOString() ?? null,
  };
}
