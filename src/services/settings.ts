// Agent settings per tenant and preferences per user. The settings' shape is services/settings-schema.ts (one Zod
// schema, everything else derived). PUT merges: what a request leaves out keeps its value (the tools list is replaced
// whole); provider keys and tool header values are sealed at rest and only reported as configured.
import { and, eq } from 'drizzle-orm';
import { z } from 'zod';
import type { Db } from '../db/client.js';
import { tenantConfigs, userPreferences } from '../db/schema.js';
import { deepMerge, type KeptSecret, type Sealed, type SecretStatus, viewOf } from '../lib/schema-forms.js';
import type { SecretBox } from './secret-box.js';
import {
  type ProviderKeyName,
  type StoredTool,
  type TenantSettings,
  type TenantSettingsPatch,
  type TenantSettingsView,
  type TenantTool,
  tenantSettingsSchema,
} from './settings-schema.js';

export * from './settings-schema.js';

/** What `forProviders` gives: the settings, the provider keys and the tools' headers in clear. */
export interface ProviderSettingsInClear {
  settings: TenantSettingsView;
  keys: Partial<Record<ProviderKeyName, string>>;
  tools: TenantTool[];
}

/** Tenants whose `forProviders` is kept (the most recently read). */
const IN_CLEAR_CACHE_SIZE = 1000;

export class SettingsService {
  /**
   * Per tenant, `forProviders` of the row last read, by the row's content: every call reads the row (a change made
   * on any instance is seen at once), but parses it and opens its sealed keys only when it changed (twice per call
   * setup, ~2 ms of the event loop each at a burst of calls).
   */
  private readonly inClear = new Map<string, { row: string; value: ProviderSettingsInClear }>();

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
  async forProviders(tenantId: string): Promise<ProviderSettingsInClear> {
    const [row] = await this.db.select().from(tenantConfigs).where(eq(tenantConfigs.tenantId, tenantId));
    const content = row ? JSON.stringify(row) : '';
    const known = this.inClear.get(tenantId);
    if (known?.row === content) {
      // Most recently used last.
      this.inClear.delete(tenantId);
      this.inClear.set(tenantId, known);
      return known.value;
    }
    const stored = settingsOf(row);
    // A key or header that no longer opens (SECRET_KEY changed) is left out; the settings show it as not configured.
    const keys = this.openAll(stored.provider_keys) as Partial<Record<ProviderKeyName, string>>;
    const tools = stored.tools.map((t) => ({ ...t, headers: this.openAll(t.headers) }));
    // Shared by every call of the tenant until the row changes: frozen, so no caller can change it for the others.
    const value = deepFreeze({ settings: this.viewOf(stored, row), keys, tools });
    this.inClear.set(tenantId, { row: content, value });
    if (this.inClear.size > IN_CLEAR_CACHE_SIZE) this.inClear.delete(this.inClear.keys().next().value!);
    return value;
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
      const merged = deepMerge(current, sealedPatch) as { analysis: Record<string, unknown> };
      // A JSON Schema is one value, not settings to merge key by key: given, it replaces the stored one whole.
      if (patch.analysis?.extraction_schema !== undefined) merged.analysis.extraction_schema = patch.analysis.extraction_schema;
      const next = tenantSettingsSchema.parse(merged);
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
        analysis: next.analysis,
        retention: next.retention,
      };
      const [saved] = row
        ? await tx.update(tenantConfigs).set(values).where(eq(tenantConfigs.id, row.id)).returning()
        : await tx
            .insert(tenantConfigs)
            .values({ tenantId, ...values })
            .returning();
      return this.view(saved);
    });
  }

  /** Keys in clear sealed; null (remove) and undefined (keep) passed on for the merge. */
  private sealKeys(keys: NonNullable<TenantSettingsPatch['provider_keys']>) {
    return Object.fromEntries(
      Object.entries(keys).map(([name, value]) => [name, typeof value === 'string' ? this.box.seal(value) : value]),
    );
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
          else
            issues.push({
              code: 'custom',
              path: ['tools', i, 'headers', name],
              message: 'has no stored value to keep; send the value',
              input: value,
            });
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
    analysis: row.analysis,
    retention: row.retention,
  });
}

function userView(row: typeof userPreferences.$inferSelect | undefined) {
  return {
    preferred_voice: row?.preferredVoice ?? null,
    preferred_model: row?.preferredModel ?? null,
    updated_at: row?.updatedAt.toISOString() ?? null,
  };
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
