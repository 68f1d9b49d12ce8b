// Which embedder a tenant uses: provider choice is data in its settings (the engine table, providers/engines.ts);
// the key is the tenant's, else the platform's (providers/vendors.ts). Ingestion and search both ask here, so they
// always agree on the model.
import { ProviderError } from '../../lib/provider-error.js';
import { type Choices, engineOf, localEngineOf } from '../../providers/engines.js';
import { credentialFor, type PlatformCredentials, VENDORS } from '../../providers/vendors.js';
import type { Embedder } from './embedder.js';

/** What this needs of the settings (services/settings.ts `SettingsService`): the tenant's choice, its keys in clear. */
export interface EmbedderSettings {
  forProviders(tenantId: string): Promise<{
    settings: { providers: { embeddings: Choices['embeddings'] & { provider: string } } };
    keys: Partial<Record<string, string>>;
  }>;
}

export class EmbedderRegistry {
  /** Made once: it holds no key and no connection. */
  private readonly local = localEngineOf('embeddings').create({ choice: {}, apiKey: '', baseUrl: undefined });

  constructor(
    private readonly settings: EmbedderSettings,
    private readonly platform: PlatformCredentials,
  ) {}

  async forTenant(tenantId: string): Promise<Embedder> {
    const { settings, keys } = await this.settings.forProviders(tenantId);
    return this.of(settings.providers.embeddings, keys);
  }

  /** The embedder of this choice with these keys: for a caller that has read the tenant's settings already. */
  of(choice: Choices['embeddings'] & { provider: string }, keys: Partial<Record<string, string>>): Embedder {
    const engine = engineOf('embeddings', choice.provider);
    if (!engine?.vendor) return this.local;
    const credential = credentialFor(engine.vendor, keys, this.platform);
    const vendor = VENDORS[engine.vendor];
    if (!credential) {
      const where =
        'env' in vendor ? `settings provider_keys.${engine.vendor} or ${vendor.env.apiKey}` : `settings provider_keys.${engine.vendor}`;
      throw new ProviderError(
        engine.name,
        `Embeddings provider is ${engine.name} but no ${vendor.label} API key is configured (${where})`,
        false,
      );
    }
    try {
      return engine.create({ choice, ...credential });
    } catch (err) {
      // A model/dimensions combination the adapter cannot serve is a configuration problem, not a crash.
      throw new ProviderError(engine.name, (err as Error).message, false);
    }
  }
}
