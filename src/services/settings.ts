// Agent settings per tenant (TenantConfig) and preferences per user (TenantSettings). PUT merges: what a
// request leaves out keeps its value; provider keys are sealed at rest and only reported as configured.
import { and, eq } from 'drizzle-orm';
import { z } from 'zod';
import type { Db } from '../db/client.js';
import { tenantConfigs, tenantSettings } from '../db/schema.js';
import type { SecretBox } from './secret-box.js';

export const PROVIDER_KEY_NAMES = ['openai', 'anthropic', 'deepgram', 'elevenlabs', 'openai_compatible'] as const;
export type ProviderKeyName = (typeof PROVIDER_KEY_NAMES)[number];

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
});
export const providersSchema = z.strictObject({
  stt: z
    .strictObject({ provider: z.enum(['local', 'deepgram']).default('local'), model: model.optional(), language: z.string().max(20).optional() })
    .default({ provider: 'local' }),
  llm: z
    .strictObject({
      provider: z.enum(['local', 'openai', 'anthropic', 'openai_compatible']).default('local'),
      model: model.optional(),
      base_url: z.url({ protocol: /^https?$/ }).optional(),
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
  provider_keys: Record<ProviderKeyName, { configured: boolean; last4: string | null }>;
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
  async forProviders(tenantId: string): Promise<{ settings: TenantSettingsView; keys: Partial<Record<ProviderKeyName, string>> }> {
    const [row] = await this.db.select().from(tenantConfigs).where(eq(tenantConfigs.tenantId, tenantId));
    const keys: Partial<Record<ProviderKeyName, string>> = {};
    for (const [name, sealed] of Object.entries(row?.providerKeys ?? {})) {
      const plain = this.box.open(sealed);
      if (plain !== undefined) keys[name as ProviderKeyName] = plain;
    }
    return { settings: this.view(row), keys };
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
      const values = {
        agentName: patch.agent_name ?? current.agent_name,
        systemPrompt: patch.system_prompt === undefined ? current.system_prompt : patch.system_prompt,
        greeting: patch.greeting === undefined ? current.greeting : patch.greeting,
        language: patch.language ?? current.language,
        rag: ragSchema.parse({ ...current.rag, ...patch.rag }),
        call: callSchema.parse({ ...current.call, ...patch.call }),
        providers,
        providerKeys: keys,
      };
      const [saved] = row
        ? await tx.update(tenantConfigs).set(values).where(eq(tenantConfigs.id, row.id)).returning()
        : await tx.insert(tenantConfigs).values({ tenantId, ...values }).returning();
      return this.view(saved);
    });
  }

  private view(row: typeof tenantConfigs.$inferSelect | undefined): TenantSettingsView {
    const provider_keys = {} as TenantSettingsView['provider_keys'];
    for (const name of PROVIDER_KEY_NAMES) {
      const sealed = row?.providerKeys[name];
      const plain = sealed ? this.box.open(sealed) : undefined;
      provider_keys[name] = { configured: plain !== undefined, last4: plain && plain.length >= 12 ? plain.slice(-4) : null };
    }
    return {
      agent_name: row?.agentName ?? 'Assistant',
      system_prompt: row?.systemPrompt ?? null,
      greeting: row?.greeting ?? null,
      language: row?.language ?? 'en',
      rag: ragSchema.parse(row?.rag ?? {}),
      call: callSchema.parse(row?.call ?? {}),
      providers: providersSchema.parse(row?.providers ?? {}),
      provider_keys,
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

function userView(row: typeof tenantSettings.$inferSelect | undefined) {
  return {
    preferred_voice: row?.preferredVoice ?? null,
    preferred_model: row?.preferredModel ?? null,
    updated_at: row?.updatedAt.toISOString() ?? null,
  };
}
